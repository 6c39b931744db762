"""The Ray dispatcher: a pool of :class:`WorkerActor` sized to the queue.

The database is the durable queue; Ray only places, restarts and removes worker actors. Every
``poll_s`` the pool reads the queue depth and each actor's state, aims at ``queued + busy``
actors (clamped to ``min_workers .. max_workers``), creates the missing ones (an actor Ray
cannot place yet stays pending, which is what asks Ray's autoscaler for a GPU node; it is
counted once) and drains actors idle longer than ``worker_idle_s`` while above the target.
It tells an actor at once when the job it runs was cancelled (through any API replica), so
the worker stops at its next step; it returns jobs whose worker vanished to the queue (lease
expiry), so none is stranded while the pool is empty; and it reports itself to the store as
a worker named ``host/pid/pool``: ``ready`` while it can grow, so ``/healthz`` stays 200 at
zero actors.

Load failures cool down rather than fail the queue. An actor's worker that keeps failing to
load rests and retries with backoff inside the actor (see
:class:`~takeone.dispatch.local.dispatcher.LocalDispatcher`); while every placed actor is
cooling, the pool reports ``cooling`` with the actor's reason, so ``/healthz`` answers 503 and
says so. Actors that Ray cannot start at all (their ``__init__`` fails)
:data:`MAX_START_FAILURES` times in a row make the pool itself rest ``load_cooldown_s``
(doubling, at most :data:`MAX_COOLDOWN_S`) before it creates another. Either way queued jobs
wait, each at most ``job_timeout_s`` from its submit, then fail with their credits released.

Example::

    pool = RayDispatcher(store, Settings(worker_backend="ray", ray_address="head:6379",
                                         max_workers=4, profile="ltx-2"))
    await pool.start()
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from takeone.core.jobs import Job, JobStatus, JobStore, WorkerStatus
from takeone.core.settings import Settings
from takeone.dispatch.identity import is_dead, process_identity
from takeone.dispatch.joblog import log_finished
from takeone.dispatch.ray.actor import ActorState, WorkerActor
from takeone.dispatch.ray.group import (
    create_group_member,
    group_placement_reason,
    max_groups,
    rank_kind,
    ray_nodes,
    release_group,
    unfilled_devices,
)
from takeone.dispatch.retry import StoreRetry

log = logging.getLogger("takeone.ray")

NAMESPACE = "takeone"
STATE_WAIT_S = 0.5
STOP_WAIT_S = 30.0
PLACEMENT_WAIT_S = 30.0  # an actor not placed after this long is reported, with the reason
LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
MAX_START_FAILURES = 3  # actors failing to start in a row before the pool cools down
MAX_COOLDOWN_S = 900.0


@dataclass
class Member:
    """One actor of the pool as the pool last saw it (``pending`` until it first answers)."""

    handle: Any  # ray.actor.ActorHandle
    idle_since: float
    created: float = field(default_factory=time.monotonic)
    state: ActorState | None = None
    asking: Any = None  # the state() call in flight, if any
    draining: bool = False
    gone: bool = False
    cancelled: set[str] = field(default_factory=set)  # jobs it was told to stop
    group: Any = None  # a worker group's placement group (dispatch/ray/group.py)

    @property
    def job_id(self) -> str | None:
        return self.state.job_id if self.state is not None else None

    @property
    def phase(self) -> str:
        return self.state.state if self.state is not None else "pending"


@dataclass
class PoolView:
    """Counts for logs and tests."""

    actors: int
    busy: int
    draining: int
    pending: int
    owners: list[str] = field(default_factory=list)


class RayDispatcher:
    """Worker actors on a Ray cluster, grown with the queue and shrunk when idle.

    Example::

        pool = RayDispatcher(store, settings, on_finished=waiter.finished)
        await pool.start()     # connects to settings.ray_address (or a running ray.init)
    """

    def __init__(self, store: JobStore, settings: Settings,
                 on_finished: Callable[[str], None] | None = None, poll_s: float = 1.0) -> None:
        self.store = store
        self.settings = settings
        self.on_finished = on_finished
        self.poll_s = poll_s
        self.identity = f"{process_identity()}/pool"
        self.members: list[Member] = []
        self.error: str | None = None
        self.unplaced: str | None = None  # why actors have waited PLACEMENT_WAIT_S to be placed
        self.calls = StoreRetry("ray pool")
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._last_expiry = 0.0
        self.start_failures = 0  # actors whose __init__ failed since one last became ready
        self.cooldowns = 0  # the pool's own rests since an actor was last ready
        self.cool_until = 0.0  # monotonic time before which no actor is created
        self.rest_reason: str | None = None  # why the pool itself rests
        self.cooling: str | None = None  # why the pool or its actors are cooling down

    # -- the Dispatcher protocol -------------------------------------------------------------

    async def start(self) -> None:
        with keep_stop_signals():
            await asyncio.to_thread(connect, self.settings.ray_address)
        if self.settings.gpus_per_job > 1:
            await asyncio.to_thread(report_unfilled, self.settings)
        await self._report("ready")
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await asyncio.to_thread(self._stop_all)
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._report("stopped"), 2.0)

    def notify(self) -> None:
        """A job was queued: every actor that is not draining looks for it now. The pool's
        view of who is idle is up to one poll old (an actor that just finished still shows
        its job), so all are told; a busy or loading one simply ignores it."""
        self._wakeup.set()
        for m in self.members:
            if not m.draining and not m.gone:
                m.handle.notify.remote()

    def cancel_running(self, job_id: str) -> None:
        for m in self.members:
            if m.job_id == job_id or (m.state is not None and job_id in m.state.batch):
                m.handle.cancel.remote(job_id)

    # -- what the pool looks like --------------------------------------------------------------

    def view(self) -> PoolView:
        live = [m for m in self.members if not m.draining]
        return PoolView(actors=len(live), busy=sum(1 for m in live if m.job_id),
                        draining=len(self.members) - len(live),
                        pending=sum(1 for m in live if m.state is None),
                        owners=[m.state.owner for m in live if m.state is not None])

    def max_workers(self) -> int:
        """``max_workers``, or one actor per GPU the cluster has now (at least one)."""
        if self.settings.gpus_per_job > 1:
            return max_groups(self.settings)
        if self.settings.max_workers is not None:
            return max(self.settings.max_workers, self.settings.min_workers)
        import ray

        per = self.settings.worker_gpus
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        have = resources.get("GPU" if per > 0 else "CPU", 0.0)
        count = math.floor(have / per) if per > 0 else int(have)
        return max(count, self.settings.min_workers, 1)

    # -- the loop ----------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._stopping:
            try:
                await self._tick()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the pool keeps going; the error is reported
                self.error = f"{type(exc).__name__}: {exc}"
                log.exception("ray pool: tick failed")
            self._wakeup.clear()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self.poll_s)

    async def _tick(self) -> None:
        await asyncio.to_thread(self._refresh)
        self._reap()
        queued = len(await self.calls.run("read queue", self.store.queued_ids))
        await asyncio.to_thread(self._resize, queued)
        await self._check_placement()
        await self._stop_cancelled()
        await self._expire_leases()
        state = self._pool_state()
        await self._report(state)
        if state == "cooling" and queued:
            await self._fail_overdue()

    def _refresh(self) -> None:
        """Read every actor's state (one call in flight per actor; a pending one is skipped)."""
        import ray

        now = time.monotonic()
        for m in self.members:
            if m.asking is None:
                m.asking = m.handle.state.remote()
        asking = [m.asking for m in self.members]
        if asking:
            ray.wait(asking, num_returns=len(asking), timeout=STATE_WAIT_S)
        for m in self.members:
            ready, _ = ray.wait([m.asking], timeout=0)
            if not ready:
                continue
            try:
                m.state = ray.get(m.asking)
            except ray.exceptions.RayActorError as exc:  # Ray restarts it unless it cannot start
                m.gone = bool(getattr(exc, "actor_init_failed", False))
                if m.gone:
                    self._start_failed(f"a worker actor failed to start: {exc}")
                log.warning("ray pool: an actor did not answer (gone for good: %s): %s", m.gone, exc)
            except ray.exceptions.RayError as exc:  # restarting: ask again next time
                log.info("ray pool: an actor did not answer: %s", exc)
            m.asking = None
            if m.phase in ("ready", "busy"):
                self.start_failures, self.cooldowns = 0, 0
            if m.job_id is not None or m.phase in ("pending", "starting"):
                m.idle_since = now

    def _start_failed(self, reason: str) -> None:
        """One more actor could not start; after :data:`MAX_START_FAILURES` in a row the pool
        rests (doubling each time) before it creates another."""
        self.start_failures += 1
        if self.start_failures < MAX_START_FAILURES:
            return
        self.cooldowns += 1
        rest = min(self.settings.load_cooldown_s * 2 ** (self.cooldowns - 1), MAX_COOLDOWN_S)
        self.cool_until = time.monotonic() + rest
        self.start_failures = 0
        self.rest_reason = (f"{MAX_START_FAILURES} worker actors in a row failed to start (last: {reason});"
                            f" cooling down, next try in {rest:.0f} s (queued jobs wait)")
        log.warning("ray pool: %s", self.rest_reason)

    def _reap(self) -> None:
        """Kill actors that drained; forget those Ray gave up on."""
        import ray

        keep = []
        for m in self.members:
            if m.phase == "drained" or m.gone:
                with contextlib.suppress(Exception):
                    ray.kill(m.handle)
                _release(m)
                continue
            keep.append(m)
        self.members = keep

    def _resize(self, queued: int) -> None:
        live = [m for m in self.members if not m.draining]
        busy = sum(1 for m in live if m.job_id is not None)
        target = min(max(queued + busy, self.settings.min_workers), self.max_workers())
        if len(live) < target and time.monotonic() < self.cool_until:
            return  # resting after actors failed to start
        if len(live) < target:
            for _ in range(target - len(live)):
                self.members.append(self._create_member())
            log.info("ray pool: %d queued, %d busy: growing to %d actors", queued, busy, target)
            return
        now = time.monotonic()
        idle = [m for m in live if m.job_id is None and m.phase == "ready"
                and now - m.idle_since >= self.settings.worker_idle_s]
        for m in idle[:max(len(live) - target, 0)]:
            m.draining = True
            m.handle.drain.remote()
            log.info("ray pool: retiring idle actor %s", m.state.owner if m.state else "?")

    def _create_member(self) -> Member:
        if self.settings.gpus_per_job > 1:
            handle, group = create_group_member(self.settings)
            return Member(handle, time.monotonic(), group=group)
        return Member(self._create(), time.monotonic())

    def _create(self) -> Any:
        import ray

        gpus = self.settings.worker_gpus
        actor = ray.remote(WorkerActor).options(
            num_gpus=gpus, num_cpus=0 if gpus > 0 else 1, max_restarts=-1, max_task_retries=-1)
        return actor.remote(self.settings)

    def _pool_state(self) -> str:
        """``cooling`` while the pool rests or every placed actor is cooling down (with the
        reason in :attr:`cooling`), ``starting`` while actors wait to be placed, else ``ready``."""
        live = [m for m in self.members if not m.draining and m.state is not None]
        self.cooling = None
        if time.monotonic() < self.cool_until and not any(m.phase in ("ready", "busy") for m in live):
            self.cooling = self.rest_reason
            return "cooling"
        resting = [m.state for m in live if m.state is not None and m.phase in ("cooling", "failed")]
        if live and len(resting) == len(live):
            self.cooling = resting[0].error or "the worker actors are cooling down"
            return "cooling"
        if self.unplaced is not None and not any(m.phase in ("ready", "busy") for m in live):
            return "starting"  # jobs cannot run: /healthz answers 503 with the reason
        return "ready"

    async def _check_placement(self) -> None:
        """Say why, once actors have waited :data:`PLACEMENT_WAIT_S` for Ray to place them
        (no node has the GPUs or CPUs each asks for), in the log and in the pool's report."""
        now = time.monotonic()
        waiting = [m for m in self.members if m.state is None and not m.draining
                   and now - m.created >= PLACEMENT_WAIT_S]
        if not waiting:
            self.unplaced = None
            return
        reason = await asyncio.to_thread(self._placement_reason, len(waiting), now - waiting[0].created)
        if reason != self.unplaced:
            log.warning("ray pool: %s", reason)
        self.unplaced = reason

    def _placement_reason(self, count: int, waited: float) -> str:
        import ray

        if self.settings.gpus_per_job > 1:
            return group_placement_reason(ray_nodes(), rank_kind(self.settings), self.settings.gpus_per_job,
                                          count, waited)
        gpus = self.settings.worker_gpus
        wanted = f"{gpus:g} GPU" if gpus > 0 else "1 CPU"
        resources: dict[str, float] = ray.available_resources()  # type: ignore[no-untyped-call]
        total: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        kind = "GPU" if gpus > 0 else "CPU"
        hint = ("; on machines without GPUs give --worker-gpus 0 (CPU actors)" if gpus > 0
                else "; add CPUs or nodes to the Ray cluster")
        return (f"{count} worker actor(s) not placed by Ray after {waited:.0f} s: each asks for {wanted},"
                f" the cluster has {total.get(kind, 0.0):g} {kind} ({resources.get(kind, 0.0):g} free){hint}")

    async def _stop_cancelled(self) -> None:
        """Tell an actor at once that its job was cancelled (or failed) elsewhere: its own
        lease renewal would notice only at the next progress report, a step later."""
        for m in self.members:
            job_id = m.job_id
            if job_id is None or job_id in m.cancelled:
                continue
            job = await self.calls.run("read job", partial(self.store.get, job_id))
            if job is not None and job.status is JobStatus.FAILED:
                m.cancelled.add(job_id)
                m.handle.cancel.remote(job_id)

    async def _fail_overdue(self) -> None:
        """While the pool cools down a queued job waits at most ``job_timeout_s`` from its
        submit; then it fails with the reason (its credits released)."""
        reason = f"no worker could serve it within {self.settings.job_timeout_s:.0f} s: {self.cooling}"
        cutoff = time.time() - self.settings.job_timeout_s
        for job_id in await self.calls.run("read queue", self.store.queued_ids):
            queued = await self.calls.run("read job", partial(self.store.get, job_id))
            if queued is None or queued.created_at >= cutoff:
                continue
            job = await self.calls.run("fail", partial(self.store.fail, job_id, reason))
            if job is not None:
                self._finished(job)

    async def _expire_leases(self) -> None:
        """Jobs whose worker vanished (a lost node) go back to the queue, actors or not."""
        if time.monotonic() - self._last_expiry < self.settings.heartbeat_s:
            return
        self._last_expiry = time.monotonic()
        jobs = await self.calls.run("expire leases", lambda: self.store.expire_leases(
            self.settings.max_attempts, is_dead, frozenset()))
        for job in jobs:
            log.warning("job %s lost its worker; now %s", job.id, job.status.value)
            self._finished(job)

    def _finished(self, job: Job) -> None:
        if job.status.is_terminal():
            log_finished(job)
            if self.on_finished is not None:
                self.on_finished(job.id)
        else:
            self._wakeup.set()

    async def _report(self, state: str) -> None:
        view = self.view()
        status = WorkerStatus(id=self.identity, profile=self.settings.profile, state=state,
                              seen_at=time.time(), device=f"ray pool: {view.actors} actors, {view.busy} busy",
                              job_id=None, pid=os.getpid(),
                              error=self.cooling if state == "cooling" else self.unplaced)
        await self.calls.run("report pool", lambda: self.store.report_worker(status))

    def _stop_all(self) -> None:
        import ray

        stops = [m.handle.stop.remote() for m in self.members]
        if stops:
            ray.wait(stops, num_returns=len(stops), timeout=STOP_WAIT_S)
        for m in self.members:
            with contextlib.suppress(Exception):
                ray.kill(m.handle)
            _release(m)
        self.members = []


