"""The store is the system of record: store outages, a full disk, workers that die while
loading, and API processes separate from the workers, all on real processes."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.harness import Server, running
from tests.mp4probe import probe

JOB = {"prompt": "a steady fox", "duration": 5, "generate_audio": False}  # costs 0.438


def _submit(server: Server, key: str) -> str:
    r = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers={"x-api-key": key})
    assert r.status_code == 200, r.text
    return str(r.json()["request_id"])


def _status(server: Server, key: str, rid: str) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/v2/requests/{rid}/status", headers={"x-api-key": key}, timeout=10)
    return dict(r.json())


def _until(check: Callable[[], bool], timeout: float, why: str, server: Server) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"{why}\n{server.log()}"
        time.sleep(0.2)


def _health(server: Server) -> tuple[int, dict[str, Any]]:
    r = httpx.get(server.url + "/healthz", timeout=10)
    return r.status_code, dict(r.json())


@contextmanager
def _locked(db_path: Path) -> Iterator[None]:
    """Another process's write lock on the database, as a long migration or backup holds it."""
    conn = sqlite3.connect(db_path, isolation_level=None, timeout=60)
    conn.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        conn.execute("ROLLBACK")
        conn.close()


def test_store_locked_past_the_busy_timeout_during_a_run(fresh_dir: Path) -> None:
    """Longer than the store's busy timeout (``--store-busy-timeout 3`` here, 30 s by
    default; the lock is held for 8 s): every write of the running job fails for a while. The
    job still ends once, credits settle once, /healthz says why it is 503 while the lock
    lasts and 200 after, and the queue drains."""
    with running(fresh_dir, "--profile", "tiny", "--debug-step-delay", "1", "--store-busy-timeout", "3") as server:
        key = server.key(10)
        running_id, queued_id = _submit(server, key), _submit(server, key)
        _until(lambda: _status(server, key, running_id)["status"] == "PROCESSING", 60, "never ran", server)
        with _locked(fresh_dir / "takeone.db"):
            started = time.monotonic()
            code, body = _health(server)
            assert code == 503 and "locked" in str(body["error"]), body
            assert _status(server, key, running_id)["status"] == "PROCESSING"  # reads still work
            time.sleep(max(0.0, 8 - (time.monotonic() - started)))
            assert _health(server)[0] == 503
        _until(lambda: _health(server)[0] == 200, 30, "never healthy again", server)
        for rid in (running_id, queued_id):
            _until(lambda r=rid: _status(server, key, r)["status"] == "COMPLETED", 120,  # type: ignore[misc]
                   f"{rid} did not complete", server)
        assert server.balance(key) == pytest.approx(10 - 2 * 0.438)


def _mount_tmpfs(path: Path, size: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    mount = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                           capture_output=True, text=True)
    if mount.returncode != 0:
        pytest.skip(f"mounting a small tmpfs needs privileges this runner lacks: {mount.stderr}")


