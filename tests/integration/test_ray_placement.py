"""A Ray pool whose actors cannot be placed says why: after 30 s the log and ``/healthz``
(503) name what each actor asks for, what the cluster has, and ``--worker-gpus 0``. Then a
supervisor's SIGTERM stops ``takeone serve --workers ray`` cleanly (exit 0)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import Server

pytestmark = pytest.mark.cluster


def test_an_actor_ray_cannot_place_is_explained(tmp_path: Path) -> None:
    # no node has 64 GPUs: the actor stays pending, as a GPU actor does on a CPU-only cluster;
    # a Ray of its own ("local"), not whatever cluster an earlier test left its address file for
    server = Server(tmp_path / "d", ["--profile", "tiny", "--workers", "ray", "--worker-gpus", "64",
                                     "--ray-address", "local"])
    server.start(wait_ready=False)
    try:
        r = httpx.post(server.url + "/v2/kling-2.6", json={"prompt": "a fox", "duration": 5},
                       headers={"x-api-key": server.key(10)}, timeout=30)
        assert r.status_code == 200, r.text
        deadline = time.monotonic() + 150
        while "not placed" not in str((health := httpx.get(server.url + "/healthz", timeout=10)).json()):
            assert time.monotonic() < deadline, f"{health.text}\n{server.log()}"
            time.sleep(1)
        assert health.status_code == 503, health.text
        error = health.json()["error"]
        assert "64 GPU" in error and "--worker-gpus 0" in error, error
        assert "not placed by Ray" in server.log()
    finally:
        assert server.proc is not None
        server.proc.send_signal(signal.SIGTERM)
        code = server.proc.wait(timeout=120)
    log = server.log()
    assert code == 0 and "SIGTERM received" not in log and "Traceback" not in log, log[-3000:]
