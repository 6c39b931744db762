"""What the rest of takeone sees of a dispatcher: the part that turns queued jobs into
worker runs. The store is the queue, so the API needs none of this to accept, answer or
cancel a job; a dispatcher in the same process only makes cancels and answers faster.

Example::

    dispatcher = LocalDispatcher(store, configs, DispatcherSettings(), blobs)
    await dispatcher.start()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from takeone.core.settings import Settings


@dataclass(frozen=True)
class DispatcherSettings:
    max_attempts: int = 2
    job_timeout_s: float = 3600.0
    start_timeout_s: float = 900.0
    lease_s: float = 30.0
    heartbeat_s: float = 5.0
    max_batch: int = 1  # compatible jobs claimed together (1: one at a time)
    batch_window_ms: float | None = None  # a lone job's wait for company (None: 25 ms on a GPU, 0 on the CPU)
    load_cooldown_s: float = 60.0  # the first pause after the bounded restarts (then doubled)

    @classmethod
    def from_settings(cls, s: Settings) -> DispatcherSettings:
        return cls(max_attempts=s.max_attempts, job_timeout_s=s.job_timeout_s,
                   start_timeout_s=s.worker_start_timeout_s, lease_s=s.lease_s, heartbeat_s=s.heartbeat_s,
                   max_batch=max_batch_of(s), batch_window_ms=s.batch_window_ms,
                   load_cooldown_s=s.load_cooldown_s)


def max_batch_of(settings: Settings) -> int:
    """``--max-batch``, else the profile's default (1 for a profile this process does not know).
    A worker group (``--gpus-per-job`` above 1) claims single jobs: its ranks run one job together."""
    if settings.gpus_per_job > 1:
        return 1
    if settings.max_batch is not None:
        return settings.max_batch
    from takeone.models.batch import profile_max_batch
    from takeone.models.registry import get_profile

    try:
        return profile_max_batch(get_profile(settings.profile))
    except ValueError:
        return 1


class Dispatcher(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def notify(self) -> None:
        """A job was queued: wake an idle worker now rather than at its next poll."""

    def cancel_running(self, job_id: str) -> None:
        """Stop ``job_id`` at its next step if this dispatcher runs it (best effort: the
        store's FAILED state reaches it through its lease renewal anyway)."""
