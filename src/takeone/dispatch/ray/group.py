"""A worker group on Ray: one placement group of N devices on one node, one actor per rank.

With ``--gpus-per-job N`` the pool asks Ray for a placement group of N bundles packed on one
node (``STRICT_PACK``: torch.distributed's rendezvous runs on the node's loopback, and NCCL
keeps to the node's links), each bundle one GPU, or one CPU on a cluster without GPUs (gloo
ranks, so the path runs anywhere). Rank 0 is a :class:`GroupLeadActor` in bundle 0: a
:class:`WorkerActor` whose one slot is a :class:`RayGroupProcess`. That starts rank 0's process
beside the actor and one :class:`RankActor` in each other bundle, each running its rank's
process; rank 0 links to them over loopback sockets, and from there the group is the local one
of :mod:`takeone.engine.group` (one lease, progress per step, cancel agreed at every step).

When any rank's process ends, :class:`RayGroupProcess` kills the rest and reports one
:class:`WorkerDied`: the lead's dispatcher puts the job back in the queue (charged only when it
completes) and builds the group again with backoff, new rank actors in the same bundles.

Example::

    handle, group = create_group_member(settings)   # what the pool does per worker group
    ...
    release_group(group)
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from takeone.core.settings import Settings
from takeone.dispatch.local.process import WorkerDied, WorkerProcess
from takeone.dispatch.ray.actor import WorkerActor
from takeone.engine.config import WorkerConfig

LINK_HOST = "127.0.0.1"  # every rank is on one node (STRICT_PACK)
LINK_WAIT_S = 120.0  # rank actors start (and Ray places them) within this, or the group fails
WATCH_S = 0.5


@dataclass(frozen=True)
class Link:
    """Where rank 0 listens for the other ranks, and the key they prove themselves with."""

    port: int
    authkey: bytes


def rank_kind(settings: Settings) -> str:
    """What one rank reserves: a GPU, or a CPU where actors take no GPU (``--worker-gpus 0``)."""
    return "GPU" if settings.worker_gpus > 0 else "CPU"


def group_bundles(settings: Settings) -> list[dict[str, float]]:
    """One bundle per rank: one whole device each."""
    return [{rank_kind(settings): 1.0} for _ in range(settings.gpus_per_job)]


def rank_options(settings: Settings) -> dict[str, float]:
    return {"num_gpus": 1.0, "num_cpus": 0.0} if rank_kind(settings) == "GPU" else {"num_cpus": 1.0}


def create_group_member(settings: Settings) -> tuple[Any, Any]:
    """Reserve a placement group for one worker group and start its rank 0 in bundle 0; the
    other ranks start when rank 0's slot does. Returns the lead actor and the placement group
    (Ray places it when a node has room: until then the actor stays pending and is reported)."""
    import ray
    from ray.util.placement_group import placement_group
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    group = placement_group(group_bundles(settings), strategy="STRICT_PACK",
                            name=f"takeone-group-{secrets.token_hex(4)}")
    lead = ray.remote(GroupLeadActor).options(
        **rank_options(settings), max_restarts=-1, max_task_retries=-1,
        scheduling_strategy=PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=0))
    return lead.remote(settings), group


def release_group(group: Any) -> None:
    """Give the group's devices back to Ray (its actors end with it)."""
    from ray.util.placement_group import remove_placement_group

    remove_placement_group(group)


def node_devices(nodes: list[Mapping[str, Any]], kind: str) -> dict[str, int]:
    """Each live node's whole devices of ``kind``, by node id (from ``ray.nodes()``)."""
    return {str(n["NodeID"]): int(n.get("Resources", {}).get(kind, 0.0)) for n in nodes if n.get("Alive")}


