"""Waiting for a job to finish by reading the store, so any API process can answer a
blocking call for a job that any worker runs. An in-process dispatcher or the store's change
feed may call :meth:`JobWaiter.finished` to wake waiters at once; correctness never depends
on it.

Held calls register their job; one task per process (while any call is held) reads the
status of every registered job in one store query per interval (:meth:`JobStore.statuses`)
and wakes the calls whose job finished or is gone. Only such a call, or one at its deadline,
reads its whole job again: the reads per interval do not grow with the calls held.

Example::

    waiter = JobWaiter(store)
    job = await waiter.wait(job_id, timeout=30)   # its latest state, finished or not
"""

from __future__ import annotations

import asyncio
import logging
import time

from takeone.core.errors import StoreUnavailable
from takeone.core.jobs import Job, JobStore

POLL_S = 0.2
"""How often the watcher reads the statuses of all held jobs (the wait for a finish whose
notification was lost, or that nothing announces)."""

log = logging.getLogger(__name__)


class JobWaiter:
    def __init__(self, store: JobStore, poll_s: float = POLL_S) -> None:
        self.store = store
        self.poll_s = poll_s
        self._events: dict[str, set[asyncio.Event]] = {}
        self._watcher: asyncio.Task[None] | None = None

    def finished(self, job_id: str) -> None:
        for event in self._events.get(job_id, ()):
            event.set()

    async def wait(self, job_id: str, timeout: float) -> Job | None:
        """Wait until the job is finished or ``timeout`` passes; return its latest state."""
        deadline = time.monotonic() + timeout
        event = asyncio.Event()
        self._events.setdefault(job_id, set()).add(event)
        try:
            return await self._hold(job_id, deadline, event)
        finally:
            waiting = self._events.get(job_id, set())
            waiting.discard(event)
            if not waiting:
                self._events.pop(job_id, None)

    async def _hold(self, job_id: str, deadline: float, event: asyncio.Event) -> Job | None:
        while True:
            event.clear()
            job = await self.store.get(job_id)
            left = deadline - time.monotonic()
            if job is None or job.status.is_terminal() or left <= 0:
                return job
            self._watch()
            try:
                await asyncio.wait_for(event.wait(), left)
            except TimeoutError:  # the deadline: its latest state, whatever it is
                return await self.store.get(job_id)

    def _watch(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._run_watcher())

    async def _run_watcher(self) -> None:
        """Until no call is held: each interval, one read of every held job's status."""
        while self._events:
            await asyncio.sleep(self.poll_s)
            held = list(self._events)
            if not held:
                return
            try:
                statuses = await self.store.statuses(held)
            except StoreUnavailable as exc:  # each call still reads its job at its deadline
                log.warning("could not read the status of %d held jobs: %s", len(held), exc)
                continue
            except Exception:  # the watch must outlive one bad read (logged); calls keep their deadlines
                log.exception("reading the status of %d held jobs failed", len(held))
                continue
            for job_id in held:
                status = statuses.get(job_id)
                if status is None or status.is_terminal():
                    self.finished(job_id)
