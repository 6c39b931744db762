"""The playground's history route on the real app and a real SQLite store: a key sees its
own requests only, each with what it takes to send it again."""

from __future__ import annotations

import asyncio
import base64
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from PIL import Image

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
            route: str = "kling-2.6", dialect: str = "segmind") -> None:
    job = Job(id=job_id, key_id=key_id, task=task, price=1.0, status=JobStatus.QUEUED,
              created_at=services.clock(), route=route, dialect=dialect)
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


# ---- every dialect's requests, each sent over HTTP the way that dialect's client sends it


def submit_everywhere(client: TestClient, secret: str, image: str) -> dict[str, str]:
    """One request through each hosted dialect and Segmind; their ids by dialect."""
    bearer = {"Authorization": f"Bearer {secret}"}
    ids = {}
    r = client.post("/v2/kling-2.6", headers={"x-api-key": secret},
                    json={"prompt": "segmind fox", "duration": 5})
    assert r.status_code == 200, r.text
    ids["segmind"] = r.json()["request_id"]
    r = client.post("/v1/predictions", headers=bearer, json={
        "version": "kwaivgi/kling-v2.6", "input": {"prompt": "replicate fox", "duration": 5,
                                                   "mode": "pro", "generate_audio": False}})
    assert r.status_code == 201, r.text
    ids["replicate"] = r.json()["id"]
    r = client.post("/fal/fal-ai/kling-video/v2.1/standard/image-to-video",
                    headers={"Authorization": f"Key {secret}"},
                    json={"prompt": "fal fox", "image_url": image, "duration": "10"})
    assert r.status_code == 200, r.text
    ids["fal"] = r.json()["request_id"]
    r = client.post("/fal/fal-ai/ltx-2/text-to-video/fast", headers={"Authorization": f"Key {secret}"},
                    json={"prompt": "fal ltx fox", "duration": 6})
    assert r.status_code == 200, r.text
    ids["fal-ltx"] = r.json()["request_id"]
    r = client.post("/runpod/v2/quality/run", headers=bearer,
                    json={"input": {"prompt": "runpod fox", "duration": 5, "guidance": 0.3,
                                    "seed": 11}})
    assert r.status_code == 200, r.text
    ids["runpod"] = r.json()["id"]
    r = client.post("/v1/videos", headers=bearer, json={"prompt": "openai fox", "seconds": "4"})
    assert r.status_code == 200, r.text
    ids["openai"] = r.json()["id"]
    return ids


def test_history_lists_the_keys_requests_from_every_dialect(services: Services,
                                                            client: TestClient) -> None:
    key_id, secret = new_key(services)
    _, other = new_key(services)
    image = "data:image/png;base64," + base64.b64encode(png_bytes((64, 48))).decode()
    ids = submit_everywhere(client, secret, image)
    add_job(services, key_id, "kling-1", VideoTask(kind="t2v", prompt="kling fox"),
            route="text2video", dialect="kling")
    submit_everywhere(client, other, image)  # another key's: never listed

    items = history(client, secret)
    assert [i["dialect"] for i in items] == [
        "kling", "openai", "runpod", "fal", "fal", "replicate", "segmind"]
    by_prompt = {i["params"]["prompt"]: i for i in items}
    assert len(by_prompt) == 7, "each request once, this key's only"
    expected = {
        "segmind fox": ("kling-2.6", "POST /v2/kling-2.6", ids["segmind"]),
        "replicate fox": ("kwaivgi/kling-v2.6", "POST /v1/predictions", ids["replicate"]),
        "fal fox": ("fal-ai/kling-video/v2.1/standard/image-to-video",
                    "POST /fal/fal-ai/kling-video/v2.1/standard/image-to-video", ids["fal"]),
        "fal ltx fox": ("fal-ai/ltx-2/text-to-video/fast",
                        "POST /fal/fal-ai/ltx-2/text-to-video/fast", ids["fal-ltx"]),
        "runpod fox": ("quality", "POST /runpod/v2/quality/run", ids["runpod"]),
        "openai fox": ("sora-2", "POST /v1/videos", ids["openai"]),
        "kling fox": ("text2video", "POST /v1/videos/text2video", "kling-1"),
    }
    for prompt, (endpoint, route, dialect_id) in expected.items():
        item = by_prompt[prompt]
        assert (item["endpoint"], item["route"], item["dialect_id"]) == (endpoint, route, dialect_id)
        assert item["status"] == "QUEUED" and item["progress"] == 0 and item["output"] is None


