"""Segmind's newer Kling routes end to end against a tiny-profile server: Kling 2.5 Turbo and
Kling 3.0 Standard / Pro text to video (every duration, multi-shot), through Segmind's own
snippet shape and the segmind SDK, with the seeds' error codes."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import requests
import segmind

from tests.integration.harness import ImageServer, Server
from tests.mp4probe import probe

TINY_SIZES = {"16:9": (256, 144), "9:16": (144, 256), "1:1": (144, 144)}
STANDARD, PRO = "kling-3-standard-text2video", "kling-3-pro-text2video"


def _check(data: bytes, seconds: int, aspect: str = "16:9", audio: bool = False) -> None:
    clip = probe(data)
    assert (clip.codec, clip.pix_fmt, clip.faststart) == ("h264", "yuv420p", True)
    assert (clip.width, clip.height) == TINY_SIZES[aspect]
    assert (clip.frames, clip.fps) == (24 * seconds + 1, 24.0)
    assert clip.duration == pytest.approx(seconds + 1 / 24, abs=0.05)
    assert (clip.audio_codec == "aac") if audio else (clip.audio_codec is None)
    if audio:
        assert clip.audio_duration == pytest.approx(clip.duration, abs=0.1)


def _post(server: Server, slug: str, body: dict[str, Any], key: str | None = None) -> requests.Response:
    headers = {"x-api-key": key or server.key(), "Content-Type": "application/json"}
    return requests.post(f"{server.url}/v1/{slug}", headers=headers, json=body, timeout=300)


def test_kling_2_5_turbo_segmind_snippet(server: Server) -> None:
    """Segmind's snippet for kling-2.5-turbo, URL and key changed: 10 s, 0.88 credits."""
    key = server.key(10.0)
    data = {
        "prompt": "A beloved community figure moves through a 1920s street carnival, warmly interacting"
                  " with attendees. Camera follows closely in a handheld cinematic style.",
        "negative_prompt": "no dark tones, no blur, no distort",
        "cfg_scale": 0.7,
        "duration": "10",
        "mode": "pro",
        "aspect_ratio": "16:9",
    }
    response = _post(server, "kling-2.5-turbo", data, key)
    assert response.status_code == 200, response.text
    assert float(response.headers["x-remaining-credits"]) == pytest.approx(10 - 0.88)
    _check(response.content, 10)


def test_kling_2_5_turbo_sdk_with_an_image(server: Server, images: ImageServer) -> None:
    client = segmind.SegmindClient(api_key=server.key(), base_url=server.url + "/v1", timeout=60)
    result = client.run("kling-2.5-turbo", prompt="she turns", image_url=images.url("/first.jpg"),
                        duration="5", aspect_ratio="9:16")
    assert result["status"] == "COMPLETED"
    _check(httpx.get(result["output"]).content, 5, "9:16")


@pytest.mark.parametrize("slug", [STANDARD, PRO])
def test_kling_3_makes_every_duration(server: Server, slug: str) -> None:
    """3 to 15 s, each its own length (1:1, silent, blocking: the cheapest tiny clips)."""
    key = server.key(100.0)
    for seconds in range(3, 16):
        response = _post(server, slug, {"prompt": "fog in a temple", "duration": str(seconds),
                                        "aspect_ratio": "1:1", "generate_audio": False}, key)
        assert response.status_code == 200, (seconds, response.text)
        _check(response.content, seconds, "1:1")


def test_kling_3_pro_segmind_snippet_and_its_memory_cap(server: Server) -> None:
    """Segmind's Kling 3 snippet on the pro route (5 s with audio); pro is the standard tier,
    whose 16:9 clips stop at 12 s on this profile (as on ltx-2 at 1080p): 13 s is a 400
    naming duration, while 1:1 reaches 15 s."""
    key = server.key(100.0)
    data = {"prompt": "Slow cinematic push-in through an empty ancient temple.", "duration": "5",
            "cfg_scale": 0.5, "aspect_ratio": "16:9", "generate_audio": True,
            "negative_prompt": "blur, distort, and low quality"}
    response = _post(server, PRO, data, key)
    assert response.status_code == 200, response.text
    _check(response.content, 5, audio=True)
    for seconds in (12, 13):
        response = _post(server, PRO, {**data, "duration": seconds, "generate_audio": False}, key)
        if seconds == 12:
            _check(response.content, 12)
        else:
            assert response.status_code == 400
            error = response.json()["error"]
            assert error.startswith("duration:") and "at most 12" in error and "13" in error
    response = _post(server, PRO, {**data, "duration": 15, "aspect_ratio": "1:1", "generate_audio": False}, key)
    _check(response.content, 15, "1:1")


def test_kling_3_standard_sdk_run_and_run_sync(server: Server) -> None:
    key = server.key(10.0)
    client = segmind.SegmindClient(api_key=key, base_url=server.url + "/v1", timeout=60)
    result = client.run(STANDARD, prompt="Slow push-in through an empty temple.", duration="3")
    assert result["status"] == "COMPLETED"
    _check(httpx.get(result["output"]).content, 3, audio=True)  # generate_audio defaults to true
    _check(client.run_sync(STANDARD, prompt="fog", duration=4, generate_audio=False).content, 4)
    assert server.balance(key) == pytest.approx(10 - 3 * 0.56 - 4 * 0.168)


