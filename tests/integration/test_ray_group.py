"""One video on a worker group of Ray actors (``--workers ray --gpus-per-job 2``), on a Ray
of the server's own with no GPU: a placement group of two CPU bundles on one node (STRICT_PACK),
rank 0 in an actor that holds the lease and rank 1 in an actor of its own, joined over gloo.

Tolerance: as for local groups (tests/integration/test_worker_group.py), CFG-parallel sums the
transformer's products in another order (last-bit float32 differences), which x264 may turn
into small block differences: the delivered MP4 is compared with one rank's by its mean
(under 0.5 level) and a loose bound on any pixel.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.integration.harness import Server
from tests.integration.test_worker_group import _alive, _children, _cmdline, _mp4_frames, _wait_status

pytestmark = pytest.mark.cluster

JOB = {"prompt": "fox", "duration": 5, "generate_audio": False, "seed": 3}  # costs 0.438
PRICE = 0.438


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    # a Ray of its own ("local"): the machine's CPUs, no GPU; each rank takes one CPU
    server = Server(tmp_path_factory.mktemp("ray-group"), [
        "--profile", "tiny", "--workers", "ray", "--ray-address", "local", "--worker-gpus", "0",
        "--gpus-per-job", "2", "--min-workers", "1", "--max-workers", "1", "--debug-step-delay", "0.5"])
    server.start(wait_ready=False)
    try:
        yield server
    finally:
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        server.proc.wait(timeout=120)


def _submit(server: Server, key: str) -> str:
    r = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers={"x-api-key": key}, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["request_id"])


def _rank_pids(timeout: float = 180) -> list[int]:
    """The rank processes of the group: spawned children of the lead and of the rank actor."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {}
        for pid in _all_pids():
            title = _cmdline(pid)
            if title.startswith(("ray::GroupLeadActor", "ray::RankActor")):
                kids = [k for k in _children(pid) if "spawn_main" in _cmdline(k)]
                found[title.split(".")[0].split()[0]] = kids
        if len(found) == 2 and all(len(k) == 1 for k in found.values()):
            return [found["ray::GroupLeadActor"][0], found["ray::RankActor"][0]]
        time.sleep(0.5)
    raise AssertionError("the group's two rank processes never showed")


def _all_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def test_two_ranks_on_ray_match_one_rank(server: Server, tmp_path: Path) -> None:
    key = server.key(10)
    rid = _submit(server, key)
    done = _wait_status(server, key, rid, {"COMPLETED", "FAILED"}, timeout=400)
    assert done["status"] == "COMPLETED", f"{done}\n{server.log()}"
    result = httpx.get(f"{server.url}/v2/requests/{rid}", headers={"x-api-key": key}).json()
    two = tmp_path / "two.mp4"
    two.write_bytes(httpx.get(result["output"], timeout=60).content)
    one = tmp_path / "one.mp4"
    made = subprocess.run([sys.executable, "-m", "takeone.cli", "generate", "kling-2.6", "--profile", "tiny",
                           "--prompt", "fox", "--seed", "3", "--duration", "5", "--no-audio", "-o", str(one)],
                          capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    a, b = _mp4_frames(one), _mp4_frames(two)
    assert a.shape == b.shape
    assert np.abs(a - b).mean() < 0.5 and np.abs(a - b).max() <= 32
    assert a.std() > 1.0  # not a blank video that matches anything
    devices = [w.get("device") for w in server.health()["workers"]]
    assert "2x cpu" in devices, devices  # the lead reports the whole group as its worker


def test_rank_killed_mid_job_ends_the_group_and_the_job_completes_charged_once(server: Server) -> None:
    key = server.key(10)
    rank0, rank1 = _rank_pids()
    rid = _submit(server, key)
    _wait_status(server, key, rid, {"PROCESSING"}, timeout=120)
    time.sleep(1.0)  # a step or two in
    os.kill(rank1, signal.SIGKILL)
    deadline = time.monotonic() + 60
    while _alive(rank0) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(rank0), "rank 0 outlived its group"
    done = _wait_status(server, key, rid, {"COMPLETED", "FAILED"}, timeout=400)
    assert done["status"] == "COMPLETED", f"{done}\n{server.log()}"
    assert server.balance(key) == pytest.approx(10 - PRICE)
    new0, new1 = _rank_pids()
    assert {new0, new1}.isdisjoint({rank0, rank1})  # a rebuilt group


def test_cancel_stops_both_rank_actors_and_the_group_serves_on(server: Server) -> None:
    key = server.key(10)
    before = _rank_pids()
    rid = _submit(server, key)
    _wait_status(server, key, rid, {"PROCESSING"}, timeout=120)
    r = httpx.post(f"{server.url}/v2/requests/{rid}/cancel", headers={"x-api-key": key}, timeout=30)
    assert r.status_code == 200 and r.json()["error"] == "cancelled", r.text
    assert server.balance(key) == 10
    nxt = _submit(server, key)  # the same group, still in step, runs the next job
    assert _wait_status(server, key, nxt, {"COMPLETED", "FAILED"}, timeout=400)["status"] == "COMPLETED"
    assert _rank_pids() == before  # no rank died: the cancel stopped them together
    assert server.balance(key) == pytest.approx(10 - PRICE)
