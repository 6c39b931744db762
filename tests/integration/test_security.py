"""Promises about keys, fetching and retention, over a real server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.integration.harness import ImageServer, Server, running

JOB = {"prompt": "a fox", "duration": 5, "generate_audio": False}


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "[::ffff:127.0.0.1]",
                                  "localhost"])
def test_forbidden_fetch_never_reaches_the_target(strict: Server, images: ImageServer, host: str) -> None:
    """A server started without --fetch-allow refuses loopback in every spelling."""
    before = len(images.hits)
    url = f"http://{host}:{images.port}/first.jpg"
    r = httpx.post(strict.url + "/v2/kling-2.1", json={"image": url}, headers={"x-api-key": strict.key()})
    assert r.status_code == 400 and "image" in r.json()["error"]
    assert len(images.hits) == before


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("strict"), ["--profile", "tiny"], fetch_allow=())
    server.start()
    yield server
    server.stop()


def test_idempotency_key_does_not_pay_twice(server: Server) -> None:
    key = server.key(10)
    h = {"x-api-key": key, "Idempotency-Key": "order-42"}
    first = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=h).json()
    again = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=h).json()
    assert first["request_id"] == again["request_id"]
    deadline = time.monotonic() + 60
    while httpx.get(first["status_url"], headers=h).json()["status"] != "COMPLETED":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert server.balance(key) == pytest.approx(10 - 0.438)


def test_keys_are_never_logged(server: Server) -> None:
    key = server.key(1)
    httpx.get(server.url + "/v1/get-user-credits", headers={"x-api-key": key})
    httpx.post(server.url + "/v1/kling-2.6", json={"prompt": 3}, headers={"x-api-key": key})
    assert key not in server.log()


def test_retention_sweeps_old_results(fresh_dir: Path) -> None:
    """With a retention of about a second, finished requests and their files disappear."""
    with running(fresh_dir, "--profile", "tiny", "--retention", "0.0003", "--sweep-interval", "0.5") as server:
        key = server.key(10)
        h = {"x-api-key": key}
        sub = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=h).json()
        deadline = time.monotonic() + 60
        while httpx.get(sub["status_url"], headers=h).json()["status"] != "COMPLETED":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        output = httpx.get(sub["response_url"], headers=h).json()["output"]
        with httpx.stream("GET", output) as download:  # a download in flight is never cut short
            time.sleep(3)
            data = download.read()
        assert len(data) > 1000
        assert httpx.get(sub["status_url"], headers=h).status_code == 404
        assert httpx.get(output).status_code == 404
        assert not list((fresh_dir / "outputs").glob("*.mp4"))


def test_public_healthz_is_minimal_and_details_need_the_health_scope(fresh_dir: Path) -> None:
    """No worker ids, pids, host names or job ids to anyone who asks (before: all listed)."""
    from tests.integration.harness import Server

    server = Server(fresh_dir, ["--profile", "tiny"], health_details=False).start()
    try:
        public = httpx.get(server.url + "/healthz").json()
        assert public["status"] == "ready" and public["workers"] == [{"state": "ready", "device": "cpu"}]
        customer = httpx.get(server.url + "/healthz", headers={"x-api-key": server.key(1)}).json()
        assert customer == public
        monitor = server.key(0, scopes=["health"])
        detailed = httpx.get(server.url + "/healthz", headers={"x-api-key": monitor}).json()
        (worker,) = detailed["workers"]
        assert worker["pid"] > 0 and "/" in worker["id"] and "job" in worker
        assert httpx.post(server.url + "/v2/kling-2.6", json={"prompt": "x"},
                          headers={"x-api-key": monitor}).status_code == 403  # it generates nothing
    finally:
        server.stop()
