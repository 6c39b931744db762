"""A whole cluster deployment on this machine, for the cluster tests and benchmark: a real
PostgreSQL server, a real SeaweedFS bucket, a 3-node Ray cluster, N ``takeone serve
--no-workers`` replicas on their own ports, and one ``takeone worker --workers ray`` pool
manager whose actors run the tiny profile.

Example::

    with ClusterStack(tmp_path) as stack:
        key = stack.key(credits=10)
        httpx.post(stack.replicas[0].url + "/v2/kling-2.6", json=..., headers={"x-api-key": key})
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx

from benchmarks.services.postgres import PostgresServer
from benchmarks.services.ray_cluster import CLIENT_ENV, LocalRayCluster
from benchmarks.services.seaweed import SeaweedServer
from benchmarks.services.server import Server, server_env

BUCKET = "takeone"


class ClusterStack:
    """Every part of a cluster, started in dependency order and stopped in reverse."""

    def __init__(self, root: Path, replicas: int = 2, ray_nodes: int = 3, min_workers: int = 0,
                 max_workers: int = 3, step_delay_s: float = 0.0, extra: tuple[str, ...] = ()) -> None:
        self.root = root
        self.replica_count = replicas
        self.ray_nodes = ray_nodes
        self.min_workers = min_workers
        self.max_workers = max_workers
        self.step_delay_s = step_delay_s
        self.extra = extra
        self.pg = PostgresServer()
        self.s3 = SeaweedServer(root / "s3")
        self.ray: LocalRayCluster | None = None
        self.database = ""
        self.replicas: list[Server] = []
        self.pool: subprocess.Popen[bytes] | None = None
        self.pool_log = root / "pool.log"
        self._key_ids: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ClusterStack:
        self.root.mkdir(parents=True, exist_ok=True)
        self.pg.start()
        self.database = self.pg.new_database()
        self.s3.start()
        self.s3.create_bucket(BUCKET)
        self.ray = LocalRayCluster(nodes=self.ray_nodes, env=self.env()).start()
        self.replicas = [self._replica(i) for i in range(self.replica_count)]
        self.start_pool()
        for replica in self.replicas:
            replica.wait_up(ready=True, timeout=180)
        return self

    def stop(self) -> None:
        for replica in self.replicas:
            replica.stop()
        self.stop_pool()
        if self.ray is not None:
            self.ray.shutdown()
        self.s3.stop()
        self.pg.stop()

    def __enter__(self) -> ClusterStack:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    # -- the parts ---------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        return {**server_env(), **self.s3.env(), **CLIENT_ENV}

    def backend_args(self) -> list[str]:
        return ["--database", self.database, "--storage", f"s3://{BUCKET}/videos",
                "--s3-endpoint", self.s3.endpoint, "--secret-file", str(self.root / "secret.key"),
                "--profile", "tiny"]

    def _replica(self, index: int) -> Server:
        args = [*self.backend_args(), "--no-workers", *self.extra]
        server = Server(self.root / f"replica-{index}", args, env=self.env())
        return server.start(wait_ready=False)

    def start_pool(self) -> None:
        assert self.ray is not None
        cmd = [sys.executable, "-m", "takeone.cli", "worker", *self.backend_args(),
               "--data-dir", str(self.root / "pool"), "--workers", "ray",
               "--ray-address", self.ray.address, "--min-workers", str(self.min_workers),
               "--max-workers", str(self.max_workers), "--worker-idle", "20"]
        if self.step_delay_s:
            cmd += ["--debug-step-delay", str(self.step_delay_s)]
        with self.pool_log.open("ab") as log:
            self.pool = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env())

    def stop_pool(self) -> None:
        if self.pool is not None and self.pool.poll() is None:
            self.pool.send_signal(signal.SIGTERM)
            try:
                self.pool.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.pool.kill()
                self.pool.wait(timeout=10)

    def logs(self) -> str:
        parts = [f"--- {r.url} ---\n{r.log()}" for r in self.replicas]
        if self.pool_log.exists():
            parts.append(f"--- pool ---\n{self.pool_log.read_text(errors='replace')[-6000:]}")
        return "\n".join(parts)

    # -- keys and money ----------------------------------------------------------------------

    def takeone(self, *args: str) -> str:
        """Run a ``takeone`` command against the shared database; its standard output."""
        out = subprocess.run([sys.executable, "-m", "takeone.cli", *args], capture_output=True,
                             text=True, env=self.env(), timeout=60)
        assert out.returncode == 0, out.stderr
        return out.stdout

    def key(self, credits: float = 100.0, *extra: str) -> str:
        """A new key made with ``takeone keys create --database``; its secret."""
        out = self.takeone("keys", "create", "--database", self.database, "--data-dir",
                           str(self.root / "admin"), "--credits", str(credits), *extra)
        made = re.match(r"created (key_\w+) ", out)
        assert made is not None, out
        secret = out.strip().splitlines()[-1]
        self._key_ids[secret] = made.group(1)
        return secret

    def key_id(self, secret: str) -> str:
        return self._key_ids[secret]

    def credits(self, secret: str, replica: int = 0) -> float:
        r = httpx.get(self.replicas[replica].url + "/v1/get-user-credits", headers={"x-api-key": secret}, timeout=10)
        return float(r.json()["credits"])

    def sql(self, query: str, *params: Any) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.database, autocommit=True, connect_timeout=5) as conn:
            return list(conn.execute(query, params).fetchall())  # type: ignore[arg-type]


def wait_for(check: Any, timeout: float, why: str, logs: Any = None) -> Any:
    """Poll ``check()`` until it returns something truthy; fail with ``why`` (and logs)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{why}\n{logs() if logs else ''}")
        time.sleep(0.2)
