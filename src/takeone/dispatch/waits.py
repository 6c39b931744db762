"""Waiting for a job to finish by reading the store, so any API process can answer a
blocking call for a job that any worker runs. An in-process dispatcher may call
:meth:`JobWaiter.finished` to wake waiters at once; correctness never depends on it.

Example::

    waiter = JobWaiter(store)
    job = await waiter.wait(job_id, timeout=30)   # its latest state, finished or not
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from takeone.core.jobs import Job, JobStore

FIRST_POLL_S = 0.05
MAX_POLL_S = 0.5


class JobWaiter:
    def __init__(self, store: JobStore) -> None:
        self.store = store
        self._events: dict[str, set[asyncio.Event]] = {}

    def finished(self, job_id: str) -> None:
        for event in self._events.get(job_id, ()):
            event.set()

    async def wait(self, job_id: str, timeout: float) -> Job | None:
        """Wait until the job is finished or ``timeout`` passes; return its latest state."""
        deadline = time.monotonic() + timeout
        event = asyncio.Event()
        self._events.setdefault(job_id, set()).add(event)
        try:
            return await self._poll(job_id, deadline, event)
        finally:
            waiting = self._events.get(job_id, set())
            waiting.discard(event)
            if not waiting:
                self._events.pop(job_id, None)

    async def _poll(self, job_id: str, deadline: float, event: asyncio.Event) -> Job | None:
        poll = FIRST_POLL_S
        while True:
            job = await self.store.get(job_id)
            left = deadline - time.monotonic()
            if job is None or job.status.is_terminal() or left <= 0:
                return job
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), min(poll, left))
            poll = min(poll * 2, MAX_POLL_S)
