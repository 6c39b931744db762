"""Real parts for integration tests: a takeone server in its own process on a free port, a
local image server, and keys made in the server's own database."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

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


def png_bytes(size: tuple[int, int] = (320, 240), color: tuple[int, int, int] = (200, 80, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(size: tuple[int, int] = (640, 480)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 120, 220)).save(buf, format="JPEG")
    return buf.getvalue()


class ImageServer:
    """Serves fixed files on 127.0.0.1 and counts the requests it got."""

    def __init__(self, files: dict[str, tuple[str, bytes]]) -> None:
        self.files = files
        self.hits: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.hits.append(self.path)
                entry = outer.files.get(self.path)
                if entry is None:
                    self.send_response(404)
                    self.end_headers()
                    return
                ctype, data = entry
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def server_env() -> dict[str, str]:
    return dict(os.environ, HF_HUB_OFFLINE="1")
