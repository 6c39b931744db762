"""Surcharges from the prices file over HTTP: a server whose prices file surcharges its
profile and one LoRA (another LoRA keeps its manifest's surcharge). A job is charged its
base price plus exactly those surcharges, the credit check counts them, ``GET /v1/loras``
states them, and a job that is not delivered gets all of it back."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from takeone.cli.main import main
from tests.integration.harness import Server
from tests.support.loras import make_lora

JOB = {"prompt": "a fox", "duration": 5, "generate_audio": False}  # 0.438 credits on tiny
PRICES = '[surcharge.profile]\ntiny = 0.1\n[surcharge.lora]\ncel = 0.3\n'


@pytest.fixture(scope="module")
def priced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data = tmp_path_factory.mktemp("surcharged")
    (data / "prices.toml").write_text(PRICES)
    for name, seed, surcharge in (("cel", 1, "0.5"), ("ink", 2, "0.25")):
        path = make_lora(data / f"{name}.safetensors", seed=seed)
        assert main(["loras", "add", name, str(path), "--profile", "tiny", "--surcharge", surcharge,
                     "--data-dir", str(data)]) == 0
    # Slowed steps: the job cancelled below is still running when the cancel arrives.
    srv = Server(data, ["--profile", "tiny", "--debug-step-delay", "0.15"]).start()
    yield srv
    srv.stop()


def _finished(server: Server, key: str, request_id: str, timeout: float = 120) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = httpx.get(f"{server.url}/v2/requests/{request_id}/status", headers={"x-api-key": key})
        if r.json()["status"] in ("COMPLETED", "FAILED"):
            return dict(r.json())
        time.sleep(0.1)
    raise AssertionError("not finished")


def test_the_list_states_each_loras_surcharge(priced: Server) -> None:
    listed = httpx.get(priced.url + "/v1/loras", headers={"x-api-key": priced.key()}).json()["data"]
    assert {e["name"]: e["surcharge"] for e in listed} == {"cel": 0.3, "ink": 0.25}


def test_a_job_is_charged_its_price_and_surcharges_exactly(priced: Server) -> None:
    key = priced.key(10)
    body = {**JOB, "loras": [{"name": "cel", "scale": 0.8}, {"name": "ink"}]}
    r = httpx.post(priced.url + "/v2/kling-2.6", json=body, headers={"x-api-key": key}, timeout=30)
    assert r.status_code == 200, r.text
    assert priced.balance(key) == pytest.approx(10 - (0.438 + 0.1 + 0.3 + 0.25), abs=1e-9)  # reserved
    status = _finished(priced, key, r.json()["request_id"])
    assert status["status"] == "COMPLETED", status
    assert priced.balance(key) == pytest.approx(8.912, abs=1e-9)
    plain = httpx.post(priced.url + "/v2/kling-2.6", json=JOB, headers={"x-api-key": key}, timeout=30)
    assert _finished(priced, key, plain.json()["request_id"])["status"] == "COMPLETED"
    assert priced.balance(key) == pytest.approx(8.912 - 0.538, abs=1e-9)  # the profile's alone


def test_another_dialect_pays_the_same_surcharges(priced: Server) -> None:
    """OpenAI's /v1/videos: the standard tier's 5 s with sound (0.875) plus the profile's and cel's."""
    key = priced.key(5)
    h = {"authorization": f"Bearer {key}"}
    r = httpx.post(priced.url + "/v1/videos", json={"prompt": "a fox", "seconds": "5", "loras": [{"name": "cel"}]},
                   headers=h, timeout=30)
    assert r.status_code == 200, r.text
    assert priced.balance(key) == pytest.approx(5 - (0.875 + 0.1 + 0.3), abs=1e-9)
    deadline = time.monotonic() + 120
    while (video := httpx.get(f"{priced.url}/v1/videos/{r.json()['id']}", headers=h).json())["status"] not in (
            "completed", "failed") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert video["status"] == "completed", video
    assert priced.balance(key) == pytest.approx(3.725, abs=1e-9)


def test_the_credit_check_counts_the_surcharges(priced: Server) -> None:
    key = priced.key(1.0)  # enough for the base price (0.438 + 0.1), not for 1.088
    body = {**JOB, "loras": [{"name": "cel"}, {"name": "ink"}]}
    r = httpx.post(priced.url + "/v2/kling-2.6", json=body, headers={"x-api-key": key}, timeout=30)
    assert r.status_code == 406 and "costs 1.088" in r.text, r.text  # Segmind: 406
    assert priced.balance(key) == 1.0


def test_a_cancelled_job_gets_its_surcharges_back(priced: Server) -> None:
    key = priced.key(5)
    body = {**JOB, "loras": [{"name": "cel"}]}
    r = httpx.post(priced.url + "/v2/kling-2.6", json=body, headers={"x-api-key": key}, timeout=30)
    assert r.status_code == 200, r.text
    assert priced.balance(key) == pytest.approx(5 - 0.838, abs=1e-9)
    request_id = r.json()["request_id"]
    cancel = httpx.post(f"{priced.url}/v2/requests/{request_id}/cancel", headers={"x-api-key": key})
    assert cancel.status_code in (200, 422), cancel.text
    assert _finished(priced, key, request_id)["error"] == "cancelled"
    assert priced.balance(key) == 5.0


def test_a_queued_job_whose_lora_was_removed_fails_and_is_not_charged(priced: Server) -> None:
    path = make_lora(priced.data_dir / "gone.safetensors", seed=3)
    assert main(["loras", "add", "gone", str(path), "--profile", "tiny", "--surcharge", "0.4",
                 "--data-dir", str(priced.data_dir)]) == 0
    key = priced.key(5)
    h = {"x-api-key": key}
    ahead = httpx.post(priced.url + "/v2/kling-2.6", json=JOB, headers=h, timeout=30)  # keeps the worker busy
    r = httpx.post(priced.url + "/v2/kling-2.6", json={**JOB, "loras": [{"name": "gone"}]}, headers=h, timeout=30)
    assert r.status_code == 200, r.text
    assert main(["loras", "remove", "gone", "--data-dir", str(priced.data_dir)]) == 0
    status = _finished(priced, key, r.json()["request_id"])
    assert status["status"] == "FAILED" and "'gone' is no longer in the library" in str(status["error"]), status
    assert _finished(priced, key, ahead.json()["request_id"])["status"] == "COMPLETED"
    assert priced.balance(key) == pytest.approx(5 - 0.538, abs=1e-9)  # the LoRA job's 0.938 came back
