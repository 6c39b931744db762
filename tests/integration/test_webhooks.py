"""Signed, retried webhooks for every dialect, on real servers, verified by a local receiver
with the ``standardwebhooks`` package: retries keep one webhook-id, 410 stops, Retry-After is
honoured, loopback receivers need --fetch-allow, and a delivery survives an API process
killed between the job's end and the delivery."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from tests.integration.harness import Server
from tests.integration.test_kling_dialect import issue_pair
from tests.integration.webhooks import Receiver

FAST_RETRIES = ["--webhook-retry-delays", "0.5,0.5,0.5"]
JOB = {"prompt": "a steady fox", "duration": 5, "generate_audio": False}


def cli(server: Server, *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "takeone.cli", "keys", *args, "--data-dir",
                          str(server.data_dir)], capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1]


def webhook_secret(server: Server, key: str) -> str:
    return cli(server, "webhook-secret", key[:7])


@pytest.fixture(scope="module")
def hooked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = Server(tmp_path_factory.mktemp("webhooks"), ["--profile", "tiny", *FAST_RETRIES]).start()
    yield srv
    srv.stop()


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_segmind_v2_webhook_is_signed_and_the_answers_stay_the_seeds(hooked: Server, receiver: Receiver) -> None:
    key = hooked.key()
    secret = webhook_secret(hooked, key)
    assert secret.startswith("whsec_")
    r = httpx.post(hooked.url + "/v2/kling-2.6", params={"webhook": receiver.url()}, json=JOB,
                   headers={"x-api-key": key})
    assert r.status_code == 200 and set(r.json()) == {"request_id", "status", "poll_url", "status_url",
                                                      "response_url"}
    receiver.wait(lambda: len(receiver.got) == 1, why="the completed event")
    time.sleep(1.0)
    assert len(receiver.got) == 1  # one event: nothing for PROCESSING in this dialect
    event = receiver.got[0].verify(secret)
    result = httpx.get(r.json()["response_url"], headers={"x-api-key": key}).json()
    assert event["type"] == "video.completed" and event["data"]["request_id"] == r.json()["request_id"]
    assert {k: v for k, v in event["data"].items() if k != "output"} == \
        {k: v for k, v in result.items() if k != "output"}
    assert httpx.get(event["data"]["output"]).headers["content-type"] == "video/mp4"


def test_500_twice_then_200_is_three_deliveries_with_one_id(hooked: Server) -> None:
    receiver = Receiver([500, 500, 200])
    try:
        key = hooked.key()
        secret = webhook_secret(hooked, key)
        cli(hooked, "webhook", key[:7], receiver.url("/openai"))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            client = openai.OpenAI(base_url=hooked.url + "/v1", api_key=key, max_retries=0)
            video = client.videos.create(prompt="a fox", seconds="5")
        receiver.wait(lambda: len(receiver.got) >= 3, why="three attempts")
        time.sleep(1.5)
        assert len(receiver.got) == 3
        assert len({r.headers["webhook-id"] for r in receiver.got}) == 1
        events = [r.verify(secret) for r in receiver.got]
        assert all(e["type"] == "video.completed" and e["data"] == {"id": video.id} for e in events)
        assert len({e["id"] for e in events}) == 1
    finally:
        receiver.close()


def test_kling_callback_gets_the_task_on_each_change(hooked: Server, receiver: Receiver) -> None:
    pair = issue_pair(hooked)
    secret = webhook_secret(hooked, pair.api_key)
    r = httpx.post(hooked.url + "/v1/videos/text2video", headers=pair.headers(), json={
        "prompt": "waves", "callback_url": receiver.url("/kling"), "external_task_id": "cb-1"})
    assert r.status_code == 200, r.text
    receiver.wait(lambda: len(receiver.got) == 2, why="processing and succeed")
    tasks = [got.verify(secret) for got in receiver.got]
    assert [t["task_status"] for t in tasks] == ["processing", "succeed"]
    assert {t["task_id"] for t in tasks} == {r.json()["data"]["task_id"]}
    assert tasks[1]["task_info"] == {"external_task_id": "cb-1"}
    assert httpx.get(tasks[1]["task_result"]["videos"][0]["url"]).status_code == 200


def test_retry_after_is_honoured_and_410_stops(hooked: Server) -> None:
    slow, gone = Receiver([(429, {"Retry-After": "2"}), 200]), Receiver([410])
    try:
        key = hooked.key()
        for target in (slow, gone):
            r = httpx.post(hooked.url + "/v2/kling-2.6", params={"webhook": target.url()}, json=JOB,
                           headers={"x-api-key": key})
            assert r.status_code == 200
        slow.wait(lambda: len(slow.got) == 2, why="the retry after 429")
        assert slow.got[1].at - slow.got[0].at >= 1.9  # not the 0.5 s of the schedule
        gone.wait(lambda: len(gone.got) == 1, why="the first attempt")
        time.sleep(2.0)
        assert len(gone.got) == 1
        assert "webhook-signature" not in gone.got[0].headers  # this key has no secret: unsigned
    finally:
        slow.close()
        gone.close()


def test_a_loopback_receiver_needs_fetch_allow(fresh_dir: Path, receiver: Receiver) -> None:
    server = Server(fresh_dir, ["--no-workers", "--profile", "tiny"], fetch_allow=()).start(wait_ready=False)
    try:
        key = server.key()
        r = httpx.post(server.url + "/v2/kling-2.6", params={"webhook": receiver.url()}, json=JOB,
                       headers={"x-api-key": key})
        assert r.status_code == 400 and r.json()["error"].startswith("webhook:")
        assert "loopback" in r.json()["error"]
        pair = issue_pair(server)
        r = httpx.post(server.url + "/v1/videos/text2video", headers=pair.headers(),
                       json={"prompt": "x", "callback_url": receiver.url()})
        assert r.status_code == 400 and "callback_url" in r.json()["message"]
    finally:
        server.stop()
    assert receiver.got == []


def _worker(data_dir: Path, *args: str) -> subprocess.Popen[bytes]:
    log = (data_dir / "worker.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "takeone.cli", "worker", "--data-dir", str(data_dir),
                             "--profile", "tiny", *args], stdout=log, stderr=subprocess.STDOUT)


def _outbox(data_dir: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(data_dir / "takeone.db") as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT o.*, j.status AS job_status FROM webhook_outbox o"
                            " JOIN jobs j ON j.id = o.job_id ORDER BY o.id").fetchall()
    return [dict(r) for r in rows]


def test_killed_between_the_end_and_the_delivery_delivers_after_restart(fresh_dir: Path,
                                                                         receiver: Receiver) -> None:
    """The API runs with --no-workers and the job in a `takeone worker` process: the worker
    writes the outbox row as the job completes while no API process is alive; a restarted
    API process sends it, with the webhook-id the row was written with."""
    fresh_dir.mkdir(parents=True)
    api = Server(fresh_dir, ["--no-workers", "--profile", "tiny", *FAST_RETRIES]).start(wait_ready=False)
    worker = _worker(fresh_dir, "--debug-step-delay", "0.5")
    try:
        api.wait_up(ready=True, timeout=120)
        key = api.key()
        secret = webhook_secret(api, key)
        r = httpx.post(api.url + "/v2/kling-2.6", params={"webhook": receiver.url()}, json=JOB,
                       headers={"x-api-key": key})
        rid = r.json()["request_id"]
        status_url, deadline = f"{api.url}/v2/requests/{rid}/status", time.monotonic() + 60
        while httpx.get(status_url, headers={"x-api-key": key}).json()["status"] != "PROCESSING":
            assert time.monotonic() < deadline, api.log()
            time.sleep(0.1)
        api.kill(signal.SIGKILL)
        deadline = time.monotonic() + 60
        while not any(row["status"] == "COMPLETED" for row in _outbox(fresh_dir)):
            assert time.monotonic() < deadline, "the worker never completed the job"
            time.sleep(0.2)
        pending = [row for row in _outbox(fresh_dir) if row["status"] == "COMPLETED"]
        assert pending[0]["done_at"] is None and receiver.got == []
        restarted = Server(fresh_dir, ["--no-workers", "--profile", "tiny", *FAST_RETRIES]).start(wait_ready=False)
        try:
            receiver.wait(lambda: len(receiver.got) == 1, why="the delivery after the restart")
            got = receiver.got[0]
            assert got.headers["webhook-id"] == pending[0]["webhook_id"]
            assert got.verify(secret)["data"]["request_id"] == rid
        finally:
            restarted.stop()
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(timeout=60)
        api.stop()
