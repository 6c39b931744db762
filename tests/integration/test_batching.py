"""Batching on a real tiny-profile server: concurrent compatible requests share one run, a
mixed queue groups only compatible jobs, a lone job waits no longer than the batch window,
and ``/metrics`` shows the batch sizes. Every job is still answered, charged and stored alone."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.harness import Server, running
from tests.integration.test_contract import FRAMES
from tests.integration.test_metrics import scrape, wait_for
from tests.integration.webhooks import Receiver
from tests.mp4probe import probe

WINDOW_MS = 1500  # long enough that four posts from this test land inside it on a loaded machine


def _submit(server: Server, key: str, duration: int, n: int, webhook: str | None = None) -> str:
    body = {"prompt": f"scene {n}", "duration": duration, "generate_audio": False, "seed": n}
    params = {"webhook": webhook} if webhook else None
    r = httpx.post(server.url + "/v2/kling-2.6", json=body, params=params, headers={"x-api-key": key}, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["request_id"])


def _finished(server: Server, key: str, ids: list[str]) -> dict[str, Any]:
    answers: dict[str, Any] = {}

    def done() -> bool:
        for job_id in ids:
            status = httpx.get(server.url + f"/v2/requests/{job_id}/status", headers={"x-api-key": key}).json()
            answers[job_id] = status
        return all(a["status"] in ("COMPLETED", "FAILED") for a in answers.values())

    wait_for(done, timeout=180)
    return answers


def _batch_sizes(server: Server) -> dict[str, float]:
    metrics = scrape(server)
    return {dict(labels)["le"]: value for (name, labels), value in metrics.items()
            if name == "takeone_batch_size_bucket"}


def test_a_mixed_burst_batches_only_compatible_jobs(fresh_dir: Path) -> None:
    args = ("--profile", "tiny", "--max-batch", "4", "--batch-window-ms", str(WINDOW_MS))
    with running(fresh_dir, *args) as server:
        assert server.log_path is not None
        assert "batching up to 4 compatible jobs per run" in server.log_path.read_text()
        key = server.key(100)
        durations = [5, 5, 10, 5]  # the 10 s job has another frame count: it runs alone
        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(lambda nd: _submit(server, key, nd[1], nd[0]), enumerate(durations)))
        answers = _finished(server, key, ids)
        assert all(a["status"] == "COMPLETED" for a in answers.values()), answers
        buckets = _batch_sizes(server)
        assert buckets["1.0"] == 1 and buckets["3.0"] == 4 and buckets["+Inf"] == 4  # 3 together + 1 alone
        h = {"x-api-key": key}
        for job_id, duration in zip(ids, durations):  # each delivered as its own MP4, its own length
            result = httpx.get(server.url + f"/v2/requests/{job_id}", headers=h).json()
            assert probe(httpx.get(result["output"]).content).frames == FRAMES[duration]


def test_a_lone_job_waits_at_most_the_window(fresh_dir: Path) -> None:
    args = ("--profile", "tiny", "--max-batch", "4", "--batch-window-ms", "800")
    with running(fresh_dir, *args) as server:
        key = server.key(100)
        started = time.monotonic()
        job_id = _submit(server, key, 5, 0)
        _finished(server, key, [job_id])
        queued = scrape(server)[("takeone_job_queue_seconds_sum", ())]
        assert 0.6 <= queued < 0.8 + 1.0, queued  # the window, plus at most one poll's slack
        assert time.monotonic() - started < 60


def test_cancelling_one_job_of_a_batch_releases_it_and_the_others_complete(fresh_dir: Path) -> None:
    """Each job of the batch ends as itself: charged or released, and its own webhook event."""
    args = ("--profile", "tiny", "--max-batch", "4", "--batch-window-ms", str(WINDOW_MS),
            "--debug-step-delay", "0.5")
    receiver = Receiver()
    with running(fresh_dir, *args) as server, closing(receiver):
        key = server.key(100)
        h = {"x-api-key": key}
        with ThreadPoolExecutor(4) as pool:
            ids = list(pool.map(lambda n: _submit(server, key, 5, n, receiver.url()), range(4)))
        status_of = lambda job_id: httpx.get(server.url + f"/v2/requests/{job_id}/status", headers=h).json()  # noqa: E731
        wait_for(lambda: all(status_of(job_id)["status"] == "PROCESSING" for job_id in ids))  # one batch
        after_charges = server.balance(key)
        cancelled = httpx.post(f"{server.url}/v2/requests/{ids[1]}/cancel", headers=h)
        assert cancelled.status_code == 200 and cancelled.json()["error"] == "cancelled"
        answers = _finished(server, key, ids)
        assert [answers[job_id]["status"] for job_id in ids] == ["COMPLETED", "FAILED", "COMPLETED", "COMPLETED"]
        buckets = _batch_sizes(server)
        assert buckets["3.0"] == 0 and buckets["4.0"] == 3  # the three ran in the batch of four
        price = (100 - after_charges) / 4  # four equal jobs reserved at submit
        assert price > 0 and server.balance(key) == pytest.approx(after_charges + price)  # one released
        receiver.wait(lambda: len(receiver.got) >= 4, why="one event per job")
        events = {event["data"]["request_id"]: event["type"] for event in (r.json() for r in receiver.got)}
        assert len(receiver.got) == 4 and events == {
            job_id: "video.failed" if job_id == ids[1] else "video.completed" for job_id in ids}


def test_each_job_of_a_batch_completes_when_its_own_video_is_stored(fresh_dir: Path) -> None:
    """Five posts, batches of four: the fifth waits in the queue at position 1 while the four
    run, each with its own progress; the four complete one by one as each MP4 is stored (each
    file's last progress unit sleeps the debug step delay, 0.5 s), not all at the batch's end."""
    args = ("--profile", "tiny", "--max-batch", "4", "--batch-window-ms", str(WINDOW_MS),
            "--debug-step-delay", "0.5")
    with running(fresh_dir, *args) as server:
        key = server.key(100)
        h = {"x-api-key": key}
        with ThreadPoolExecutor(5) as pool:
            ids = list(pool.map(lambda n: _submit(server, key, 5, n), range(5)))
        seen: dict[str, dict[str, Any]] = {}
        completed_at: dict[str, float] = {}

        def poll() -> bool:
            for job_id in ids:
                seen[job_id] = httpx.get(server.url + f"/v2/requests/{job_id}/status", headers=h).json()
                if seen[job_id]["status"] == "COMPLETED":
                    completed_at.setdefault(job_id, time.monotonic())
            return all(status["status"] in ("COMPLETED", "FAILED") for status in seen.values())

        def four_running() -> bool:
            poll()
            return sum(status["status"] == "PROCESSING" for status in seen.values()) == 4

        wait_for(four_running, timeout=120)
        queued = [status for status in seen.values() if status["status"] == "QUEUED"]
        assert len(queued) == 1 and queued[0]["metrics"]["queue_position"] == 1, seen
        batch = [job_id for job_id in ids if seen[job_id]["status"] == "PROCESSING"]
        wait_for(lambda: poll() or all(seen[job_id]["metrics"]["progress"] > 0 for job_id in batch), timeout=120)
        wait_for(poll, timeout=180)
        assert all(status["status"] == "COMPLETED" for status in seen.values()), seen
        finished = sorted(completed_at[job_id] for job_id in batch)
        # Answered at the batch's end, the four would complete within one round of polls.
        assert finished[-1] - finished[0] >= 1.0, finished
    buckets = _batch_sizes_after(seen)
    assert buckets == {4: 4, 1: 1}


def _batch_sizes_after(statuses: dict[str, dict[str, Any]]) -> dict[int, int]:
    """How many jobs completed at each batch size, from their statuses' metrics."""
    sizes: dict[int, int] = {}
    for status in statuses.values():
        size = int(status["metrics"].get("batch_size", 1))
        sizes[size] = sizes.get(size, 0) + 1
    return sizes