def _fill(folder: Path) -> Path:
    """Write zeros until the file system refuses another byte."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 4096, 1):
            try:
                while True:
                    os.write(fd, b"\0" * size)
            except OSError:
                continue
    finally:
        os.close(fd)
    return filler


def test_full_disk_during_a_run(fresh_dir: Path) -> None:
    """The whole data folder on a small tmpfs, filled up while a job runs: that job fails with
    its credits back, /healthz is 503 naming the full disk while it lasts and 200 after, and
    the job queued behind it runs once there is room again."""
    _mount_tmpfs(fresh_dir, "24m")
    try:
        with running(fresh_dir, "--profile", "tiny", "--debug-step-delay", "1") as server:
            key = server.key(10)
            first, second = _submit(server, key), _submit(server, key)
            _until(lambda: _status(server, key, first)["status"] == "PROCESSING", 60, "never ran", server)
            filler = _fill(fresh_dir)
            _until(lambda: _health(server)[0] == 503, 30, "a full disk looked healthy", server)
            assert any(w in str(_health(server)[1]["error"]) for w in ("full", "space")), server.log()
            _until(lambda: "No space left" in server.log() or "disk is full" in server.log(), 60,
                   "the running job never hit the full disk", server)
            filler.unlink()
            _until(lambda: _health(server)[0] == 200, 30, "never healthy again", server)
            _until(lambda: _status(server, key, first)["status"] in ("FAILED", "COMPLETED"), 120,
                   "the running job never ended", server)
            _until(lambda: _status(server, key, second)["status"] == "COMPLETED", 120,
                   "the queue did not drain", server)
            done = [_status(server, key, rid)["status"] for rid in (first, second)].count("COMPLETED")
            assert server.balance(key) == pytest.approx(10 - done * 0.438)
    finally:
        subprocess.run(["umount", "-l", str(fresh_dir)], check=False)


def _loading_pid(server: Server, not_in: set[int]) -> int:
    pids: list[int] = []

    def found() -> bool:
        workers = _health(server)[1]["workers"]
        pids[:] = [w["pid"] for w in workers if w["state"] == "starting" and w["pid"] not in not_in]
        return bool(pids) and pids[0] is not None

    _until(found, 60, "no loading worker appeared", server)
    return int(pids[0])


def test_a_worker_killed_twice_while_loading_is_restarted(fresh_dir: Path) -> None:
    server = Server(fresh_dir, ["--profile", "tiny", "--debug-load-delay", "3"]).start(wait_ready=False)
    try:
        killed: set[int] = set()
        for _ in range(2):
            pid = _loading_pid(server, killed)
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        server.wait_up(ready=True, timeout=120)  # no restart of the server needed
        key = server.key(10)
        r = httpx.post(server.url + "/v1/kling-2.6", json=JOB, headers={"x-api-key": key}, timeout=120)
        assert r.status_code == 200, r.text
        assert server.log_path is not None and "exited while loading" in server.log_path.read_text()
    finally:
        server.stop()


@contextmanager
def _worker_process(data_dir: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    log = (data_dir / "worker.log").open("ab")
    cmd = [sys.executable, "-m", "takeone.cli", "worker", "--data-dir", str(data_dir), *args]
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()


def test_two_api_processes_and_one_worker_share_one_store(fresh_dir: Path) -> None:
    """A blocking call on one API process is answered while the job runs in a separate
    worker process; the other API process sees the same jobs, keys and workers."""
    fresh_dir.mkdir(parents=True)
    api_a = Server(fresh_dir, ["--no-workers", "--profile", "tiny"]).start(wait_ready=False)
    api_b = Server(fresh_dir, ["--no-workers", "--profile", "tiny"]).start(wait_ready=False)
    try:
        code, body = _health(api_a)
        assert code == 503 and "takeone worker" in str(body["error"])
        with _worker_process(fresh_dir, "--profile", "tiny", "--debug-step-delay", "0.3") as worker:
            api_a.wait_up(ready=True, timeout=120)
            api_b.wait_up(ready=True, timeout=30)
            key = api_a.key(10)
            answers: dict[str, httpx.Response] = {}
            call = threading.Thread(target=lambda: answers.setdefault("a", httpx.post(
                api_a.url + "/v1/kling-2.6", json=JOB, headers={"x-api-key": key}, timeout=120)))
            call.start()
            seen = _wait_running_on(api_b, worker.pid)
            call.join(timeout=120)
            r = answers["a"]
            assert r.status_code == 200, r.text
            assert probe(r.content).frames > 0
            rid = r.headers["x-request-id"]
            assert rid == seen
            result = httpx.get(f"{api_b.url}/v2/requests/{rid}", headers={"x-api-key": key}).json()
            assert result["status"] == "COMPLETED" and result["output"].startswith(api_b.url)
            assert httpx.get(result["output"]).content == r.content
            assert api_b.balance(key) == pytest.approx(10 - 0.438)
    finally:
        api_a.stop()
        api_b.stop()


def _wait_running_on(api: Server, worker_pid: int) -> str:
    """The id of the job the separate worker process runs, as another API process sees it."""
    found: list[str] = []

    def running_job() -> bool:
        workers = _health(api)[1]["workers"]
        jobs = [w["job"] for w in workers if w["job"] and w["id"].split("/")[1] == str(worker_pid)]
        found[:] = jobs
        return bool(jobs)

    _until(running_job, 60, "the worker process never ran the job", api)
    return found[0]
