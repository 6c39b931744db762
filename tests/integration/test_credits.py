"""Credits over HTTP: concurrent submits, queued cancels and per-job deadlines."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import Server, running

JOB = {"prompt": "a fox", "duration": 5, "generate_audio": False}  # 0.438 each


def test_concurrent_submits_accept_exactly_what_the_balance_covers(server: Server) -> None:
    key = server.key(0.438 * 5)

    def submit(_: int) -> int:
        return httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers={"x-api-key": key},
                          timeout=60).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        codes = list(pool.map(submit, range(16)))
    assert sorted(codes) == [200] * 5 + [406] * 11
    assert server.balance(key) == pytest.approx(0.0)


def test_cancel_queued_job_releases_at_once(stepping_server: Server) -> None:
    server = stepping_server
    key = server.key(10)
    h = {"x-api-key": key}
    ids = [httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=h).json()["request_id"]
           for _ in range(2)]
    status = httpx.get(f"{server.url}/v2/requests/{ids[1]}/status", headers=h).json()
    assert status["status"] == "QUEUED" and status["metrics"]["queue_position"] >= 1
    r = httpx.post(f"{server.url}/v2/requests/{ids[1]}/cancel", headers=h)
    assert r.status_code == 200 and r.json()["status"] == "FAILED" and r.json()["error"] == "cancelled"
    assert server.balance(key) == pytest.approx(10 - 0.438)  # only the first is still reserved
    result = httpx.get(f"{server.url}/v2/requests/{ids[1]}", headers=h)
    assert result.status_code == 422 and result.json()["error"] == "cancelled"
    httpx.post(f"{server.url}/v2/requests/{ids[0]}/cancel", headers=h)  # the shared worker free again


def test_job_deadline_fails_the_job_and_releases(fresh_dir: Path) -> None:
    with running(fresh_dir, "--profile", "tiny", "--debug-step-delay", "2", "--job-timeout", "1") as server:
        key = server.key(10)
        h = {"x-api-key": key}
        rid = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=h).json()["request_id"]
        deadline = time.monotonic() + 60
        while (body := httpx.get(f"{server.url}/v2/requests/{rid}/status", headers=h).json())["status"] != "FAILED":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert "deadline" in body["error"]
        assert server.balance(key) == 10


def test_limits_answer_429_with_retry_after(fresh_dir: Path) -> None:
    """Slow steps keep the first job running, so both limits are hit for certain."""
    with running(fresh_dir, "--profile", "tiny", "--debug-step-delay", "1", "--max-queue", "1") as server:
        limited = {"x-api-key": server.key(10, max_concurrent=1)}
        assert httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=limited).status_code == 200
        r = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=limited)
        assert r.status_code == 429 and "concurrent" in r.json()["error"] and int(r.headers["retry-after"]) > 0
        key = server.key(10)
        h = {"x-api-key": key}
        codes = []
        for _ in range(3):
            r = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=h)
            codes.append(r.status_code)
        assert codes[-1] == 429 and codes.count(200) >= 1
        assert int(r.headers["retry-after"]) > 0 and "queue is full" in r.json()["error"]
        assert server.balance(key) == pytest.approx(10 - 0.438 * codes.count(200))


def test_one_key_cannot_fill_the_queue(fresh_dir: Path) -> None:
    """With --max-queue 6 a key gets half of it by default, or its own --max-queued; another
    key's first submit is still accepted (before: key A's submits filled the queue and key B's
    first was a 429)."""
    with running(fresh_dir, "--profile", "tiny", "--no-workers", "--max-queue", "6",
                 wait_ready=False) as server:
        greedy, other = {"x-api-key": server.key(10)}, {"x-api-key": server.key(10)}
        answers = [httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=greedy) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert "share of the queue (3 of 6)" in answers[-1].json()["error"]
        assert int(answers[-1].headers["retry-after"]) > 0
        assert httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=other).status_code == 200
        own = {"x-api-key": server.key(10, max_queued=1)}
        assert httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=own).status_code == 200
        again = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=own)
        assert again.status_code == 429 and "(1 of 6)" in again.json()["error"]
        assert server.balance(greedy["x-api-key"]) == pytest.approx(10 - 3 * 0.438)
