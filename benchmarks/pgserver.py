"""A throwaway PostgreSQL server for benchmarks: initdb into a temporary folder, trust auth on
127.0.0.1 only, a free port. ``fsync`` stays on unless asked (a benchmark says which).

    with ThrowawayPostgres(fsync=True) as url:
        ...   # postgresql://postgres@127.0.0.1:PORT/postgres

As root the server runs as the ``postgres`` OS user (PostgreSQL refuses root). The binaries
come from ``pg_config --bindir``, ``/usr/lib/postgresql/*/bin`` or ``PATH``.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

import psycopg


def _bindir() -> Path:
    found: list[Path] = []
    if (pg_config := shutil.which("pg_config")) is not None:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        found += [Path(out.stdout.strip())] if out.returncode == 0 and out.stdout.strip() else []
    found += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]
    if (initdb := shutil.which("initdb")) is not None:
        found.append(Path(initdb).parent)
    for folder in found:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise SystemExit("no PostgreSQL server binaries (initdb, pg_ctl); install the postgresql package")


class ThrowawayPostgres:
    def __init__(self, fsync: bool = True, max_connections: int = 300) -> None:
        self.bin = _bindir()
        self.root = Path(tempfile.mkdtemp(prefix="takeone-bench-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.fsync = fsync
        self.max_connections = max_connections
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str) -> None:
        cmd = (["runuser", "-u", "postgres", "--"] if self.as_root else []) + list(args)
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise SystemExit(f"{args[0]} failed: {out.stderr or out.stdout}")

    def __enter__(self) -> str:
        if self.as_root:
            shutil.chown(self.root, "postgres", "postgres")
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--locale=C", "--no-sync")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.root}'\nfsync = {'on' if self.fsync else 'off'}\n"
                       f"max_connections = {self.max_connections}\nshared_buffers = 128MB\n")
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start")
        url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        for _ in range(100):
            try:
                psycopg.connect(url).close()
                return url
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise SystemExit("PostgreSQL did not answer")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.root, ignore_errors=True)
