"""The ``loras`` request field over HTTP against a real tiny-profile server: LoRAs added with
the CLI into the server's data folder, listed by ``GET /v1/loras``, refused with 400s naming
``loras[i].name`` / ``loras[i].scale``, charged their surcharge, and echoed in the status."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
import pytest

from takeone.cli.main import main
from tests.integration.harness import Server
from tests.support.loras import make_lora

JOB = {"prompt": "a fox", "duration": 5, "generate_audio": False}  # 0.438 credits on tiny


@pytest.fixture(scope="module")
def lora(server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    name = "toon-" + uuid.uuid4().hex[:8]
    path = make_lora(tmp_path_factory.mktemp("lora") / "toon.safetensors", seed=5)
    assert main(["loras", "add", name, str(path), "--profile", "tiny", "--surcharge", "0.5",
                 "--data-dir", str(server.data_dir)]) == 0
    return name


def _poll(url: str, headers: dict[str, str], timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(url, headers=headers).json()
        if body["status"] in ("COMPLETED", "FAILED"):
            return dict(body)
        time.sleep(0.1)
    raise AssertionError("not finished")


def test_list_follows_the_keys_lora_scopes(server: Server, lora: str) -> None:
    listed = httpx.get(server.url + "/v1/loras", headers={"x-api-key": server.key()}).json()
    mine = [entry for entry in listed["data"] if entry["name"] == lora]
    assert mine == [{"name": lora, "profile": "tiny", "rank": 2, "surcharge": 0.5, "size": mine[0]["size"]}]
    assert listed["max_per_request"] == 4 and listed["scale_range"] == [-2.0, 2.0]
    scoped = server.key(scopes=["lora:someone-else"])
    assert httpx.get(server.url + "/v1/loras", headers={"x-api-key": scoped}).json()["data"] == []
    assert httpx.get(server.url + "/v1/loras").status_code == 401


@pytest.mark.parametrize("loras,field,value", [
    ([{"name": "no-such-lora"}], "loras[0].name", "no-such-lora"),
    ([{"name": "LORA", "scale": 3}], "loras[0].scale", "3"),
    ([{"name": "LORA", "scale": "strong"}], "loras[0].scale", "strong"),
    ([{"name": "LORA"}, {"name": "LORA"}], "loras[1].name", "LORA"),
    ([{"name": "LORA", "weight": 1}], "loras[0].weight", "1"),
    ([{"name": "x"}] * 5, "loras", "5 items"),
    ("LORA", "loras", "LORA"),
])
def test_bad_loras_are_400s_naming_the_field(server: Server, lora: str, loras: object, field: str,
                                             value: str) -> None:
    def real(v: object) -> object:
        if isinstance(v, list):
            return [real(i) for i in v]
        if isinstance(v, dict):
            return {k: real(i) for k, i in v.items()}
        return lora if v == "LORA" else v

    key = server.key(5)
    r = httpx.post(server.url + "/v2/kling-2.6", json={**JOB, "loras": real(loras)},
                   headers={"x-api-key": key}, timeout=30)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error.startswith(field + ":") and str(real(value)) in error
    assert server.balance(key) == 5


def test_a_key_limited_to_other_loras_gets_a_400(server: Server, lora: str) -> None:
    key = server.key(5, scopes=["lora:someone-else"])
    r = httpx.post(server.url + "/v2/kling-2.6", json={**JOB, "loras": [{"name": lora}]},
                   headers={"x-api-key": key}, timeout=30)
    assert r.status_code == 400 and r.json()["error"].startswith("loras[0].name:"), r.text


def test_openai_body_takes_loras_too(server: Server, lora: str) -> None:
    h = {"authorization": f"Bearer {server.key(5)}"}
    bad = httpx.post(server.url + "/v1/videos", json={"prompt": "a fox", "loras": [{"name": "nope"}]}, headers=h)
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "loras[0].name", bad.text
    made = httpx.post(server.url + "/v1/videos", json={"prompt": "a fox", "seconds": "5",
                                                       "loras": [{"name": lora, "scale": 0.7}]}, headers=h)
    assert made.status_code == 200, made.text
    assert made.json()["loras"] == [{"name": lora, "scale": 0.7}]


def test_a_job_with_a_lora_is_charged_and_says_which(server: Server, lora: str) -> None:
    key = server.key(10)
    h = {"x-api-key": key}
    r = httpx.post(server.url + "/v2/kling-2.6", json={**JOB, "loras": [{"name": lora, "scale": 0.8}]},
                   headers=h, timeout=30)
    assert r.status_code == 200, r.text
    status = _poll(r.json()["status_url"], h)
    assert status["status"] == "COMPLETED", status
    metrics = status["metrics"]
    assert isinstance(metrics, dict) and metrics["loras"] == [{"name": lora, "scale": 0.8}]
    result = httpx.get(r.json()["response_url"], headers=h).json()
    assert result["metrics"]["lora_switch_time"] >= 0
    assert server.balance(key) == pytest.approx(10 - 0.438 - 0.5)
    assert f"with LoRAs {lora}@0.8" in Path(server.log_path or "").read_text()


def test_a_lora_of_another_profile_is_refused_by_name(server: Server) -> None:
    """A library shared by servers of several profiles: a LoRA stored for another profile is
    not listed here, and naming it is a 400 that says which profile it is for."""
    from takeone.backends.local_blobs import LocalBlobStore
    from takeone.core.loras import LoraCatalog, LoraManifest

    name = "wan-style-" + uuid.uuid4().hex[:6]
    stored = make_lora(server.data_dir / f"{name}.safetensors", seed=8).read_bytes()
    LoraCatalog(LocalBlobStore(server.data_dir, b"")).add(LoraManifest(
        name=name, profile="wan-2.2", size=len(stored), sha256="", rank=2, targets=(), layout="diffusers"), stored)
    key = server.key(5)
    listed = httpx.get(server.url + "/v1/loras", headers={"x-api-key": key}).json()["data"]
    assert name not in [entry["name"] for entry in listed]
    r = httpx.post(server.url + "/v2/kling-2.6", json={**JOB, "loras": [{"name": name}]},
                   headers={"x-api-key": key}, timeout=30)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error.startswith("loras[0].name: is for profile 'wan-2.2'") and name in error
    assert server.balance(key) == 5
