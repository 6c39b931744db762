"""Jobs and their states; every transition is checked here, in one place.

    QUEUED -> PROCESSING -> COMPLETED
       |          |------> FAILED
       |          `------> QUEUED   (retried after a worker crash or server restart)
       `-----------------> FAILED   (cancelled or timed out while queued)
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Protocol

from takeone.core.task import VideoTask


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
    task: VideoTask
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
    route: str = ""  # the dialect's name for the operation, e.g. "kling-2.6"

class JobStore(Protocol):
    def submit(self, job: Job, max_concurrent: int | None, max_queue: int,
               idempotency_key: str | None = None) -> Job:
        """Persist a QUEUED job and reserve its price; return an existing job for a repeated
        idempotency key."""

    def get(self, job_id: str) -> Job | None: ...

    def claim_next(self) -> Job | None:
        """Move the oldest QUEUED job to PROCESSING and return it."""

    def set_progress(self, job_id: str, progress: float) -> None: ...

    def complete(self, job_id: str, output: str, metrics: dict[str, Any]) -> Job | None:
        """PROCESSING -> COMPLETED and commit the price; None if the job was no longer running."""

    def fail(self, job_id: str, error: str) -> Job | None:
        """-> FAILED and release the price; None if the job was already finished."""

    def requeue(self, job_id: str, max_attempts: int, error: str) -> Job | None:
        """PROCESSING -> QUEUED if attempts remain, else FAILED with ``error``."""

    def recover(self, max_attempts: int) -> list[Job]:
        """After a restart: requeue or fail every job left PROCESSING; fail blocking ones."""

    def queue_position(self, job_id: str) -> int | None: ...

    def queued_ids(self) -> list[str]: ...

    def expired(self, before: float) -> list[Job]: ...

    def delete(self, job_id: str) -> None: ...
