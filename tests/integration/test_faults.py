"""Nothing lost: worker crashes, server crashes, deadlines, cancels, failures to load or write.

These tests start their own servers (the cancel test shares the 1 s-step one), slowed down
with the hidden ``--debug-step-delay`` flag so that a job is still running when the test strikes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.harness import Server, running

JOB = {"prompt": "a slow fox", "duration": 5, "generate_audio": False}  # costs 0.438


def _submit(server: Server, key: str) -> dict[str, Any]:
    r = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers={"x-api-key": key})
    assert r.status_code == 200, r.text
    return dict(r.json())


def _wait_status(server: Server, key: str, rid: str, wanted: set[str], timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{server.url}/v2/requests/{rid}/status", headers={"x-api-key": key}).json()
        if body["status"] in wanted:
            return dict(body)
        time.sleep(0.1)
    raise AssertionError(f"{rid} never reached {wanted}; last {body}\n{server.log()}")


def _worker_pid(server: Server) -> int:
    pids = [w["pid"] for w in server.health()["workers"] if w["state"] == "ready"]
    assert pids
    return int(pids[0])


def test_worker_killed_mid_job_is_retried_then_failed_with_credits_back(fresh_dir: Path) -> None:
    with running(fresh_dir, "--profile", "tiny", "--debug-step-delay", "1") as server:
        key = server.key(10)
        rid = _submit(server, key)["request_id"]
        _wait_status(server, key, rid, {"PROCESSING"})
        os.kill(_worker_pid(server), signal.SIGKILL)
        time.sleep(0.5)
        server.wait_up(ready=True, timeout=120)  # a new worker replaced the dead one
        _wait_status(server, key, rid, {"PROCESSING"})  # second (last) attempt
        os.kill(_worker_pid(server), signal.SIGKILL)
        body = _wait_status(server, key, rid, {"FAILED"})
        assert "died" in body["error"]
        assert server.balance(key) == 10
        server.wait_up(ready=True, timeout=120)
        again = _submit(server, key)["request_id"]  # the server keeps serving
        assert _wait_status(server, key, again, {"COMPLETED"})["status"] == "COMPLETED"
        assert server.balance(key) == pytest.approx(10 - 0.438)


def test_blocking_deadline_is_504_and_releases_credits(fresh_dir: Path) -> None:
    with running(fresh_dir, "--profile", "tiny", "--debug-step-delay", "2", "--sync-timeout", "1") as server:
        key = server.key(10)
        r = httpx.post(server.url + "/v1/kling-2.6", json=JOB, headers={"x-api-key": key}, timeout=60)
        assert r.status_code == 504
        assert "1 s" in r.json()["error"]
        assert server.balance(key) == 10


def test_cancel_running_job_frees_worker(stepping_server: Server) -> None:
    server = stepping_server
    key = server.key(10)
    h = {"x-api-key": key}
    rid = _submit(server, key)["request_id"]
    _wait_status(server, key, rid, {"PROCESSING"})
    r = httpx.post(f"{server.url}/v2/requests/{rid}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "FAILED" and r.json()["error"] == "cancelled"
    again = httpx.post(f"{server.url}/v2/requests/{rid}/cancel", headers=h)
    assert again.status_code == 409 and "already finished" in again.json()["error"]
    assert server.balance(key) == 10
    nxt = _submit(server, key)["request_id"]
    assert _wait_status(server, key, nxt, {"COMPLETED"})["status"] == "COMPLETED"


def test_server_killed_and_restarted_finishes_accepted_jobs(fresh_dir: Path) -> None:
    server = Server(fresh_dir, ["--profile", "tiny", "--debug-step-delay", "1"]).start()
    key = server.key(10)
    ids = [_submit(server, key)["request_id"] for _ in range(2)]
    _wait_status(server, key, ids[0], {"PROCESSING"})
    worker = _worker_pid(server)
    server.kill(signal.SIGKILL)
    _wait_gone(worker)
    restarted = Server(fresh_dir, ["--profile", "tiny"]).start()
    try:
        for rid in ids:
            assert _wait_status(restarted, key, rid, {"COMPLETED", "FAILED"})["status"] == "COMPLETED"
        assert restarted.balance(key) == pytest.approx(10 - 2 * 0.438)
    finally:
        restarted.stop()


def _wait_gone(pid: int, timeout: float = 60) -> None:
    """The orphaned worker exits once it sees its pipe closed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    os.kill(pid, signal.SIGKILL)