def test_each_items_status_url_answers_in_its_own_dialect(services: Services,
                                                          client: TestClient) -> None:
    _, secret = new_key(services)
    ids = submit_everywhere(client, secret, "data:image/png;base64,"
                            + base64.b64encode(png_bytes((64, 48))).decode())
    items = {i["dialect_id"]: i for i in history(client, secret)}
    auth = {"segmind": {"x-api-key": secret}, "fal": {"Authorization": f"Key {secret}"}}
    for dialect, public in ids.items():
        item = items[public]
        assert item["status_url"].startswith("http://testserver/")
        headers = auth.get(item["dialect"], {"Authorization": f"Bearer {secret}"})
        r = client.get(item["status_url"], headers=headers)
        assert r.status_code in (200, 202), (dialect, item["status_url"], r.text)  # fal: 202 queued
        assert public in r.text, (dialect, r.text)


def test_a_finished_job_has_its_video_link(services: Services, client: TestClient) -> None:
    _, secret = new_key(services)
    r = client.post("/v1/predictions", headers={"Authorization": f"Bearer {secret}"}, json={
        "version": "kwaivgi/kling-v2.6", "input": {"prompt": "done", "duration": 5}})
    assert r.status_code == 201, r.text
    [item] = history(client, secret)
    job_id = item["request_id"]
    asyncio.run(services.store.claim("w/1/0", 30))
    services.blobs.put(f"outputs/{job_id}.mp4", b"not really an mp4, but these bytes")
    asyncio.run(services.store.complete(job_id, f"outputs/{job_id}.mp4", {"seed": 5}))

    [item] = history(client, secret)
    assert item["status"] == "COMPLETED" and item["seed"] == 5
    got = client.get(item["output"])  # a signed link: no key needed
    assert got.status_code == 200 and got.content == b"not really an mp4, but these bytes"


def test_another_dialects_request_replays_through_the_matching_segmind_form(
        services: Services, client: TestClient) -> None:
    _, secret = new_key(services)
    image = png_bytes((64, 48))
    submit_everywhere(client, secret, "data:image/png;base64," + base64.b64encode(image).decode())
    items = {i["params"]["prompt"]: i for i in history(client, secret)}

    replicate = items["replicate fox"]
    assert replicate["replay_endpoint"] == "kling-2.6" and replicate["replay_error"] is None
    assert replicate["params"] == {"prompt": "replicate fox", "negative_prompt": "",
                                   "cfg_scale": 0.5, "mode": "pro", "aspect_ratio": "16:9",
                                   "duration": 5, "generate_audio": False}
    fal = items["fal fox"]  # fal's "standard" Kling is the fast tier, Segmind's mode std
    assert fal["replay_endpoint"] == "kling-2.1" and fal["replay_error"] is None
    assert fal["params"]["mode"] == "std" and fal["params"]["duration"] == 10
    assert set(fal["images"]) == {"image"}
    got = client.get(fal["images"]["image"])  # the image it was made with, stored as PNG
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(got.content)).size == (64, 48)
    runpod = items["runpod fox"]  # text to video at the quality tier: no Segmind form has it
    assert runpod["replay_endpoint"] is None
    assert runpod["replay_error"].startswith(
        "no Segmind form makes the same video (kling-2.1: image: is required (got nothing);"
        " kling-2.6: mode: Input should be 'pro' (got 'master');")
    assert "kling-3-pro-text2video: the tier would be 'standard', not 'quality'" in runpod["replay_error"]
    assert runpod["params"]["mode"] == "master" and runpod["params"]["cfg_scale"] == 0.3
    assert items["segmind fox"]["replay_endpoint"] == "kling-2.6"


def test_each_dialect_gives_the_page_its_name_and_its_clients_models(client: TestClient) -> None:
    """The page names no dialect's models: it reads them from each dialect's own data."""
    from takeone.edge.dialects.fal.body import MODELS as FAL_MODELS
    from takeone.edge.dialects.registry import dialects

    r = client.get("/playground/dialects.json")
    assert r.status_code == 200, r.text
    data = r.json()
    assert set(data) == {d.name for d in dialects()}
    assert data["fal"]["label"] == "fal queue" and data["openai"]["label"] == "OpenAI Videos"
    forms = data["segmind"]["forms"]
    assert forms["kling-2.1"] == {"images": {"first_frame": "image", "last_frame": "image_tail"},
                                  "audio": False}
    assert forms["kling-2.6"] == {"images": {"first_frame": "image_url"}, "audio": True}
    fal = data["fal"]["snippet"]
    for slug in ("kling-2.1", "kling-2.6"):
        for tier in ("fast", "standard", "quality"):
            model = (fal["models"].get(slug) or fal["default"])[tier]["image-to-video"]
            assert model in FAL_MODELS, (slug, tier, model)
    replicate = data["replicate"]["snippet"]
    assert replicate["models"]["kling-2.1"]["quality"]["model"] == "kwaivgi/kling-v2.1-master"
    assert replicate["default"]["standard"] == {"model": "kwaivgi/kling-v2.6", "input": {"mode": "pro"},
                                                "audio": True}
