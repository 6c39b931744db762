"""The job store interface: the embedded SQLite store implements it; Postgres will too.

Submitting a job and reserving its price happen in one transaction, and so do finishing a job
and settling its price, so that no accepted job is lost and no failed one is charged.
"""

from __future__ import annotations

from typing import Any, Protocol

from takeone.jobs.model import Job


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
