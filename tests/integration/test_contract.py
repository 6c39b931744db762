"""The Segmind contract end to end: the seeds' snippets, the v2 queue, the segmind SDK."""

from __future__ import annotations

import time

import httpx
import pytest
import requests
import segmind

from tests.integration.harness import ImageServer, Server
from tests.mp4probe import probe

TINY_SIZES = {"16:9": (256, 144), "9:16": (144, 256), "1:1": (144, 144)}
FRAMES = {5: 121, 10: 241}


def _check_video(data: bytes, aspect: str, duration: int, audio: bool) -> None:
    p = probe(data)
    assert (p.codec, p.pix_fmt) == ("h264", "yuv420p")
    assert (p.width, p.height) == TINY_SIZES[aspect]
    assert p.frames == FRAMES[duration]
    assert p.fps == pytest.approx(24.0)
    assert p.duration == pytest.approx(FRAMES[duration] / 24, abs=0.05)
    assert p.faststart
    assert (p.audio_codec == "aac") if audio else (p.audio_codec is None)
    if audio:
        assert p.audio_duration == pytest.approx(FRAMES[duration] / 24, abs=0.1)


def test_kling_2_1_seed_snippet(server: Server, images: ImageServer) -> None:
    url = server.url + "/v1/kling-2.1"
    headers = {"x-api-key": server.key(), "Content-Type": "application/json"}
    data = {
        "image": images.url("/first.jpg"),
        "prompt": "Front View Shot of model in casual wear. [Push in] [Static shot] Subtle shoulder"
                  " rotation, confident smile, hands in pockets, slight weight shift.",
        "negative_prompt": "No jittery motion, avoid rapid scene changes.",
        "cfg_scale": 0.7,
        "mode": "pro",
        "aspect_ratio": "16:9",
        "duration": "5",
    }
    response = requests.post(url, headers=headers, json=data)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "video/mp4"
    assert float(response.headers["x-remaining-credits"]) == pytest.approx(100 - 0.45)
    assert float(response.headers["x-generation-time"]) > 0
    assert response.headers["x-request-id"]
    _check_video(response.content, "16:9", 5, audio=False)


def test_kling_2_6_seed_snippet(server: Server) -> None:
    url = server.url + "/v1/kling-2.6"
    headers = {"x-api-key": server.key(), "Content-Type": "application/json"}
    data = {
        "prompt": "Visual: São Paulo, Brazil – a narrow street packed with vibrant murals. Audio:"
                  " [Male rapper, high-energy, gritty voice] “Painted walls talk loud, yeah.”",
        "negative_prompt": "no noise, no distortion, no clutter",
        "cfg_scale": 0.8,
        "duration": "10",
        "mode": "pro",
        "aspect_ratio": "16:9",
        "generate_audio": True,
    }
    response = requests.post(url, headers=headers, json=data)
    assert response.status_code == 200, response.text
    assert float(response.headers["x-remaining-credits"]) == pytest.approx(100 - 1.75)
    _check_video(response.content, "16:9", 10, audio=True)


@pytest.mark.parametrize("body,aspect,duration,audio", [
    ({"prompt": "a fox", "duration": 5, "generate_audio": False, "aspect_ratio": "9:16"}, "9:16", 5, False),
    ({"prompt": "a fox", "duration": 5, "aspect_ratio": "1:1"}, "1:1", 5, True),
    ({"prompt": "a fox", "duration": 5, "image_url": "IMG"}, "16:9", 5, True),
])
def test_kling_2_6_cases(server: Server, images: ImageServer, body: dict[str, object],
                         aspect: str, duration: int, audio: bool) -> None:
    if body.get("image_url") == "IMG":
        body = {**body, "image_url": images.url("/square.png")}
    r = httpx.post(server.url + "/v1/kling-2.6", json=body, headers={"x-api-key": server.key()}, timeout=120)
    assert r.status_code == 200, r.text
    _check_video(r.content, aspect, duration, audio)


@pytest.mark.parametrize("mode", ["pro", "master"])
def test_kling_2_1_first_and_last_frame(server: Server, images: ImageServer, mode: str) -> None:
    body = {"image": images.url("/first.jpg"), "image_tail": images.url("/last.png"),
            "mode": mode, "aspect_ratio": "9:16", "duration": 10}
    r = httpx.post(server.url + "/v1/kling-2.1", json=body, headers={"x-api-key": server.key()}, timeout=120)
    assert r.status_code == 200, r.text
    _check_video(r.content, "9:16", 10, audio=False)


