"""A supervisor's SIGTERM stops every long-running command cleanly: ``takeone serve`` and
``takeone worker`` exit 0 without a traceback, and the job a worker was running goes back to
the queue at once (not after its lease), so the next worker finishes it, charged once."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import Server

JOB = {"prompt": "a slow fox", "duration": 5, "generate_audio": False}  # costs 0.438
SLOW = ["--profile", "tiny", "--debug-step-delay", "1"]


def _status(data_dir: Path, rid: str) -> str:
    with sqlite3.connect(data_dir / "takeone.db") as db:
        return str(db.execute("SELECT status FROM jobs WHERE id = ?", (rid,)).fetchone()[0])


def _submit(server: Server, key: str) -> str:
    r = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers={"x-api-key": key}, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["request_id"])


def _wait_status(data_dir: Path, rid: str, wanted: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while _status(data_dir, rid).upper() != wanted:
        assert time.monotonic() < deadline, f"{rid} never {wanted}: {_status(data_dir, rid)}"
        time.sleep(0.2)


def _finished(server: Server, key: str, rid: str, timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(f"{server.url}/v2/requests/{rid}", headers={"x-api-key": key}, timeout=10).json()
        if body["status"] in ("COMPLETED", "FAILED"):
            return dict(body)
        assert time.monotonic() < deadline, f"{rid} never finished:\n{server.log()}"
        time.sleep(0.3)


def test_sigterm_stops_serve_and_requeues_its_running_job(tmp_path: Path) -> None:
    server = Server(tmp_path / "d", SLOW).start()
    key = server.key(10)
    rid = _submit(server, key)
    _wait_status(server.data_dir, rid, "PROCESSING")
    assert server.proc is not None
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=60) == 0, server.log()
    log = server.log()
    assert "Traceback" not in log, log
    assert '"GET /healthz' not in log and '"POST /v2/kling-2.6' not in log, log  # no access log by default
    assert _status(server.data_dir, rid).upper() == "QUEUED"  # released at once, not left running
    again = Server(server.data_dir, ["--profile", "tiny"], port=server.port).start()
    try:
        assert _finished(again, key, rid)["status"] == "COMPLETED"
        assert abs(again.balance(key) - (10 - 0.438)) < 1e-6
    finally:
        again.stop()


def test_sigterm_stops_a_worker_and_requeues_its_running_job(tmp_path: Path) -> None:
    api = Server(tmp_path / "d", ["--no-workers", "--profile", "tiny"]).start(wait_ready=False)
    worker_log = tmp_path / "worker.log"
    try:
        key = api.key(10)
        rid = _submit(api, key)
        with worker_log.open("wb") as out:
            worker = subprocess.Popen([sys.executable, "-m", "takeone.cli", "worker", *SLOW, "--data-dir",
                                       str(api.data_dir)], stdout=out, stderr=subprocess.STDOUT)
        _wait_status(api.data_dir, rid, "PROCESSING")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, worker_log.read_text()
        assert "Traceback" not in worker_log.read_text(), worker_log.read_text()
        assert _status(api.data_dir, rid).upper() == "QUEUED"
        with worker_log.open("ab") as out:
            worker = subprocess.Popen([sys.executable, "-m", "takeone.cli", "worker", "--profile", "tiny",
                                       "--data-dir", str(api.data_dir)], stdout=out, stderr=subprocess.STDOUT)
        try:
            assert _finished(api, key, rid)["status"] == "COMPLETED"
        finally:
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0, worker_log.read_text()
    finally:
        api.stop()


@pytest.mark.cluster
def test_sigterm_stops_a_ray_pool_manager_cleanly(tmp_path: Path) -> None:
    """Ray's core worker puts a C++ handler on SIGTERM that prints a stack trace and aborts;
    the pool manager keeps its own. A CPU-only pool (``--worker-gpus 0``) runs the job."""
    api = Server(tmp_path / "d", ["--no-workers", "--profile", "tiny"]).start(wait_ready=False)
    log_path = tmp_path / "pool.log"
    try:
        key = api.key(10)
        with log_path.open("wb") as out:
            pool = subprocess.Popen([sys.executable, "-m", "takeone.cli", "worker", "--workers", "ray",
                                     "--worker-gpus", "0", "--max-workers", "1", "--profile", "tiny",
                                     "--data-dir", str(api.data_dir)], stdout=out, stderr=subprocess.STDOUT)
        try:
            assert _finished(api, key, _submit(api, key), timeout=240)["status"] == "COMPLETED"
        finally:
            pool.send_signal(signal.SIGTERM)
            code = pool.wait(timeout=120)
        log = log_path.read_text(errors="replace")
        assert code == 0 and "SIGTERM received" not in log and "Traceback" not in log, log[-3000:]
    finally:
        api.stop()
