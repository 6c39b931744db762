"""The in-process dispatcher: feeds persisted jobs to worker processes, one job per worker.

The job store is the queue (jobs are persisted before they are acknowledged), so a restarted
server simply carries on with what is QUEUED. The dispatcher owns the worker processes:
it restarts one that dies (its job is retried while attempts remain, else failed with its
credits released), marks the server not ready when no worker can load the model, and
enforces the per-job deadline. A Ray dispatcher will implement the same small interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from takeone.core.errors import WorkerUnavailable
from takeone.core.jobs import Job
from takeone.core.jobs import JobStore
from takeone.dispatch.messages import (
    CancelJob,
    JobDone,
    JobFailed,
    JobProgress,
    RunJob,
    Shutdown,
    WorkerLoadFailed,
    WorkerReady,
    WorkerRetiring,
)
from takeone.dispatch.local.process import Event, WorkerDied, WorkerProcess
from takeone.engine.worker import WorkerConfig

log = logging.getLogger("takeone.dispatcher")

MAX_RESTARTS = 3
CANCEL_GRACE_S = 30.0
IDLE_POLL_S = 1.0


class Dispatcher(Protocol):
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def notify(self) -> None: ...
    async def cancel(self, job_id: str, reason: str = "cancelled") -> Job | None: ...
    async def wait(self, job_id: str, timeout: float) -> Job | None: ...
    def health(self) -> Health: ...
    def check_available(self) -> None: ...


@dataclass
class Health:
    ready: bool
    workers: list[dict[str, object]] = field(default_factory=list)
    error: str | None = None


@dataclass
class Slot:
    index: int
    config: WorkerConfig
    state: str = "starting"
    error: str | None = None
    process: WorkerProcess | None = None
    job_id: str | None = None
    device: str | None = None
    restarts: int = 0


class LocalDispatcher:
    """Worker processes on this machine, one per GPU (or one on a CPU-only machine).

    Example::

        dispatcher = LocalDispatcher(store, configs, outputs_dir, on_finished=notify)
        await dispatcher.start()
    """

    def __init__(self, store: JobStore, configs: list[WorkerConfig], outputs_dir: Path,
                 max_attempts: int = 2, job_timeout_s: float = 3600.0,
                 start_timeout_s: float = 900.0,
                 on_finished: Callable[[Job], None] | None = None) -> None:
        self.store = store
        self.slots = [Slot(i, c) for i, c in enumerate(configs)]
        self.outputs_dir = outputs_dir
        self.max_attempts = max_attempts
        self.job_timeout_s = job_timeout_s
        self.start_timeout_s = start_timeout_s
        self.on_finished = on_finished
        self._wakeup = asyncio.Event()
        self._finished: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        for job in self.store.recover(self.max_attempts):
            log.info("recovered job %s after restart: %s", job.id, job.status.value)
        self._tasks = [asyncio.create_task(self._run_slot(s)) for s in self.slots]

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        for slot in self.slots:
            if slot.process is not None:
                slot.process.send(Shutdown())
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.gather(*(asyncio.to_thread(s.process.stop) for s in self.slots if s.process))

    # -- what the API calls ------------------------------------------------------------------

    def notify(self) -> None:
        """A job was submitted: wake an idle worker."""
        self._wakeup.set()

    def health(self) -> Health:
        workers: list[dict[str, object]] = [
            {"index": s.index, "state": s.state, "device": s.device, "job": s.job_id,
             "pid": s.process.pid if s.process else None, "error": s.error}
            for s in self.slots
        ]
        ready = any(s.state == "ready" for s in self.slots)
        errors = [s.error for s in self.slots if s.state == "failed" and s.error]
        return Health(ready=ready, workers=workers, error=errors[0] if errors else None)

    def check_available(self) -> None:
        """Raise :class:`WorkerUnavailable` when every worker has failed for good."""
        if self.slots and all(s.state == "failed" for s in self.slots):
            raise WorkerUnavailable(f"no worker can serve requests: {self.health().error}")

    async def cancel(self, job_id: str, reason: str = "cancelled") -> Job | None:
        """Fail the job now (releasing its credits) and stop it at its next denoising step."""
        self._finish(self.store.fail(job_id, reason))
        for slot in self.slots:
            if slot.job_id == job_id and slot.process is not None:
                slot.process.send(CancelJob(job_id))
        return self.store.get(job_id)

    async def wait(self, job_id: str, timeout: float) -> Job | None:
        """Wait until the job is finished or ``timeout`` passes; return its latest state."""
        job = self.store.get(job_id)
        if job is None or job.status.is_terminal():
            return job
        event = self._finished.setdefault(job_id, asyncio.Event())
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)
        return self.store.get(job_id)

    def _announce(self, job: Job) -> None:
        event = self._finished.pop(job.id, None)
        if event is not None:
            event.set()
        if self.on_finished is not None:
            self.on_finished(job)

    # -- one worker slot ---------------------------------------------------------------------

    async def _run_slot(self, slot: Slot) -> None:
        while not self._stopping:
            if not await self._start_worker(slot):
                break
            await self._serve(slot)
            if self._stopping or not self._after_crash(slot):
                break
            await asyncio.sleep(min(2.0 ** slot.restarts, 30.0))
        if slot.state == "failed":
            self._fail_queue_if_hopeless()

    async def _start_worker(self, slot: Slot) -> bool:
        slot.state, slot.job_id = "starting", None
        slot.process = WorkerProcess(slot.config, asyncio.get_running_loop())
        slot.process.start()
        try:
            event = await asyncio.wait_for(slot.process.events.get(), self.start_timeout_s)
        except TimeoutError:
            slot.process.kill()
            event = WorkerLoadFailed(f"the model did not load within {self.start_timeout_s:.0f} s")
        return self._on_started(slot, event)

    def _on_started(self, slot: Slot, event: Event) -> bool:
        if isinstance(event, WorkerReady):
            slot.state, slot.device, slot.error = "ready", event.device, None
            log.info("worker %d ready on %s (pid %s)", slot.index, event.device, event.pid)
            return True
        if isinstance(event, WorkerLoadFailed):
            reason = event.error
        elif isinstance(event, WorkerDied):
            reason = f"the worker exited while loading the model (exit code {event.exitcode})"
        else:
            reason = f"unexpected message from a loading worker: {event!r}"
        slot.state, slot.error = "failed", f"model failed to load: {reason}"
        log.error("worker %d: %s", slot.index, slot.error)
        return False

    def _after_crash(self, slot: Slot) -> bool:
        slot.restarts += 1
        if slot.restarts > MAX_RESTARTS:
            slot.state = "failed"
            slot.error = f"the worker crashed {slot.restarts} times in a row"
            return False
        slot.state = "starting"
        return True

    async def _serve(self, slot: Slot) -> None:
        """Run jobs on this slot's worker until it dies (or the server stops)."""
        assert slot.process is not None
        while not self._stopping:
            if _died_while_idle(slot.process):
                return
            job = await self._next_job()
            if job is None:
                continue
            slot.job_id = job.id
            alive = await self._run_job(slot, slot.process, job)
            slot.job_id = None
            if not alive:
                return
            slot.restarts = 0

    async def _next_job(self) -> Job | None:
        job = self.store.claim_next()
        if job is None:
            self._wakeup.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), IDLE_POLL_S)
        return job

    async def _run_job(self, slot: Slot, proc: WorkerProcess, job: Job) -> bool:
        output = self.outputs_dir / f"{job.id}.mp4"
        if not proc.send(RunJob(job.id, job.task.to_dict(), str(output))):
            self._finish(self.store.requeue(job.id, self.max_attempts, "the worker went away"))
            return False
        deadline = asyncio.get_running_loop().time() + self.job_timeout_s
        while True:
            event = await self._next_event(proc, job, deadline)
            if isinstance(event, JobProgress):
                self.store.set_progress(job.id, event.step / max(event.total, 1))
            elif isinstance(event, JobDone):
                self._finish(self.store.complete(job.id, output.name, event.metrics))
                return True
            elif isinstance(event, JobFailed):
                self._finish(self.store.fail(job.id, event.error))
                return True
            elif isinstance(event, WorkerDied):
                self._on_worker_died(job, event)
                return False

    async def _next_event(self, proc: WorkerProcess, job: Job, deadline: float) -> Event:
        loop = asyncio.get_running_loop()
        try:
            return await asyncio.wait_for(proc.events.get(), max(deadline - loop.time(), 0.01))
        except TimeoutError:
            return await self._expire(proc, job)

    async def _expire(self, proc: WorkerProcess, job: Job) -> Event:
        """The job ran past its deadline: cancel it; kill the worker if it does not stop."""
        self._finish(self.store.fail(job.id, f"the job ran past its {self.job_timeout_s:.0f} s deadline"))
        proc.send(CancelJob(job.id))
        try:
            return await asyncio.wait_for(proc.events.get(), CANCEL_GRACE_S)
        except TimeoutError:
            proc.kill()
            return await proc.events.get()

    def _on_worker_died(self, job: Job, event: WorkerDied) -> None:
        log.error("worker died (exit code %s) while running job %s", event.exitcode, job.id)
        reason = f"the worker process died while generating (exit code {event.exitcode})"
        self._finish(self.store.requeue(job.id, self.max_attempts, reason))

    def _finish(self, job: Job | None) -> None:
        if job is None:
            return
        if job.status.is_terminal():
            self._announce(job)
        else:
            self.notify()

    def _fail_queue_if_hopeless(self) -> None:
        """When no worker is left, fail what is queued rather than keep it forever."""
        if not all(s.state == "failed" for s in self.slots):
            return
        reason = f"no worker can serve requests: {self.health().error}"
        for job_id in self.store.queued_ids():
            self._finish(self.store.fail(job_id, reason))


def _died_while_idle(proc: WorkerProcess) -> bool:
    """An idle worker can only report its own exit (it recycles itself when it looks
    poisoned); notice it before handing it a job, so no job spends an attempt on it."""
    while not proc.events.empty():
        event = proc.events.get_nowait()
        if isinstance(event, (WorkerDied, WorkerRetiring)):
            log.warning("worker retired or exited while idle (%s); starting a new one", event)
            return True
    return False
