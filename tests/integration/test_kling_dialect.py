"""Kling's own API end to end: JWTs made with PyJWT from a key pair that ``takeone keys
create --key-pair`` issued, text2video and image2video tasks, the envelope and its codes."""

from __future__ import annotations

import base64
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any

import httpx
import jwt
import pytest

from tests.integration.harness import ImageServer, Server, png_bytes
from tests.mp4probe import probe


@dataclass(frozen=True)
class Pair:
    api_key: str
    access_key: str
    secret_key: str

    def token(self, **claims: Any) -> str:
        now = int(time.time())
        return jwt.encode({"iss": self.access_key, "exp": now + 1800, "nbf": now - 5, **claims},
                          self.secret_key, algorithm="HS256", headers={"typ": "JWT"})

    def headers(self, **claims: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(**claims)}"}


def issue_pair(server: Server, credits: float = 10.0, *extra: str) -> Pair:
    out = subprocess.run([sys.executable, "-m", "takeone.cli", "keys", "create", "--data-dir",
                          str(server.data_dir), "--credits", str(credits), "--key-pair", *extra],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    fields = dict(line.split(": ", 1) for line in out if line.startswith(("access key:", "secret key:")))
    return Pair(out[-1], fields["access key"], fields["secret key"])


def _wait(server: Server, pair: Pair, kind: str, task_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = httpx.get(f"{server.url}/v1/videos/{kind}/{task_id}", headers=pair.headers()).json()
        if body["data"]["task_status"] in ("succeed", "failed"):
            return dict(body["data"])
        time.sleep(0.2)
    raise AssertionError(f"task {task_id} never finished\n{server.log()}")


@pytest.fixture(scope="module")
def pair(server: Server) -> Pair:
    return issue_pair(server)


def test_text2video_with_sound(server: Server, pair: Pair) -> None:
    r = httpx.post(server.url + "/v1/videos/text2video", headers=pair.headers(), json={
        "model_name": "kling-v2-6", "prompt": "waves at dusk", "mode": "pro", "duration": "5",
        "aspect_ratio": "9:16", "sound": "on", "external_task_id": "waves-1"})
    body = r.json()
    assert r.status_code == 200 and (body["code"], body["message"]) == (0, "SUCCEED"), body
    assert body["request_id"] and body["data"]["task_status"] == "submitted"
    assert body["data"]["task_info"] == {"external_task_id": "waves-1"}
    task = _wait(server, pair, "text2video", body["data"]["task_id"])
    assert task["task_status"] == "succeed" and task["updated_at"] >= task["created_at"] > 1e12
    video = task["task_result"]["videos"][0]
    clip = probe(httpx.get(video["url"]).content)  # a signed link: no token needed
    assert (clip.width, clip.height, clip.frames, clip.audio_codec) == (144, 256, 121, "aac")
    by_external = httpx.get(f"{server.url}/v1/videos/text2video/waves-1", headers=pair.headers()).json()
    assert by_external["data"]["task_id"] == task["task_id"]
    listed = httpx.get(f"{server.url}/v1/videos/text2video?pageNum=1&pageSize=5", headers=pair.headers()).json()
    assert task["task_id"] in [t["task_id"] for t in listed["data"]]
    again = httpx.post(server.url + "/v1/videos/text2video", headers=pair.headers(),
                       json={"prompt": "again", "external_task_id": "waves-1"})
    assert again.status_code == 400 and again.json()["code"] == 1201
    assert "external_task_id" in again.json()["message"]


def test_image2video_follows_the_image(server: Server, pair: Pair, images: ImageServer) -> None:
    raw = base64.b64encode(png_bytes((240, 400))).decode()  # portrait, raw base64 as Kling takes
    r = httpx.post(server.url + "/v1/videos/image2video", headers=pair.headers(), json={
        "model_name": "kling-v2-1", "mode": "pro", "image": raw, "image_tail": images.url("/last.png")})
    assert r.status_code == 200, r.text
    task = _wait(server, pair, "image2video", r.json()["data"]["task_id"])
    clip = probe(httpx.get(task["task_result"]["videos"][0]["url"]).content)
    assert (clip.width, clip.height, clip.audio_codec) == (144, 256, None)
    other_kind = httpx.get(f"{server.url}/v1/videos/text2video/{task['task_id']}", headers=pair.headers())
    assert other_kind.status_code == 404 and other_kind.json()["code"] == 1203


@pytest.mark.parametrize("body,field", [
    ({"prompt": "x", "camera_control": {"type": "simple"}}, "camera_control"),
    ({"image": "aGVsbG8=", "static_mask": "aGVsbG8="}, "static_mask"),
    ({"image": "aGVsbG8=", "dynamic_masks": [{"mask": "x", "trajectories": []}]}, "dynamic_masks"),
])
def test_camera_control_and_masks_are_refused_not_ignored(server: Server, pair: Pair,
                                                          body: dict[str, Any], field: str) -> None:
    r = httpx.post(server.url + "/v1/videos/image2video", headers=pair.headers(), json=body)
    assert r.status_code == 400 and r.json()["code"] == 1201
    assert field in r.json()["message"] and "not supported" in r.json()["message"]


def test_tokens_are_checked(server: Server, pair: Pair) -> None:
    now = int(time.time())
    bad = {
        "expired": pair.token(exp=now - 60),
        "not yet valid": pair.token(nbf=now + 600),
        "wrong secret": jwt.encode({"iss": pair.access_key, "exp": now + 600}, "x" * 40, algorithm="HS256"),
        "unsigned": jwt.encode({"iss": pair.access_key, "exp": now + 600}, None, algorithm="none"),
        "the API key itself": pair.api_key,
    }
    codes = {}
    for name, token in bad.items():
        r = httpx.get(server.url + "/v1/videos/text2video", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 401, (name, r.text)
        codes[name] = r.json()["code"]
    assert codes == {"expired": 1004, "not yet valid": 1003, "wrong secret": 1002, "unsigned": 1002,
                     "the API key itself": 1002}
    assert httpx.get(server.url + "/v1/videos/text2video").json()["code"] == 1001


def test_scopes_and_cancel(server: Server, pair: Pair) -> None:
    narrow = issue_pair(server, 10.0, "--scope", "image2video")
    r = httpx.post(server.url + "/v1/videos/text2video", headers=narrow.headers(), json={"prompt": "x"})
    assert r.status_code == 403 and r.json()["code"] == 1103
    submitted = httpx.post(server.url + "/v1/videos/text2video", headers=pair.headers(),
                           json={"prompt": "to cancel", "duration": "10"}).json()["data"]
    cancelled = httpx.post(f"{server.url}/v1/videos/text2video/{submitted['task_id']}/cancel",
                           headers=pair.headers()).json()["data"]
    assert cancelled["task_status"] in ("failed", "succeed")  # a tiny job may have finished first
