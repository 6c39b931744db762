"""An API replica started with another ``--profile`` than its workers refuses jobs, naming
both profiles, rather than describing videos that are not the ones delivered (a 1080x1920
``size`` for a 144x256 MP4); with the same profile every dialect reports what is delivered."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.harness import Server


def test_a_replica_with_another_profile_than_its_workers_refuses_by_name(tmp_path: Path) -> None:
    api = Server(tmp_path / "d", ["--no-workers"]).start(wait_ready=False)  # the default: ltx-2
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        worker = subprocess.Popen([sys.executable, "-m", "takeone.cli", "worker", "--profile", "tiny",
                                   "--data-dir", str(api.data_dir)], stdout=out, stderr=subprocess.STDOUT)
    try:
        key = api.key(10)
        deadline = time.monotonic() + 120
        while "--profile tiny" not in str((health := httpx.get(api.url + "/healthz", timeout=10)).json()):
            assert worker.poll() is None and time.monotonic() < deadline, health.text + log.read_text()
            time.sleep(0.5)
        assert health.status_code == 503 and "ltx-2" in health.json()["error"], health.text
        segmind = httpx.post(api.url + "/v2/kling-2.6", json={"prompt": "a fox", "duration": 5},
                             headers={"x-api-key": key}, timeout=30)
        assert segmind.status_code == 502 and "--profile tiny" in segmind.json()["error"], segmind.text
        openai = httpx.post(api.url + "/v1/videos", json={"prompt": "a fox", "size": "720x1280"},
                            headers={"authorization": f"Bearer {key}"}, timeout=30)
        assert openai.status_code >= 500 and "--profile tiny" in openai.text, openai.text
        assert api.balance(key) == 10  # nothing reserved
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        api.stop()
