"""A real, throwaway PostgreSQL server for tests and benchmarks: initdb into a temporary
folder, trust auth on 127.0.0.1 only, a free port, fsync off unless asked (a benchmark that
measures commits turns it on and says so); started, stopped, restarted or killed at will.

PostgreSQL refuses to run as root, so when the tests run as root the server runs as the
``postgres`` OS user (``runuser -u postgres --``) in a folder it owns. The binaries are found
through ``pg_config --bindir``, ``/usr/lib/postgresql/*/bin`` or ``PATH``; without any, a
clear :class:`RuntimeError` (CI installs Debian's ``postgresql`` package; nothing is skipped).

Fixture pattern (a session-wide server, a fresh database per test)::

    from benchmarks.services.postgres import shared_server

    @pytest.fixture()
    def pg_url() -> str:
        return shared_server().new_database()

:func:`shared_server` starts one server per test process on first use and stops it at exit,
so every module that imports it shares the same server. A test that stops, kills or
restarts the server must use its own ``with PostgresServer() as server:`` instead.
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from pathlib import Path
from types import TracebackType

import psycopg

_START_TIMEOUT_S = 30


def find_bindir() -> Path:
    """The folder holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and out.stdout.strip():
            candidates.append(Path(out.stdout.strip()))
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                      key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
                      reverse=True)
    candidates += [Path(p) for p in versions]
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise RuntimeError("no PostgreSQL server binaries (initdb, pg_ctl) found via pg_config, "
                       "/usr/lib/postgresql/*/bin or PATH; install the postgresql package")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One PostgreSQL cluster in a temporary folder, listening on 127.0.0.1:``port``.

    Example::

        with PostgresServer() as server:
            url = server.new_database()      # postgresql://postgres@127.0.0.1:PORT/t_...
            server.restart()
    """

    def __init__(self, fsync: bool = False, max_connections: int = 200, shared_buffers: str = "32MB") -> None:
        self.bindir = find_bindir()
        self.fsync = fsync
        self.max_connections = max_connections
        self.shared_buffers = shared_buffers
        self.port = free_port()
        self._as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="takeone-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.sockets = self.root / "sockets"
        self.log = self.root / "server.log"
        self._initialised = False
        self._lock = threading.Lock()

    # -- processes ---------------------------------------------------------------------------

    def _cmd(self, *args: str) -> list[str]:
        return (["runuser", "-u", "postgres", "--"] if self._as_root else []) + list(args)

    def _run(self, *args: str) -> None:
        out = subprocess.run(self._cmd(*args), capture_output=True, text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:2])} failed ({out.returncode}): {out.stderr or out.stdout}"
                               f"\n{self._log_tail()}")

    def _log_tail(self) -> str:
        try:
            return "server log:\n" + "\n".join(self.log.read_text(errors="replace").splitlines()[-20:])
        except OSError:
            return ""

    def _initdb(self) -> None:
        self.sockets.mkdir()
        if self._as_root:
            shutil.chown(self.root, "postgres", "postgres")
            shutil.chown(self.sockets, "postgres", "postgres")
        self._run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-sync", "--locale=C")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.sockets}'\n"
                       f"fsync = {'on' if self.fsync else 'off'}\n"
                       f"full_page_writes = {'on' if self.fsync else 'off'}\n"
                       f"max_connections = {self.max_connections}\n"
                       f"shared_buffers = {self.shared_buffers}\n")
        (self.data / "pg_hba.conf").write_text(
            "local all all trust\nhost all all 127.0.0.1/32 trust\n")
        self._initialised = True

    def start(self) -> PostgresServer:
        """Create the cluster on first start, then start it and wait until it answers."""
        with self._lock:
            if not self._initialised:
                self._initdb()
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                      "-w", "-t", str(_START_TIMEOUT_S), "start")
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"PostgreSQL did not accept connections\n{self._log_tail()}") from None
                time.sleep(0.05)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``smart``, ``fast`` or ``immediate``); nothing if it is not running."""
        if self.pid() is None:
            return
        self._run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        try:
            pid = int((self.data / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, 0)
        except (OSError, ValueError, IndexError):
            return None
        return pid

    def kill(self) -> None:
        """SIGKILL the postmaster (a crash); its backends notice and exit on their own."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while self.pid() == pid and time.monotonic() < deadline:
            time.sleep(0.02)
        self._wait_backends_gone()

    def _wait_backends_gone(self) -> None:
        """Backends of a killed postmaster exit shortly; a restart needs the port and memory free."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    sock.bind(("127.0.0.1", self.port))
                    return
                except OSError:
                    time.sleep(0.05)

    # -- databases ---------------------------------------------------------------------------

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def new_database(self) -> str:
        """A fresh, empty database with a unique name; its URL."""
        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    # -- lifetime ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the server (immediately) and remove its folder."""
        try:
            if self.pid() is not None:
                self.stop("immediate")
        finally:
            for _ in range(20):  # a server shutting down may still be writing its last files
                shutil.rmtree(self.root, ignore_errors=True)
                if not self.root.exists():
                    break
                time.sleep(0.1)

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


_shared: PostgresServer | None = None
_shared_lock = threading.Lock()


def shared_server() -> PostgresServer:
    """The test process's one long-lived server (started on first call, stopped at exit).
    Do not stop or restart it: tests that need that start their own."""
    global _shared
    with _shared_lock:
        if _shared is None:
            server = PostgresServer()
            try:
                server.start()
            except BaseException:
                server.close()
                raise
            atexit.register(server.close)
            _shared = server
        return _shared
