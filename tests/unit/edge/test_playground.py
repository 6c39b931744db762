"""The playground's history route on the real app and a real SQLite store: a key sees its
own requests only, each with what it takes to send it again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from takeone.core.blobs import input_key
from takeone.core.jobs import Job, JobStatus, SubmitLimits
from takeone.core.settings import Settings
from takeone.core.task import VideoTask
from takeone.edge.app import create_app
from takeone.edge.services import Services
from tests.integration.harness import png_bytes

pytestmark = pytest.mark.timeout(60)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


@pytest.fixture()
def services(tmp_path: Path) -> Services:
    return Services.build(Settings(data_dir=tmp_path / "data", profile="tiny"), clock=Clock())


@pytest.fixture()
def client(services: Services) -> Iterator[TestClient]:
    # No lifespan: no worker starts, and the history needs none.
    yield TestClient(create_app(services.settings, services))


def new_key(services: Services) -> tuple[str, str]:
    created = asyncio.run(services.store.create(100.0))
    return created.key.id, created.secret


def add_job(services: Services, key_id: str, job_id: str, task: VideoTask,
            route: str = "kling-2.6") -> None:
    job = Job(id=job_id, key_id=key_id, task=task, price=1.0, status=JobStatus.QUEUED,
              created_at=services.clock(), route=route)
    asyncio.run(services.store.submit(job, SubmitLimits(max_concurrent=None, max_queue=100)))


def saved_input(services: Services, job_id: str, role: str, size: tuple[int, int]) -> str:
    key = input_key(job_id, role)
    services.blobs.put(key, png_bytes(size))
    return key


def history(client: TestClient, secret: str, query: str = "") -> list[dict[str, Any]]:
    r = client.get(f"/v2/requests{query}", headers={"x-api-key": secret})
    assert r.status_code == 200, r.text
    return list(r.json()["requests"])


def test_history_lists_this_keys_requests_only_newest_first(services: Services,
                                                            client: TestClient) -> None:
    mine, my_secret = new_key(services)
    theirs, their_secret = new_key(services)
    for n in range(3):
        add_job(services, mine, f"mine-{n}", VideoTask(kind="t2v", prompt=f"p{n}"))
    add_job(services, theirs, "theirs-0", VideoTask(kind="t2v", prompt="not yours"))

    assert [i["request_id"] for i in history(client, my_secret)] == ["mine-2", "mine-1", "mine-0"]
    assert [i["request_id"] for i in history(client, their_secret)] == ["theirs-0"]
    assert [i["request_id"] for i in history(client, my_secret, "?limit=2")] == ["mine-2", "mine-1"]
    r = client.get("/v2/requests?limit=2", headers={"x-api-key": my_secret})
    assert r.headers["x-remaining-credits"] == "97"  # three prices reserved


def test_history_needs_a_key_and_a_sane_limit(services: Services, client: TestClient) -> None:
    _, secret = new_key(services)
    assert client.get("/v2/requests").status_code == 401
    assert client.get("/v2/requests", headers={"x-api-key": "tk_nope"}).status_code == 401
    for bad in ("0", "101", "x", "1e3", "-1", "99999"):
        r = client.get(f"/v2/requests?limit={bad}", headers={"x-api-key": secret})
        assert r.status_code == 400 and r.json()["error"].startswith("limit: "), r.text


def test_an_item_has_what_a_replay_needs(services: Services, client: TestClient) -> None:
    key_id, secret = new_key(services)
    task = VideoTask(kind="flf2v", tier="quality", seconds=10, aspect_ratio="1:1", seed=7,
                     prompt="a slow pan", negative_prompt="blur", guidance=0.25,
                     first_frame=saved_input(services, "j1", "first_frame", (64, 48)),
                     last_frame=saved_input(services, "j1", "last_frame", (40, 30)))
    add_job(services, key_id, "j1", task, route="kling-2.1")

    [item] = history(client, secret)
    assert item["endpoint"] == "kling-2.1" and item["status"] == "QUEUED"
    assert item["params"] == {"prompt": "a slow pan", "negative_prompt": "blur", "cfg_scale": 0.25,
                              "mode": "master", "aspect_ratio": "1:1", "duration": 10, "seed": 7}
    assert set(item["images"]) == {"image", "image_tail"}
    got = client.get(item["images"]["image_tail"])  # a signed link: no key needed
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert got.content == png_bytes((40, 30))
    tampered = item["images"]["image"].replace("first_frame", "last_frame")
    assert client.get(tampered).status_code == 404


def test_an_audio_endpoint_replays_its_audio_field(services: Services, client: TestClient) -> None:
    key_id, secret = new_key(services)
    task = VideoTask(kind="i2v", prompt="x", audio=False,
                     first_frame=saved_input(services, "j2", "first_frame", (8, 8)))
    add_job(services, key_id, "j2", task)
    [item] = history(client, secret)
    assert item["params"]["generate_audio"] is False and "seed" not in item["params"]
    assert set(item["images"]) == {"image_url"}


def test_the_route_is_in_the_openapi_document(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    listing = doc["paths"]["/v2/requests"]["get"]
    assert listing["responses"]["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/HistoryBody"}
    assert "422" not in listing["responses"] and "400" in listing["responses"]
    assert [p["name"] for p in listing["parameters"]] == ["limit"]
    assert "HistoryItem" in doc["components"]["schemas"]
    assert "/" not in doc["paths"] and "/playground" not in doc["paths"]


def test_the_page_and_its_files_are_served(client: TestClient) -> None:
    for path in ("/", "/playground"):
        r = client.get(path)
        assert r.status_code == 200 and "takeone playground" in r.text
    assert client.get("/playground/static/js/main.js").status_code == 200
    assert client.get("/playground/static/nope.js").status_code == 404