def test_write_failure_is_500_and_releases_credits(fresh_dir: Path) -> None:
    with running(fresh_dir, "--profile", "tiny") as server:
        key = server.key(10)
        outputs = fresh_dir / "outputs"
        shutil.rmtree(outputs)
        outputs.write_text("a file where the outputs folder should be")
        r = httpx.post(server.url + "/v1/kling-2.6", json=JOB, headers={"x-api-key": key}, timeout=60)
        assert r.status_code == 500
        assert "generation failed" in r.json()["error"]
        assert str(fresh_dir) not in r.json()["error"] and "/tmp/" not in r.json()["error"], r.json()
        assert server.balance(key) == 10


def test_disk_full_fails_the_job_cleanly(fresh_dir: Path) -> None:
    """The outputs folder on a 64 KiB tmpfs: the encoder hits ENOSPC mid-file."""
    with running(fresh_dir, "--profile", "tiny") as server:
        outputs = fresh_dir / "outputs"
        mount = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(outputs)],
                               capture_output=True, text=True)
        if mount.returncode != 0:
            pytest.skip(f"mounting a small tmpfs needs privileges this runner lacks: {mount.stderr}")
        try:
            key = server.key(10)
            r = httpx.post(server.url + "/v1/kling-2.6", json=JOB, headers={"x-api-key": key}, timeout=60)
            assert r.status_code == 500
            assert "No space left" in r.json()["error"] or "space" in r.json()["error"].lower()
            assert str(fresh_dir) not in r.json()["error"] and "/tmp/" not in r.json()["error"], r.json()
            assert server.balance(key) == 10
            assert list(outputs.iterdir()) == []  # no half-written file left behind
        finally:
            subprocess.run(["umount", str(outputs)], check=True)
        r = httpx.post(server.url + "/v1/kling-2.6", json=JOB, headers={"x-api-key": key}, timeout=60)
        assert r.status_code == 200  # the worker is fine once there is room again


def test_a_load_failing_the_same_way_cools_down_and_recovers_once_mended(fresh_dir: Path,
                                                                          tmp_path: Path) -> None:
    """Saved tiny weights whose model_index.json is broken: each load raises the same error.
    After three the slot cools down (before: failed for good, the queue failed and submits
    got 502 until a restart); /healthz says so, a submit is accepted and waits; once the file
    is mended the next try loads it and the job completes, charged once."""
    from diffusers import LTX2Pipeline

    from takeone.models.ltx2.tiny import build_tiny_components

    weights = tmp_path / "weights"
    LTX2Pipeline(**build_tiny_components()).save_pretrained(weights)
    index = weights / "model_index.json"
    good = index.read_bytes()
    index.write_text("{ not json")
    server = Server(fresh_dir, ["--profile", "tiny", "--weights", str(weights), "--load-cooldown", "4"])
    server.start(wait_ready=False)
    try:
        key = server.key(10)
        health = _wait_health(server, "unavailable", timeout=180)  # three worker start-ups
        assert "cooling down" in health["error"] and "failed to load 3 times" in health["error"], health
        rid = _submit(server, key)["request_id"]  # accepted while cooling: it waits
        time.sleep(1.0)
        assert _wait_status(server, key, rid, {"QUEUED", "FAILED"}, timeout=5)["status"] == "QUEUED"
        index.write_bytes(good)  # the operator mends the file; no restart
        assert _wait_status(server, key, rid, {"COMPLETED", "FAILED"}, timeout=120)["status"] == "COMPLETED"
        assert server.health()["status"] == "ready"
        assert server.balance(key) == pytest.approx(10 - 0.438)
    finally:
        server.stop()