def _release(member: Member) -> None:
    """A worker group's devices go back to Ray with its lead."""
    if member.group is not None:
        with contextlib.suppress(Exception):
            release_group(member.group)
        member.group = None


def report_unfilled(settings: Settings) -> None:
    """Devices of the cluster that do not fill a whole group are said, not silently idle."""
    for line in unfilled_devices(ray_nodes(), rank_kind(settings), settings.gpus_per_job):
        log.warning("ray pool: %s", line)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def keep_stop_signals() -> Iterator[None]:
    """Ray's core worker installs a C++ failure handler for SIGTERM in the process that joins
    a cluster (it prints a stack trace and aborts): put the process's own handlers back, so a
    supervisor's SIGTERM stops it as cleanly as Ctrl+C. Only the main thread owns signals."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handlers = {sig: signal.getsignal(sig) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in handlers.items():
            if handler is not None:
                signal.signal(sig, handler)


def connect(address: str | None) -> None:
    """Join the Ray cluster at ``address`` (``None``: the default, ``auto`` then local) in the
    ``takeone`` namespace, unless this process already joined one."""
    import ray

    if ray.is_initialized():
        return
    if address is not None and address.rsplit(":", 1)[0] in LOOPBACK_HOSTS:
        _dial_loopback()
    ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)


def _dial_loopback() -> None:
    """Ray rewrites a loopback address into this host's outside address before dialing, so a
    head started on 127.0.0.1 alone would be unreachable; its switch for that is read when
    Ray is imported (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER``), hence the module attribute."""
    with contextlib.suppress(ImportError, AttributeError):
        import ray._private.ray_constants as constants

        constants.ENABLE_RAY_CLUSTER = False
