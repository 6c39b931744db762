"""``takeone serve`` as a real subprocess on a free port, with keys made in its own database
(the integration tests, the browser tests and the cluster stack use it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from takeone.backends.sql.store import SqlStore
from takeone.backends.sqlite.driver import SqliteDriver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    """``takeone serve`` as a real subprocess."""

    data_dir: Path
    args: list[str] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    fetch_allow: tuple[str, ...] = ("127.0.0.1",)
    env: dict[str, str] | None = None  # the server's environment (default: this process's)
    health_details: bool = True  # tests read worker pids and jobs from /healthz

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True, timeout: float = 120.0) -> Server:
        self.log_path = self.data_dir / f"server-{self.port}.log"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "takeone.cli", "serve", "--port", str(self.port),
               "--data-dir", str(self.data_dir), *self.args]
        for host in self.fetch_allow:
            cmd += ["--fetch-allow", host]
        if self.health_details:
            cmd.append("--health-details")
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        self.wait_up(ready=wait_ready, timeout=timeout)
        return self

    def wait_up(self, ready: bool, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None and self.proc.poll() is None, self.log()
            try:
                r = httpx.get(self.url + "/healthz", timeout=2)
                if r.status_code == 200 or (not ready and r.status_code == 503):
                    return dict(r.json())
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise AssertionError(f"server not up in {timeout} s:\n{self.log()}")

    def health(self) -> dict[str, Any]:
        return dict(httpx.get(self.url + "/healthz", timeout=5).json())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:] if self.log_path else ""

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def key(self, credits: float = 100.0, **kw: Any) -> str:
        store = SqlStore(SqliteDriver(self.data_dir / "takeone.db"), time.time)
        return store.create(credits, **kw).secret

    def balance(self, secret: str) -> float:
        r = httpx.get(self.url + "/v1/get-user-credits", headers={"x-api-key": secret})
        return float(r.json()["credits"])


@contextmanager
def running(data_dir: Path, *args: str, wait_ready: bool = True) -> Iterator[Server]:
    server = Server(data_dir, list(args)).start(wait_ready=wait_ready)
    try:
        yield server
    finally:
        server.stop()


def server_env() -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1")