def test_kling_3_multi_prompt_is_one_continuous_clip(server: Server) -> None:
    """Three shots through the SDK's run: one MP4 of their summed length, one audio track as
    long as the picture, priced by the total seconds, progress at 100% when done."""
    key = server.key(100.0)
    client = segmind.SegmindClient(api_key=key, base_url=server.url + "/v1", timeout=60)
    shots = [{"prompt": "a door opens", "duration": "4"}, {"prompt": "a hand reaches out", "duration": "5"},
             {"prompt": "the room goes dark", "duration": 3}]
    result = client.run(PRO, prompt="a short scene", multi_prompt=shots, generate_audio=True)
    assert result["status"] == "COMPLETED" and result["metrics"]["progress"] == 1
    _check(httpx.get(result["output"]).content, 12, audio=True)
    assert server.balance(key) == pytest.approx(100 - 12 * 0.75)


@pytest.mark.parametrize(("slug", "body", "field"), [
    (STANDARD, {"prompt": "x", "duration": 16}, "duration"),
    (STANDARD, {"prompt": "x", "duration": "2"}, "duration"),
    (STANDARD, {"prompt": "x", "duration": 5.0}, "duration"),
    (STANDARD, {"duration": "5"}, "prompt"),
    (STANDARD, {"prompt": "x", "mode": "pro"}, "mode"),
    (STANDARD, {"prompt": "x", "cfg_scale": 1.5}, "cfg_scale"),
    (STANDARD, {"prompt": "x", "multi_prompt": [{"prompt": "a", "duration": 1}] * 6}, "multi_prompt"),
    (STANDARD, {"prompt": "x", "multi_prompt": [{"prompt": "a" * 513}]}, "multi_prompt.0.prompt"),
    (STANDARD, {"prompt": "x", "multi_prompt": [{"prompt": "a", "duration": 1}]}, "multi_prompt"),
    (STANDARD, {"prompt": "x", "multi_prompt": [{"prompt": "a", "duration": 9}] * 2}, "multi_prompt"),
    (STANDARD, {"prompt": "x", "duration": 6, "multi_prompt": [{"prompt": "a"}, {"prompt": "b"}]}, "duration"),
    (STANDARD, {"prompt": "x", "multi_prompt": [{"prompt": "a", "seconds": 5}]}, "multi_prompt.0.seconds"),
    (PRO, {"prompt": "x", "multi_prompt": [{"prompt": "a", "duration": 13}]}, "multi_prompt.0.duration"),
    ("kling-2.5-turbo", {"prompt": "x", "mode": "std"}, "mode"),
    ("kling-2.5-turbo", {"prompt": "x", "duration": 7}, "duration"),
    ("kling-2.5-turbo", {"prompt": "x", "generate_audio": True}, "generate_audio"),
])
def test_bad_bodies_are_400s_naming_the_field(server: Server, slug: str, body: dict[str, Any], field: str) -> None:
    response = _post(server, slug, body)
    assert response.status_code == 400, response.text
    assert response.json()["error"].startswith(f"{field}:"), response.json()


def test_keys_credits_and_slugs_answer_as_the_seeds_do(server: Server) -> None:
    assert requests.post(f"{server.url}/v1/{PRO}", json={"prompt": "x"}, timeout=30).status_code == 401
    poor = server.key(0.1)
    assert _post(server, PRO, {"prompt": "x"}, poor).status_code == 406
    assert _post(server, "kling-3-text2video", {"prompt": "x"}).status_code == 404
    scoped = server.key(10.0, scopes=["kling-2.6"])
    assert _post(server, "kling-2.5-turbo", {"prompt": "x"}, scoped).status_code == 403


def test_openapi_describes_the_new_routes(server: Server) -> None:
    doc = httpx.get(server.url + "/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for slug, schema in (("kling-2.5-turbo", "Kling25TurboInput"), (STANDARD, "Kling3Input"), (PRO, "Kling3Input")):
        for version in ("v1", "v2"):
            body = doc["paths"][f"/{version}/{slug}"]["post"]["requestBody"]["content"]["application/json"]
            assert body["schema"]["$ref"].endswith(f"/{schema}")
    kling3 = schemas["Kling3Input"]["properties"]
    assert (kling3["duration"]["minimum"], kling3["duration"]["maximum"], kling3["duration"]["default"]) == (3, 15, 5)
    assert kling3["cfg_scale"]["default"] == 0.5 and kling3["generate_audio"]["default"] is True
    shots = next(b for b in kling3["multi_prompt"]["anyOf"] if b.get("type") == "array")
    assert shots["maxItems"] == 5 and shots["items"]["$ref"].endswith("/ShotInput")
    assert schemas["ShotInput"]["properties"]["prompt"]["maxLength"] == 512
    turbo = schemas["Kling25TurboInput"]["properties"]
    assert (turbo["cfg_scale"]["default"], turbo["duration"]["default"], turbo["mode"]["default"]) == (0.7, 10, "pro")
