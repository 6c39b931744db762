"""The dispatcher's side of a batch: claim compatible jobs together, then follow each alone.

A slot with ``max_batch`` above 1 claims the job the queue serves next and up to
``max_batch - 1`` queued jobs with its batch key (:func:`takeone.models.batch.job_batch_key`) in one store
transaction. When the queue holds fewer jobs than that and its oldest job is younger than
the batch window, the slot waits out the rest of the window first, so a burst of requests
shares one run while a lone job is delayed by the window at most.

While the batch runs, each job is renewed by its own progress reports, completed (and
charged) or failed by its own answer; a job the store no longer holds (cancelled) is
cancelled in the worker, which drops it at the next step. A worker that dies puts every
unanswered job of the batch back in the queue.

Example::

    alive = await BatchRun(dispatcher, slot, process, jobs).run()
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Hashable
from functools import lru_cache
from typing import TYPE_CHECKING

from takeone.core.blobs import output_key
from takeone.core.jobs import BatchKey, Job, JobStore
from takeone.dispatch.local.process import Event, WorkerDied, WorkerProcess
from takeone.dispatch.retry import StoreRetry
from takeone.engine.messages import CancelJob, JobDone, JobFailed, JobProgress, RunBatch, RunJob

if TYPE_CHECKING:
    from takeone.dispatch.local.dispatcher import LocalDispatcher, Slot

GPU_WINDOW_MS = 25.0
"""A lone job's default wait for company on a GPU (on the CPU: none)."""


def batch_window_s(window_ms: float | None, device: str | None) -> float:
    """The batch window in seconds: ``--batch-window-ms`` or the device's default."""
    if window_ms is None:
        window_ms = 0.0 if device is None or device.startswith("cpu") else GPU_WINDOW_MS
    return max(window_ms, 0.0) / 1000.0


@lru_cache(maxsize=8)
def batch_key_for(profile_name: str) -> BatchKey:
    """The claim's batch key for jobs of ``profile_name`` (torch-free)."""
    from takeone.models.batch import job_batch_key
    from takeone.models.registry import get_profile

    profile = get_profile(profile_name)

    def key(job: Job) -> Hashable | None:
        return job_batch_key(profile, job.task)

    return key


async def wait_for_company(store: JobStore, calls: StoreRetry, limit: int, window_s: float) -> None:
    """Sleep until the oldest queued job is ``window_s`` old, unless the queue already holds
    ``limit`` jobs (or none): the most batching ever delays a job is the window."""
    if window_s <= 0:
        return
    queued = await calls.run("read queue", store.queued_ids)
    if not queued or len(queued) >= limit:
        return
    oldest = await calls.run("read job", lambda: store.get(queued[0]))
    if oldest is None:
        return
    left = oldest.created_at + window_s - time.time()
    if left > 0:
        await asyncio.sleep(min(left, window_s))


class BatchRun:
    """One batch on one slot's worker, from sending it to the last job's answer."""

    def __init__(self, dispatcher: LocalDispatcher, slot: Slot, proc: WorkerProcess, jobs: list[Job]) -> None:
        self.d = dispatcher
        self.slot = slot
        self.proc = proc
        self.pending = {job.id: job for job in jobs}
        self.keys = {job.id: output_key(job.id) for job in jobs}

    async def run(self) -> bool:
        """Follow every job to its end; False when the worker died (the caller restarts it)."""
        batch = RunBatch(tuple(RunJob(job.id, job.task.to_dict(), self.keys[job.id])
                               for job in self.pending.values()))
        if not self.proc.send(batch):
            await self._requeue_all("the worker went away")
            return False
        deadline = time.monotonic() + self.d.settings.job_timeout_s
        while self.pending:
            event = await self._next_event(deadline)
            if not await self._handle(event):
                return False
        return True

    async def _handle(self, event: Event) -> bool:
        if isinstance(event, JobProgress) and (job := self.pending.get(event.job_id)) is not None:
            await self.d._renew(self.slot, self.proc, job, event.step / max(event.total, 1))
        elif isinstance(event, JobDone) and (job := self.pending.pop(event.job_id, None)) is not None:
            await self.d._complete(job, self.keys[job.id], event)
        elif isinstance(event, JobFailed) and self.pending.pop(event.job_id, None) is not None:
            await self.d._fail(event.job_id, event.error)
        elif isinstance(event, WorkerDied):
            await self._requeue_all(f"the worker process died while generating (exit code {event.exitcode})")
            return False
        return True

    async def _next_event(self, deadline: float) -> Event:
        """The worker's next message; renews every waiting job's lease while it is quiet."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return await self._expire()
            try:
                return await asyncio.wait_for(self.proc.events.get(), min(left, self.d.settings.lease_s / 3))
            except TimeoutError:
                for job in list(self.pending.values()):
                    await self.d._renew(self.slot, self.proc, job, None)

    async def _expire(self) -> Event:
        """The batch ran past the deadline: fail what is left, and kill a worker that does not stop."""
        from takeone.dispatch.local.dispatcher import CANCEL_GRACE_S

        for job_id in list(self.pending):
            await self.d._fail(job_id, f"the job ran past its {self.d.settings.job_timeout_s:.0f} s deadline")
            self.proc.send(CancelJob(job_id))
        self.pending.clear()
        try:
            return await asyncio.wait_for(self.proc.events.get(), CANCEL_GRACE_S)
        except TimeoutError:
            self.proc.kill()
            return await self.proc.events.get()

    async def _requeue_all(self, reason: str) -> None:
        for job in list(self.pending.values()):
            await self.d._requeue(job, reason)
        self.pending.clear()
