"""The local dispatcher: worker processes on this machine, fed from the store with leases.

The store is the queue (jobs are persisted before they are acknowledged), so a restarted
dispatcher, or one in another process (``takeone worker``), simply carries on with what is
QUEUED. Each slot claims a job under a lease named after itself (``host/pid/slot``) and
renews it with every progress report; a job whose lease runs out (its dispatcher died) goes
back to the queue. The dispatcher restarts a worker that dies (its job is retried while
attempts remain, else failed with its credits released), restarts one that dies while
loading (with backoff), enforces the per-job deadline, and reports every slot's state to the
store, where any API process reads it for ``/healthz``. Every store call is retried while the
store is unavailable, so an outage delays jobs but never strands one.

After the bounded restarts a slot is *cooling*: it rests ``load_cooldown_s`` (doubling each
time, at most :data:`MAX_COOLDOWN_S`) and tries again, so a worker killed while loading (the
out-of-memory killer, another process holding the GPU) comes back by itself; queued jobs wait
for it, each at most ``job_timeout_s`` from its submit, and submits are still accepted. A load
that raises the same error three times in a row (a corrupt or missing file) cools down the
same way: once an operator mends the file, the next try loads it, with no restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from takeone.core.blobs import BlobStore, output_key
from takeone.core.errors import StoreUnavailable
from takeone.core.jobs import Job, JobStore, WorkerStatus
from takeone.dispatch.identity import API_STATE, is_dead, liveness, process_identity
from takeone.dispatch.joblog import log_finished
from takeone.dispatch.local.batching import BatchRun, batch_key_for, batch_window_s, wait_for_company
from takeone.dispatch.local.group import make_process
from takeone.dispatch.local.process import Event, WorkerDied, WorkerProcess
from takeone.dispatch.protocol import DispatcherSettings
from takeone.dispatch.retry import StoreRetry
from takeone.engine.config import WorkerConfig
from takeone.engine.messages import (
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

log = logging.getLogger("takeone.dispatcher")

MAX_RESTARTS = 3
SAME_LOAD_ERRORS = 3
MAX_LOAD_ATTEMPTS = 6
CANCEL_GRACE_S = 30.0
IDLE_POLL_S = 1.0
MAX_BACKOFF_S = 30.0
MAX_COOLDOWN_S = 900.0


@dataclass
class Slot:
    index: int
    config: WorkerConfig
    owner: str
    state: str = "starting"
    error: str | None = None
    process: WorkerProcess | None = None
    job_id: str | None = None
    batch: tuple[str, ...] = ()  # every job of the batch it runs (job_id is the first)
    device: str | None = None
    restarts: int = 0
    load_errors: list[str] = field(default_factory=list)
    cooldowns: int = 0  # rests since the worker was last ready


class LocalDispatcher:
    """Worker processes on this machine, one per GPU (or one on a CPU-only machine).

    Example::

        dispatcher = LocalDispatcher(store, configs, DispatcherSettings(), blobs)
        await dispatcher.start()
    """

    def __init__(self, store: JobStore, configs: list[WorkerConfig], settings: DispatcherSettings,
                 blobs: BlobStore, on_finished: Callable[[str], None] | None = None,
                 name: str | None = None,
                 make_process: Callable[[WorkerConfig, asyncio.AbstractEventLoop], WorkerProcess] = make_process,
                 ) -> None:
        self.store = store
        self.make_process = make_process  # a worker group on Ray brings its own
        self.settings = settings
        self.blobs = blobs
        self.on_finished = on_finished
        self.name = name or process_identity()
        self.slots = [Slot(i, c, f"{self.name}/{i}") for i, c in enumerate(configs)]
        self.calls = StoreRetry(f"dispatcher {self.name}")
        self._wakeup = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._draining = False

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        await self._expire_leases()
        self._tasks = [asyncio.create_task(self._supervise(s)) for s in self.slots]
        self._tasks.append(asyncio.create_task(self._maintain()))

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        running = [s.job_id for s in self.slots if s.job_id is not None]
        for slot in self.slots:
            if slot.process is not None:
                slot.process.send(Shutdown())
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        await asyncio.gather(*(asyncio.to_thread(s.process.stop) for s in self.slots if s.process))
        for job_id in running:  # back to the queue now, not when its lease runs out
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.store.requeue(job_id, self.settings.max_attempts,
                                                          "its worker was stopped"), 5.0)
                log.info("job %s: back in the queue (its worker was stopped)", job_id)
        for slot in self.slots:
            slot.state = "stopped"
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.store.report_worker(self._status(slot)), 2.0)

    async def drain(self) -> None:
        """Claim no new job, let every running one finish, then stop: how a pool retires an
        idle worker without spending any job's attempt."""
        self._draining = True
        self._wakeup.set()
        slots = self._tasks[:len(self.slots)]
        await asyncio.gather(*slots, return_exceptions=True)
        await self.stop()

    def notify(self) -> None:
        self._wakeup.set()

    def cancel_running(self, job_id: str) -> None:
        for slot in self.slots:
            if (slot.job_id == job_id or job_id in slot.batch) and slot.process is not None:
                slot.process.send(CancelJob(job_id))

    # -- maintenance: reports and expired leases -------------------------------------------

    async def _maintain(self) -> None:
        while not self._stopping:
            await asyncio.sleep(self.settings.heartbeat_s)
            for slot in self.slots:
                await self._report(slot)
            await self._expire_leases()

    async def _expire_leases(self) -> None:
        mine = frozenset(s.owner for s in self.slots if s.job_id is not None)
        jobs = await self.calls.run("expire leases", lambda: self.store.expire_leases(
            self.settings.max_attempts, is_dead, mine))
        for job in jobs:
            log.warning("job %s lost its worker; now %s", job.id, job.status.value)
            self._finish(job)

    def _status(self, slot: Slot) -> WorkerStatus:
        pid = slot.process.pid if slot.process else None
        return WorkerStatus(id=slot.owner, profile=slot.config.profile, state=slot.state,
                            seen_at=time.time(), device=slot.device, job_id=slot.job_id,
                            error=slot.error, pid=pid)

    async def _report(self, slot: Slot) -> None:
        await self.calls.run("report worker", lambda: self.store.report_worker(self._status(slot)))

    async def _set_state(self, slot: Slot, state: str, error: str | None = None) -> None:
        slot.state, slot.error = state, error
        await self._report(slot)

    # -- one worker slot ---------------------------------------------------------------------

    async def _supervise(self, slot: Slot) -> None:
        """Run the slot; an unexpected error is logged and the slot starts over, never dies."""
        while not self._stopping:
            try:
                await self._run_slot(slot)
                return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("worker slot %d failed unexpectedly; restarting it", slot.index)
                if slot.process is not None:
                    slot.process.kill()
                await asyncio.sleep(1.0)

    async def _run_slot(self, slot: Slot) -> None:
        while not self._stopping and not self._draining:
            if not await self._start_worker(slot):
                if slot.state == "cooling":
                    await self._cool_down(slot)
                else:
                    await asyncio.sleep(_backoff(len(slot.load_errors)))
                continue
            await self._serve(slot)
            if self._stopping or self._draining:
                return
            if not await self._after_crash(slot):
                await self._cool_down(slot)
                continue
            await asyncio.sleep(_backoff(slot.restarts))

    async def _cool_down(self, slot: Slot) -> None:
        """Rest after the bounded restarts, failing queued jobs past their deadline meanwhile;
        then start afresh."""
        slot.cooldowns += 1
        rest = min(self.settings.load_cooldown_s * 2 ** (slot.cooldowns - 1), MAX_COOLDOWN_S)
        await self._set_state(slot, "cooling", f"{slot.error}; cooling down, next try in {rest:.0f} s"
                                               " (queued jobs wait)")
        log.warning("worker %d: %s", slot.index, slot.error)
        deadline = time.monotonic() + rest
        while not self._stopping and not self._draining and time.monotonic() < deadline:
            await self._fail_overdue_if_none_ready()
            await asyncio.sleep(min(self.settings.heartbeat_s, max(deadline - time.monotonic(), 0.0)))
        slot.restarts, slot.load_errors = 0, []

    async def _start_worker(self, slot: Slot) -> bool:
        slot.job_id = None
        slot.process = self.make_process(slot.config, asyncio.get_running_loop())
        slot.process.start()
        await self._set_state(slot, "starting", slot.error)
        try:
            event = await asyncio.wait_for(slot.process.events.get(), self.settings.start_timeout_s)
        except TimeoutError:
            slot.process.kill()
            event = WorkerLoadFailed(f"the model did not load within {self.settings.start_timeout_s:.0f} s")
        return await self._on_started(slot, event)

    async def _on_started(self, slot: Slot, event: Event) -> bool:
        if isinstance(event, WorkerReady):
            slot.device, slot.load_errors, slot.cooldowns = event.device, [], 0
            await self._set_state(slot, "ready")
            notes = "".join(f"\n  {note}" for note in event.notes)
            log.info("worker %d ready on %s (pid %s)%s", slot.index, event.device, event.pid, notes)
            return True
        reason = _load_failure(event)
        slot.load_errors.append(reason)
        if _same_error_repeated(slot.load_errors) or len(slot.load_errors) >= MAX_LOAD_ATTEMPTS:
            slot.state = "cooling"
            slot.error = f"model failed to load {len(slot.load_errors)} times (last: {reason})"
        else:
            await self._set_state(slot, "starting", f"model failed to load: {reason}")
            log.warning("worker %d: model failed to load (%s); retrying", slot.index, reason)
        return False

    async def _after_crash(self, slot: Slot) -> bool:
        """True: restart now; False: the restarts are spent, cool down first."""
        slot.restarts += 1
        if slot.restarts > MAX_RESTARTS:
            slot.error = f"the worker crashed {slot.restarts} times in a row"
            return False
        await self._set_state(slot, "starting")
        return True

    async def _serve(self, slot: Slot) -> None:
        """Run jobs on this slot's worker until it dies (or the dispatcher stops)."""
        assert slot.process is not None
        while not self._stopping and not self._draining:
            if _died_while_idle(slot.process):
                return
            jobs = await self._next_jobs(slot)
            if not jobs:
                continue
            if len(jobs) == 1:
                alive = await self._run_claimed(slot, slot.process, jobs[0])
            else:
                alive = await self._run_batch_claimed(slot, slot.process, jobs)
            if not alive:
                return
            slot.restarts = 0

    async def _next_jobs(self, slot: Slot) -> list[Job]:
        """The next job, or the next batch of compatible jobs (``max_batch`` > 1; a worker
        group claims single jobs: its ranks run one job together)."""
        if self.settings.max_batch > 1 and slot.config.gpus_per_job == 1:
            jobs = await self._claim_batch(slot)
        else:
            job = await self.calls.run("claim", lambda: self.store.claim(slot.owner, self.settings.lease_s))
            jobs = [job] if job is not None else []
        if not jobs:
            self._wakeup.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), IDLE_POLL_S)
        return jobs

    async def _claim_batch(self, slot: Slot) -> list[Job]:
        await wait_for_company(self.store, self.calls, self.settings.max_batch, self._window_s(slot))
        key = batch_key_for(slot.config.profile)
        return await self.calls.run("claim batch", lambda: self.store.claim_batch(
            slot.owner, self.settings.lease_s, self.settings.max_batch, key))

    def _window_s(self, slot: Slot) -> float:
        return batch_window_s(self.settings.batch_window_ms, slot.device)

    async def _run_batch_claimed(self, slot: Slot, proc: WorkerProcess, jobs: list[Job]) -> bool:
        """Run ``jobs`` as one batch on ``slot``; each job is renewed, completed or failed as itself."""
        live = [job for job in jobs if not await self._blocking_caller_gone(job)]
        if len(live) <= 1:
            return await self._run_claimed(slot, proc, live[0]) if live else True
        slot.job_id, slot.batch = live[0].id, tuple(job.id for job in live)
        await self._report(slot)
        try:
            return await BatchRun(self, slot, proc, live).run()
        finally:
            slot.job_id, slot.batch = None, ()

    async def _blocking_caller_gone(self, job: Job) -> bool:
        if job.blocking and job.caller is not None and await self._caller_gone(job.caller):
            await self._fail(job.id, "the API process waiting for this blocking request is gone")
            return True
        return False

    async def _run_claimed(self, slot: Slot, proc: WorkerProcess, job: Job) -> bool:
        if job.blocking and job.caller is not None and await self._caller_gone(job.caller):
            await self._fail(job.id, "the API process waiting for this blocking request is gone")
            return True
        slot.job_id = job.id
        await self._report(slot)
        try:
            return await self._run_job(slot, proc, job)
        finally:
            slot.job_id = None

    async def _caller_gone(self, caller: str) -> bool:
        """The API process waiting for a blocking job is gone (here, or silent elsewhere)."""
        if is_dead(caller):
            return True
        reports = await self.calls.run("read workers", self.store.workers)
        return liveness(reports, time.time(), self.settings.heartbeat_s)(caller)

    async def _run_job(self, slot: Slot, proc: WorkerProcess, job: Job) -> bool:
        key = output_key(job.id)
        if not proc.send(RunJob(job.id, job.task.to_dict(), key)):
            await self._requeue(job, "the worker went away")
            return False
        deadline = time.monotonic() + self.settings.job_timeout_s
        while True:
            event = await self._next_event(slot, proc, job, deadline)
            if isinstance(event, JobProgress):
                await self._renew(slot, proc, job, event.step / max(event.total, 1))
            elif isinstance(event, JobDone):
                await self._complete(job, key, event)
                return True
            elif isinstance(event, JobFailed):
                await self._fail(job.id, event.error)
                return True
            elif isinstance(event, WorkerDied):
                log.error("worker died (exit code %s) while running job %s", event.exitcode, job.id)
                await self._requeue(job, f"the worker process died while generating (exit code {event.exitcode})")
                return False

    async def _renew(self, slot: Slot, proc: WorkerProcess, job: Job, progress: float | None) -> None:
        """Extend the lease; if the job is no longer ours (cancelled), stop the worker's run.
        A renewal the store cannot take now is skipped, not retried: the job's own outcome
        must still be heard, and that one is retried until the store takes it."""
        try:
            ours = await self.store.renew(job.id, slot.owner, self.settings.lease_s, progress)
        except StoreUnavailable as exc:
            self.calls.error = exc.message
            log.warning("job %s: cannot renew its lease (%s)", job.id, exc.message)
            return
        if not ours:
            proc.send(CancelJob(job.id))

    async def _complete(self, job: Job, key: str, event: JobDone) -> None:
        done = await self.calls.run("complete", lambda: self.store.complete(job.id, key, event.metrics))
        if done is None:  # cancelled or expired meanwhile: nobody is charged, keep no file
            await asyncio.to_thread(self.blobs.delete, key)
        self._finish(done or await self.store.get(job.id))

    async def _fail(self, job_id: str, error: str) -> None:
        self._finish(await self.calls.run("fail", lambda: self.store.fail(job_id, error)))

    async def _requeue(self, job: Job, reason: str) -> None:
        self._finish(await self.calls.run("requeue", lambda: self.store.requeue(
            job.id, self.settings.max_attempts, reason)))

    async def _next_event(self, slot: Slot, proc: WorkerProcess, job: Job, deadline: float) -> Event:
        """The worker's next message; renews the lease while the worker is quiet."""
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return await self._expire(proc, job)
            try:
                return await asyncio.wait_for(proc.events.get(), min(left, self.settings.lease_s / 3))
            except TimeoutError:
                await self._renew(slot, proc, job, None)

    async def _expire(self, proc: WorkerProcess, job: Job) -> Event:
        """The job ran past its deadline: fail it; kill the worker if it does not stop."""
        await self._fail(job.id, f"the job ran past its {self.settings.job_timeout_s:.0f} s deadline")
        proc.send(CancelJob(job.id))
        try:
            return await asyncio.wait_for(proc.events.get(), CANCEL_GRACE_S)
        except TimeoutError:
            proc.kill()
            return await proc.events.get()

    def _finish(self, job: Job | None) -> None:
        if job is None:
            return
        if job.status.is_terminal():
            log_finished(job)
            if self.on_finished is not None:
                self.on_finished(job.id)
        else:
            self.notify()

    async def _fail_overdue_if_none_ready(self) -> None:
        """While no worker anywhere is ready, a queued job waits at most ``job_timeout_s`` from
        its submit; then it fails with the reason (its credits released)."""
        workers = await self.calls.run("read workers", self.store.workers)
        fresh = [w for w in workers if w.state not in ("stopped", API_STATE) and not is_dead(w.id)
                 and w.seen_at > time.time() - 3 * self.settings.heartbeat_s]
        if any(w.state in ("ready", "starting") for w in fresh):
            return
        reason = f"no worker could serve it within {self.settings.job_timeout_s:.0f} s: " + \
            next((w.error or "" for w in fresh if w.error), "the workers are cooling down")
        cutoff = time.time() - self.settings.job_timeout_s
        for job_id in await self.calls.run("read queue", self.store.queued_ids):
            job = await self.calls.run("read job", functools.partial(self.store.get, job_id))
            if job is not None and job.created_at < cutoff:
                await self._fail(job_id, reason)


def _load_failure(event: Event) -> str:
    if isinstance(event, WorkerLoadFailed):
        return event.error
    if isinstance(event, WorkerDied):
        return f"the worker exited while loading the model (exit code {event.exitcode})"
    return f"unexpected message from a loading worker: {event!r}"


def _same_error_repeated(errors: list[str]) -> bool:
    last = errors[-SAME_LOAD_ERRORS:]
    return len(last) == SAME_LOAD_ERRORS and len(set(last)) == 1


def _backoff(failures: int) -> float:
    return float(min(2.0 ** max(failures - 1, 0), MAX_BACKOFF_S))


def _died_while_idle(proc: WorkerProcess) -> bool:
    """An idle worker can only report its own exit (it recycles itself when it looks
    poisoned); notice it before handing it a job, so no job spends an attempt on it."""
    while not proc.events.empty():
        event = proc.events.get_nowait()
        if isinstance(event, (WorkerDied, WorkerRetiring)):
            log.warning("worker retired or exited while idle (%s); starting a new one", event)
            return True
    return False
