"""Typed messages between a dispatcher and the worker runner it feeds.

They cross a transport (a ``multiprocessing`` pipe for local workers), so they are plain
frozen dataclasses of builtins that pickle anywhere.
A failed job is data (:class:`JobFailed`); a dead worker is a separate event that the
dispatcher notices on its own (the pipe closes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

FailureKind = Literal["cancelled", "oom", "invalid", "error"]


@dataclass(frozen=True)
class RunJob:
    """Run ``task``; read its inputs and write the MP4 under ``output_key`` in the blob store."""

    job_id: str
    task: dict[str, Any]
    output_key: str


@dataclass(frozen=True)
class RunBatch:
    """Run ``jobs`` (claimed together: one recipe shape) as one batch; each is answered alone."""

    jobs: tuple[RunJob, ...]


@dataclass(frozen=True)
class CancelJob:
    job_id: str


@dataclass(frozen=True)
class Shutdown:
    pass


@dataclass(frozen=True)
class WorkerReady:
    profile: str
    device: str
    pid: int
    # What the loaded model says of itself, one line each: speed-ups applied and fallen back
    # from (with why), the weights' revisions. Logged by the dispatcher with the ready line.
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class WorkerLoadFailed:
    error: str


@dataclass(frozen=True)
class WorkerRetiring:
    """The worker is about to exit on its own (it looks poisoned); start a fresh one."""

    reason: str


@dataclass(frozen=True)
class JobProgress:
    job_id: str
    step: int
    total: int


@dataclass(frozen=True)
class JobDone:
    job_id: str
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobFailed:
    job_id: str
    error: str
    kind: FailureKind = "error"


ToWorker = RunJob | RunBatch | CancelJob | Shutdown
FromWorker = WorkerReady | WorkerLoadFailed | WorkerRetiring | JobProgress | JobDone | JobFailed
