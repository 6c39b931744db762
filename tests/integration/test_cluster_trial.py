"""README "A trial cluster on one machine", run as written: PostgreSQL (the tests' throwaway
server stands in for the reader's database), SeaweedFS, two Ray nodes, the pool manager and a
replica, a key with an access-key pair, and a video. Only the ports and the database URL change,
so the test neither collides with a service of the machine nor needs one."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.services.postgres import shared_server

pytestmark = [pytest.mark.cluster, pytest.mark.postgres]

README = Path(__file__).resolve().parents[2] / "README.md"
PORTS = ("8333", "9333", "8080", "8888", "23646", "6379", "8000")  # the block's, in order of use


def _block() -> str:
    section = README.read_text().split("### A trial cluster on one machine", 1)[1].split("\n## ", 1)[0]
    return str(re.search(r"^```bash\n(.*?)^```", section, re.S | re.M).group(1))  # type: ignore[union-attr]


def _free_port() -> int:
    """A free port whose +10000 neighbour is free too (SeaweedFS puts gRPC there)."""
    while True:
        with socket.socket() as a, socket.socket() as b:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port + 10000 > 65000:
                continue
            try:
                b.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
            return port


def _stop_session(pgid: int) -> None:
    """Every part the script started is in its session: SIGTERM, then SIGKILL what is left."""
    for sig, pause in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 0.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        time.sleep(pause)


def test_the_trial_cluster_runs_as_written(tmp_path: Path) -> None:
    script = _block()
    for port in PORTS:
        assert re.search(rf"\b{port}\b", script), port
        script = re.sub(rf"\b{port}\b", str(_free_port()), script)
    url = shared_server().new_database()
    script = re.sub(r"^export TAKEONE_DATABASE_URL=.*$", f"export TAKEONE_DATABASE_URL={url}", script, flags=re.M)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "RAY_", "TAKEONE_"))}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    proc = subprocess.Popen(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=420)
    except subprocess.TimeoutExpired:
        out = "timed out"
    finally:
        _stop_session(proc.pid)
    logs = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}"
                     for p in (tmp_path / "pool.log", tmp_path / "api.log") if p.exists())
    assert proc.returncode == 0 and "saved fox.mp4" in out, f"{out}\n{logs}"
    assert (tmp_path / "fox.mp4").read_bytes()[4:8] == b"ftyp"
    assert '"state":"ready"' in out.splitlines()[-1] and "/pool" in out.splitlines()[-1], out
