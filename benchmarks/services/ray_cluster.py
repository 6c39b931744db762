"""A real Ray cluster of several nodes on this machine, every connection on 127.0.0.1.

The head node has one CPU and no GPU, so removing a GPU node never takes the head (and the
cluster) with it; each of the ``nodes`` worker nodes has one CPU and one fake GPU, so
``num_gpus=1`` actors land one per node. ``env`` is what the nodes' processes (and so the
actors) see, e.g. the S3 credentials of a test bucket. A client process in another process
(``takeone worker --workers ray --ray-address ADDR``) needs :data:`CLIENT_ENV`, or Ray dials
this host's outside address instead of 127.0.0.1.

Example::

    ray = LocalRayCluster(nodes=3).start()
    ray.connect()                      # this process joins as a driver (optional)
    ray.remove_node_of(actor_pid)      # the node running that actor disappears at once
    ray.add_node()
    ray.shutdown()
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

LOOPBACK = "127.0.0.1"
NODE_MEMORY = 80 * 1024 * 1024  # each node's object store: the tests pass no large objects
# A removed node is declared dead after 5 missed 1 s health checks (Ray's default: 3 s x 5).
FAST_NODE_DEATH = {"health_check_period_ms": 1000, "health_check_failure_threshold": 5}
CLIENT_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}  # "127.0.0.1" stays 127.0.0.1


class LocalRayCluster:
    def __init__(self, nodes: int = 3, env: Mapping[str, str] | None = None) -> None:
        self.nodes = nodes
        self.env = dict(env or {})
        self.cluster: Any = None  # ray.cluster_utils.Cluster
        self.gpu_nodes: list[Any] = []  # ray._private.node.Node
        self.startup_s = 0.0
        self.connected = False

    @property
    def address(self) -> str:
        assert self.cluster is not None, "start() the cluster first"
        return str(self.cluster.address)

    def start(self) -> LocalRayCluster:
        started = time.monotonic()
        _loopback_only()
        from ray.cluster_utils import Cluster

        with _environment({**self.env, **CLIENT_ENV}):
            self.cluster = Cluster(initialize_head=True, head_node_args={
                "num_cpus": 1, "num_gpus": 0, "node_ip_address": LOOPBACK,
                "include_dashboard": False, "object_store_memory": NODE_MEMORY,
                "dashboard_port": _free_port(), "dashboard_agent_listen_port": _free_port(),
                "_system_config": FAST_NODE_DEATH})
            for _ in range(self.nodes):
                self.add_node()
        self.startup_s = time.monotonic() - started
        return self

    def connect(self) -> None:
        """Join the cluster as a driver from this process (for a pool run in-process)."""
        import ray

        ray.init(address=self.address, namespace="takeone", log_to_driver=False)
        self.connected = True

    def add_node(self) -> Any:
        """One more GPU node (one CPU, one fake GPU)."""
        with _environment({**self.env, **CLIENT_ENV}):
            node = self.cluster.add_node(num_cpus=1, num_gpus=1, node_ip_address=LOOPBACK,
                                         object_store_memory=NODE_MEMORY)
        self.gpu_nodes.append(node)
        return node

    def node_running(self, pid: int) -> Any:
        """The GPU node whose raylet started ``pid`` (an actor) or one of its ancestors."""
        raylets = {_raylet_pid(n): n for n in self.gpu_nodes}
        for ancestor in _ancestors(pid):
            if ancestor in raylets:
                return raylets[ancestor]
        raise LookupError(f"no GPU node runs process {pid}")

    def remove_node(self, node: Any) -> None:
        """The node disappears at once: its raylet and its workers are killed."""
        self.cluster.remove_node(node, allow_graceful=False)
        self.gpu_nodes.remove(node)

    def remove_node_of(self, pid: int) -> None:
        self.remove_node(self.node_running(pid))

    def shutdown(self) -> None:
        if self.connected:
            import ray

            ray.shutdown()
            self.connected = False
        if self.cluster is not None:
            self.cluster.shutdown()
            self.cluster = None
            self.gpu_nodes = []

    def __enter__(self) -> LocalRayCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()


def _loopback_only() -> None:
    """Ray turns ``127.0.0.1`` in an address into this host's outside address unless its
    cluster switch is off; the switch is read when Ray is imported, so set both."""
    os.environ.update(CLIENT_ENV)
    import ray._private.ray_constants as constants

    constants.ENABLE_RAY_CLUSTER = False


@contextmanager
def _environment(extra: Mapping[str, str]) -> Iterator[None]:
    """``extra`` in this process's environment while nodes start (their processes keep it)."""
    saved = {k: os.environ.get(k) for k in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _free_port() -> int:
    """Ray's head still runs a minimal dashboard on fixed ports; two clusters must not share them."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def _raylet_pid(node: Any) -> int:
    return int(node.all_processes["raylet"][0].process.pid)


def _ancestors(pid: int) -> Iterator[int]:
    """``pid``'s parent, grandparent, ... up to init."""
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as f:
                pid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return
        yield pid