def test_v2_queue_to_completion(server: Server, images: ImageServer) -> None:
    key = server.key()
    h = {"x-api-key": key}
    r = httpx.post(server.url + "/v2/kling-2.1", json={"image": images.url("/first.jpg"), "mode": "std"},
                   headers=h)
    assert r.status_code == 200, r.text
    sub = r.json()
    assert sub["status"] == "QUEUED"
    for name in ("poll_url", "status_url", "response_url"):
        assert sub[name].startswith(server.url + "/"), sub
    status = _poll(sub["status_url"], h)
    assert status["status"] == "COMPLETED"
    result = httpx.get(sub["response_url"], headers=h).json()
    legacy = httpx.get(sub["poll_url"], headers=h).json()
    assert result["output"].startswith(server.url + "/files/")
    assert legacy["status"] == "COMPLETED" and result["metrics"]["inference_time"] > 0
    metrics = result["metrics"]
    assert metrics["generate_seconds"] > 0 and metrics["deliver_seconds"] > 0
    assert metrics["generate_seconds"] + metrics["deliver_seconds"] <= metrics["inference_time"] + 0.002
    video = httpx.get(result["output"])  # no key needed for the signed link
    assert video.status_code == 200
    _check_video(video.content, "16:9", 5, audio=False)
    part = httpx.get(result["output"], headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and part.content == video.content[:100]
    assert server.balance(key) == pytest.approx(100 - 0.25)


def _poll(url: str, headers: dict[str, str], timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    seen = set()
    while time.monotonic() < deadline:
        r = httpx.get(url, headers=headers)
        body = r.json()
        seen.add(body["status"])
        if body["status"] in ("COMPLETED", "FAILED"):
            return dict(body)
        assert 0 <= body["metrics"]["progress"] <= 1
        time.sleep(0.1)
    raise AssertionError(f"not finished; saw {seen}")


def test_segmind_sdk_run_sync(server: Server, images: ImageServer) -> None:
    client = segmind.SegmindClient(api_key=server.key(), base_url=server.url + "/v1", timeout=120)
    response = client.run_sync("kling-2.1", image=images.url("/first.jpg"), duration=5,
                               aspect_ratio="1:1")
    _check_video(response.content, "1:1", 5, audio=False)


def test_segmind_sdk_run(server: Server) -> None:
    client = segmind.SegmindClient(api_key=server.key(), base_url=server.url + "/v1", timeout=30)
    result = client.run("kling-2.6", prompt="waves on a beach", duration=5)
    assert result["status"] == "COMPLETED"
    _check_video(httpx.get(result["output"]).content, "16:9", 5, audio=True)


def test_segmind_sdk_sees_errors(server: Server) -> None:
    client = segmind.SegmindClient(api_key=server.key(), base_url=server.url + "/v1")
    with pytest.raises(segmind.exceptions.SegmindError) as err:
        client.run_sync("kling-2.6", prompt="x", duration=7)
    assert "duration" in str(err.value.detail) and "7" in str(err.value.detail)


def test_credits_endpoint(server: Server) -> None:
    key = server.key(12.5)
    r = httpx.get(server.url + "/v1/get-user-credits", headers={"x-api-key": key})
    assert r.status_code == 200
    assert r.json() == {"credits": 12.5, "free-credits": 0.0}
    assert r.headers["x-remaining-credits"] == "12.5"


def test_openapi_describes_the_contract(server: Server) -> None:
    doc = httpx.get(server.url + "/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert schemas["Kling21Input"]["required"] == ["image"]
    assert schemas["Kling26Input"]["properties"]["duration"]["default"] == 10
    body = doc["paths"]["/v2/kling-2.6"]["post"]["requestBody"]["content"]["application/json"]
    assert body["schema"]["$ref"].endswith("/Kling26Input")
    for code in ("400", "401", "403", "404", "406", "429", "500", "502", "504"):
        assert code in doc["paths"]["/v1/kling-2.1"]["post"]["responses"]


def test_api_process_never_loads_torch(server: Server) -> None:
    assert server.proc is not None
    maps = open(f"/proc/{server.proc.pid}/maps").read()
    assert "libtorch" not in maps
    workers = [w["pid"] for w in server.health()["workers"]]
    assert workers and "libtorch" in open(f"/proc/{workers[0]}/maps").read()