def _loading_worker(server: Server, not_these: set[int], timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [w["pid"] for w in server.health()["workers"] if w["state"] == "starting" and w["pid"]]
        fresh = [int(p) for p in pids if int(p) not in not_these]
        if fresh:
            return fresh[0]
        time.sleep(0.1)
    raise AssertionError(f"no worker started loading: {server.health()}\n{server.log()}")


def test_workers_killed_while_loading_cool_down_then_recover(fresh_dir: Path) -> None:
    """Three kills while loading (as the out-of-memory killer does): the slot cools down and
    tries again; the queued job waits and completes, a submit meanwhile is accepted (before:
    the queue was failed and submits got 502 until a restart)."""
    server = Server(fresh_dir, ["--profile", "tiny", "--debug-load-delay", "2", "--load-cooldown", "3"])
    server.start(wait_ready=False)
    try:
        key = server.key(10)
        first = _submit(server, key)["request_id"]
        killed: set[int] = set()
        for _ in range(3):
            pid = _loading_worker(server, killed)
            os.kill(pid, signal.SIGKILL)
            killed.add(pid)
        health = _wait_health(server, "unavailable", timeout=30)
        assert "cooling down" in health["error"] and "exit code -9" in health["error"], health
        second = _submit(server, key)["request_id"]  # accepted while cooling: it waits
        for rid in (first, second):
            assert _wait_status(server, key, rid, {"COMPLETED", "FAILED"})["status"] == "COMPLETED"
        assert server.health()["status"] == "ready"
        assert server.balance(key) == pytest.approx(10 - 2 * 0.438)
    finally:
        server.stop()


def _wait_health(server: Server, status: str, timeout: float = 120) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(server.url + "/healthz")
        if r.json()["status"] == status:
            assert r.status_code == 503
            return dict(r.json())
        time.sleep(0.3)
    raise AssertionError(f"health never became {status}: {server.health()}\n{server.log()}")


def test_serve_without_weights_fails_fast(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "takeone.cli", "serve", "--profile", "ltx-2", "--data-dir",
         str(tmp_path / "d"), "--port", "1"],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "TAKEONE_WEIGHTS": ""})
    assert out.returncode == 2
    assert "Lightricks/LTX-2" in out.stderr and "takeone pull ltx-2" in out.stderr


def test_blocking_caller_hanging_up_cancels_and_releases(fresh_dir: Path) -> None:
    """A client that gives up (the segmind SDK times out after 30 s by default) pays nothing."""
    with running(fresh_dir, "--profile", "tiny", "--debug-step-delay", "2") as server:
        key = server.key(10)
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(server.url + "/v1/kling-2.6", json=JOB, headers={"x-api-key": key}, timeout=1.5)
        deadline = time.monotonic() + 30
        while server.balance(key) != 10:
            assert time.monotonic() < deadline, server.log()
            time.sleep(0.2)
        assert "client disconnected" in _only_job_error(server)


def _only_job_error(server: Server) -> str:
    import sqlite3

    with sqlite3.connect(server.data_dir / "takeone.db") as db:
        rows = db.execute("SELECT status, error FROM jobs").fetchall()
    assert len(rows) == 1 and rows[0][0] == "FAILED"
    return str(rows[0][1])


def test_allocation_failure_fails_the_job_and_the_service_recovers(fresh_dir: Path) -> None:
    """The worker's address space is capped (prlimit, soft limit only) just above what it uses
    when idle: the next job's allocations fail. The job fails with its credits released; once
    memory is back, jobs succeed again, on the same worker or on a fresh one if the failure
    left the old one broken (it retires itself after repeated failures)."""
    if shutil.which("prlimit") is None:
        pytest.skip("prlimit (util-linux) is not installed")
    with running(fresh_dir, "--profile", "tiny") as server:
        key = server.key(10)
        h = {"x-api-key": key}
        assert httpx.post(server.url + "/v1/kling-2.6", json=JOB, headers=h, timeout=60).status_code == 200
        pid = _worker_pid(server)
        _cap_address_space(pid, extra_mib=30)
        r = httpx.post(server.url + "/v1/kling-2.6", json={**JOB, "duration": 10}, headers=h, timeout=60)
        assert r.status_code == 500 and ("memory" in r.json()["error"] or "failed" in r.json()["error"])
        assert server.balance(key) == pytest.approx(10 - 0.438)
        _cap_address_space(pid, extra_mib=None)
        codes = []
        for _ in range(3):
            server.wait_up(ready=True, timeout=120)
            codes.append(httpx.post(server.url + "/v1/kling-2.6", json=JOB, headers=h, timeout=60).status_code)
            if codes[-1] == 200:
                break
        assert codes[-1] == 200, (codes, server.log())
        assert server.balance(key) == pytest.approx(10 - 0.438 * 2)


def _cap_address_space(pid: int, extra_mib: int | None) -> None:
    if extra_mib is None:
        limit = "unlimited:unlimited"
    else:
        with open(f"/proc/{pid}/status") as f:
            vm_kib = next(int(line.split()[1]) for line in f if line.startswith("VmSize"))
        limit = f"{(vm_kib + extra_mib * 1024) * 1024}:unlimited"
    subprocess.run(["prlimit", f"--pid={pid}", f"--as={limit}"], check=True)
