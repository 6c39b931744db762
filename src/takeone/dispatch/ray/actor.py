"""One GPU worker on a Ray node: a one-slot :class:`LocalDispatcher` on a thread of its own.

The actor opens the shared store itself (from :class:`Settings`, which pickles), then claims
jobs under a lease named after its own process (``host/pid/0``), exactly like ``takeone
worker``: the worker process it spawns loads the profile once, inherits the GPU Ray gave the
actor, and stops a job at the next denoising step once its lease renewal finds it cancelled.
Ray re-runs ``__init__`` when it restarts the actor; a job the dead actor held goes back to
the queue when its lease runs out (at once on the same host, where its pid is known gone).

Example::

    actor = ray.remote(WorkerActor).options(num_gpus=1, max_restarts=-1).remote(settings)
    ray.get(actor.state.remote())   # ActorState(state="starting", ...)
"""

from __future__ import annotations

import asyncio
import os
import socket
import threading
from dataclasses import dataclass

from takeone.core.settings import Settings
from takeone.dispatch.local.dispatcher import LocalDispatcher
from takeone.dispatch.local.group import make_process
from takeone.dispatch.local.process import WorkerProcess
from takeone.dispatch.protocol import DispatcherSettings
from takeone.engine.config import WorkerConfig

STOP_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class ActorState:
    """What the pool reads from an actor: its slot's state (``starting``, ``ready``,
    ``failed``, ``draining``, ``drained``), the job it runs, and where it lives."""

    state: str
    job_id: str | None
    owner: str
    node_id: str
    pid: int
    error: str | None = None
    batch: tuple[str, ...] = ()  # every job of the batch it runs (job_id is the first)


def dispatcher_settings(settings: Settings) -> DispatcherSettings:
    return DispatcherSettings.from_settings(settings)


def actor_worker_config(settings: Settings, gpu_ids: list[str]) -> WorkerConfig:
    """The worker an actor runs: on the GPUs Ray assigned it (none: a CPU worker)."""
    return WorkerConfig.from_settings(settings, ",".join(gpu_ids) if gpu_ids else None)


class WorkerActor:
    """A Ray actor class (wrap it with ``ray.remote``); its methods answer at once."""

    def __init__(self, settings: Settings) -> None:
        from takeone.backends.factory import WORKER_CONNECTIONS, open_store

        self.node_id = _node_id()
        config = actor_worker_config(settings, _gpu_ids())
        store = open_store(settings, connections=WORKER_CONNECTIONS)
        self.dispatcher = LocalDispatcher(store, [config], dispatcher_settings(settings), config.open_blobs(),
                                          name=f"{socket.gethostname()}/{os.getpid()}",
                                          make_process=self._make_process)
        self._phase = "serving"  # then draining, drained or stopped
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True, name="takeone-dispatcher")
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self.dispatcher.start())
        self._loop.run_forever()

    def _make_process(self, config: WorkerConfig, loop: asyncio.AbstractEventLoop) -> WorkerProcess:
        """The slot's worker process (a worker group's lead overrides it: dispatch/ray/group.py)."""
        return make_process(config, loop)

    def state(self) -> ActorState:
        slot = self.dispatcher.slots[0]
        state = slot.state if self._phase == "serving" else self._phase
        return ActorState(state, slot.job_id, slot.owner, self.node_id, os.getpid(), slot.error, slot.batch)

    def notify(self) -> None:
        """A job was queued: claim it now rather than at the next poll."""
        self._loop.call_soon_threadsafe(self.dispatcher.notify)

    def cancel(self, job_id: str) -> None:
        self._loop.call_soon_threadsafe(self.dispatcher.cancel_running, job_id)

    def drain(self) -> None:
        """Claim no new job, finish the running one, then stop the worker; :meth:`state`
        says ``drained`` once the actor can be killed without losing anything."""
        if self._phase != "serving":
            return
        self._phase = "draining"
        future = asyncio.run_coroutine_threadsafe(self.dispatcher.drain(), self._loop)
        future.add_done_callback(lambda _: setattr(self, "_phase", "drained"))

    def stop(self) -> None:
        """Stop the worker now (a running job goes back to the queue when its lease ends)."""
        if self._phase in ("drained", "stopped"):
            return
        self._phase = "stopped"
        asyncio.run_coroutine_threadsafe(self.dispatcher.stop(), self._loop).result(STOP_TIMEOUT_S)


def _gpu_ids() -> list[str]:
    import ray

    return [str(i) for i in ray.get_gpu_ids()]


def _node_id() -> str:
    import ray

    return str(ray.get_runtime_context().get_node_id())