def group_capacity(nodes: list[Mapping[str, Any]], kind: str, per_job: int) -> int:
    """How many groups of ``per_job`` devices fit, each on one node."""
    return sum(count // per_job for count in node_devices(nodes, kind).values())


def unfilled_devices(nodes: list[Mapping[str, Any]], kind: str, per_job: int) -> list[str]:
    """One line per node whose devices do not fill whole groups: those devices stay unused."""
    lines = []
    for node, count in node_devices(nodes, kind).items():
        if count % per_job:
            lines.append(f"{count % per_job} {kind} of node {node[:12]} left unused: {count} {kind}"
                         f" do not fill groups of {per_job} (--gpus-per-job)")
    return lines


def group_placement_reason(nodes: list[Mapping[str, Any]], kind: str, per_job: int, count: int,
                           waited: float) -> str:
    """Why worker groups wait: no node has ``per_job`` devices of ``kind`` free together."""
    devices = node_devices(nodes, kind)
    largest = max(devices.values(), default=0)
    return (f"{count} worker group(s) not placed by Ray after {waited:.0f} s: each asks for {per_job} {kind}"
            f" on one node (--gpus-per-job {per_job}); the largest node has {largest} {kind}"
            + ("; on machines without GPUs give --worker-gpus 0 (CPU ranks)" if kind == "GPU" else ""))


def ray_nodes() -> list[Mapping[str, Any]]:
    import ray

    nodes: list[Mapping[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return nodes


# -- inside the group ----------------------------------------------------------------------------


class GroupLeadActor(WorkerActor):
    """Rank 0 of a worker group: a worker actor whose slot is the whole group."""

    def _make_process(self, config: WorkerConfig, loop: asyncio.AbstractEventLoop) -> WorkerProcess:
        return RayGroupProcess(config, loop)


class RankActor:
    """Rank ``rank`` (1 or more) of a group: runs the rank's process on the device Ray gave it."""

    def __init__(self, config: WorkerConfig, rank: int, world: int, port: int, link: Link) -> None:
        import multiprocessing

        import ray

        gpus = [str(i) for i in ray.get_gpu_ids()]
        config = dataclasses.replace(config, visible_gpu=",".join(gpus) if gpus else None)
        ctx = multiprocessing.get_context("spawn")
        self.proc = ctx.Process(target=linked_rank_main, args=(None, link, config, rank, world, port),
                                daemon=True, name=f"takeone-rank{rank}-{config.profile}")
        self.proc.start()

    def pid(self) -> int:
        return int(self.proc.pid or 0)

    def wait(self) -> int | None:
        """Block until the rank's process ends; its exit code."""
        self.proc.join()
        return self.proc.exitcode

    def stop(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(timeout=10)


class RayGroupProcess(WorkerProcess):
    """Rank 0's process beside the lead actor and a :class:`RankActor` per other bundle, seen
    by the lead's dispatcher as one worker process."""

    def __init__(self, config: WorkerConfig, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(config, loop)
        self.followers: list[Any] = []
        self._ended: list[Any] = []
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        import multiprocessing

        from takeone.engine.group import free_port

        world, port = self.config.gpus_per_job, free_port()
        link = Link(free_port(), secrets.token_bytes(16))
        self.followers = [self._follower(rank, world, port, link) for rank in range(1, world)]
        self._ended = [f.wait.remote() for f in self.followers]
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=True)
        self._proc = ctx.Process(target=linked_rank_main, args=(child, link, self.config, 0, world, port),
                                 daemon=True, name=f"takeone-rank0-{self.config.profile}")
        self._proc.start()
        child.close()
        self._conn = parent
        self._reader = threading.Thread(target=self._relay, daemon=True)
        self._reader.start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _follower(self, rank: int, world: int, port: int, link: Link) -> Any:
        import ray
        from ray.util import get_current_placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        group = get_current_placement_group()
        if group is None:
            raise RuntimeError("a worker group's lead runs in its placement group (create_group_member)")
        kind = {"num_gpus": 1.0, "num_cpus": 0.0} if self.config.visible_gpu else {"num_cpus": 1.0}
        actor = ray.remote(RankActor).options(
            **kind, max_concurrency=4, max_restarts=0,
            scheduling_strategy=PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=rank))
        return actor.remote(self.config, rank, world, port, link)

    def _watch(self) -> None:
        """The first rank to end ends the group: kill the rest, then report one death."""
        import ray

        assert self._proc is not None
        while self._proc.is_alive():
            done, _ = ray.wait(self._ended, num_returns=1, timeout=WATCH_S)
            if done:
                break
        code = self._proc.exitcode if not self._proc.is_alive() else None
        self.kill()
        self._proc.join(timeout=30)
        if self._reader is not None:
            self._reader.join(timeout=5)  # what rank 0 sent before it ended is heard first
        self._emit(WorkerDied(code))

    def kill(self) -> None:
        import ray

        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
        stops = [follower.stop.remote() for follower in self.followers]  # a killed actor would orphan its process
        with contextlib.suppress(Exception):
            ray.wait(stops, num_returns=len(stops), timeout=10)
        for follower in self.followers:
            with contextlib.suppress(Exception):
                ray.kill(follower, no_restart=True)

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is not None:
            self._proc.join(timeout=timeout)
        self.kill()


def linked_rank_main(conn: Connection | None, link: Link, config: WorkerConfig, rank: int, world: int,
                     port: int) -> None:
    """A rank's process on Ray: link rank 0 to the others over loopback, then run the rank as
    a local group does (:func:`takeone.engine.group.group_rank_main`)."""
    from takeone.engine.group import group_rank_main

    peers = accept_links(link, world - 1) if rank == 0 else [dial_link(link)]
    group_rank_main(conn, peers, config, rank, world, port)


def accept_links(link: Link, count: int) -> list[Connection]:
    with Listener((LINK_HOST, link.port), authkey=link.authkey) as listener:
        _accept_deadline(listener, LINK_WAIT_S)
        return [listener.accept() for _ in range(count)]


def _accept_deadline(listener: Listener, seconds: float) -> None:
    """A rank that never dials must not hang rank 0 for ever: its socket times out instead."""
    sock: Any = getattr(getattr(listener, "_listener", None), "_socket", None)
    if sock is not None:
        sock.settimeout(seconds)


def dial_link(link: Link, wait: Callable[[float], None] = time.sleep) -> Connection:
    deadline = time.monotonic() + LINK_WAIT_S
    while True:
        try:
            return Client((LINK_HOST, link.port), authkey=link.authkey)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            wait(0.2)


def describe_ray_groups(settings: Settings) -> str:
    """The start banner's line for Ray worker groups."""
    kind = rank_kind(settings)
    return (f"Ray worker groups of {settings.gpus_per_job} {kind} on one node each, parallel"
            f" {settings.parallel}, at {settings.ray_address or 'the default Ray address'}")


def max_groups(settings: Settings) -> int:
    """``max_workers`` or as many groups as the cluster's nodes hold now (at least one)."""
    if settings.max_workers is not None:
        return max(settings.max_workers, settings.min_workers)
    fits = group_capacity(ray_nodes(), rank_kind(settings), settings.gpus_per_job)
    return max(fits, settings.min_workers, 1)

