"""Jobs and their states; every transition is checked here, in one place.

    QUEUED -> PROCESSING -> COMPLETED
       |          |------> FAILED
       |          `------> QUEUED   (retried after a worker crash or server restart)
       `-----------------> FAILED   (cancelled or timed out while queued)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from takeone.generation import GenerationRequest


class JobStatus(str, enum.Enum):
    """The Segmind queue states."""

    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)

    def can_become(self, new: JobStatus) -> bool:
        return new in _TRANSITIONS[self]


_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.PROCESSING, JobStatus.FAILED}),
    JobStatus.PROCESSING: frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.QUEUED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
}


@dataclass(frozen=True)
class Job:
    """One accepted generation request, as persisted."""

    id: str
    key_id: str
    request: GenerationRequest
    price: float
    status: JobStatus
    created_at: float
    blocking: bool = False
    progress: float = 0.0
    attempts: int = 0
    error: str | None = None
    output: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
