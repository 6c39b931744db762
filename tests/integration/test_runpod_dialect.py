"""RunPod's serverless endpoint API end to end with the real ``runpod`` SDK (its ``Endpoint``,
pointed at the server by ``runpod.endpoint_url_base``), against a tiny-profile server:
run_sync, run / status / stream / output, cancel, purge-queue, health, ``webhook`` verified
with ``standardwebhooks``, errors in RunPod's ``{"error": ...}`` shape, and ids that no other
dialect reads."""

from __future__ import annotations

import time

import httpx
import pytest
import requests
import runpod

from tests.integration.harness import Server
from tests.integration.test_webhooks import webhook_secret
from tests.integration.webhooks import Receiver
from tests.mp4probe import probe

T2V = {"prompt": "a red fox in snow", "generate_audio": False}


@pytest.fixture()
def slow(slow_server: Server) -> Server:
    """The shared server whose steps take 0.3 s (conftest\'s ``slow_server``): requests stay
    queued and running long enough to watch and cancel."""
    return slow_server


def endpoint(server: Server, monkeypatch: pytest.MonkeyPatch, name: str = "fast",
             credits: float = 10.0) -> runpod.Endpoint:
    monkeypatch.setattr(runpod, "endpoint_url_base", server.url + "/runpod/v2")
    return runpod.Endpoint(name, api_key=server.key(credits))


def key_of(ep: runpod.Endpoint) -> str:
    return str(ep.rp_client.api_key)


def test_run_sync_returns_the_output(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    ep = endpoint(server, monkeypatch)
    output = ep.run_sync({**T2V, "duration": 10}, timeout=120)
    clip = probe(httpx.get(output["video"]).content)
    assert (clip.width, clip.height, clip.frames, clip.audio_codec) == (256, 144, 241, None)
    assert (output["width"], output["height"], output["seconds"], output["has_audio"]) == (256, 144, 10, False)
    assert server.balance(key_of(ep)) == pytest.approx(10.0 - 0.50)  # fast tier, 10 s


def test_run_status_stream_and_output(slow: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    ep = endpoint(slow, monkeypatch, "standard")
    job = ep.run(T2V)
    assert job.status() in ("IN_QUEUE", "IN_PROGRESS")
    progress = [chunk["progress"] for chunk in job.stream()]
    assert progress and progress == sorted(progress), progress
    output = job.output(timeout=60)
    assert job.status() == "COMPLETED" and probe(httpx.get(output["video"]).content).frames == 121
    state = httpx.get(f"{slow.url}/runpod/v2/standard/status/{job.job_id}",
                      headers={"authorization": f"Bearer {key_of(ep)}"}).json()
    assert state["executionTime"] > 0 and state["delayTime"] >= 0
    assert ep.health()["jobs"]["completed"] == 1 and ep.health()["workers"]["ready"] >= 1


def test_cancel_and_purge_queue(slow: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    ep = endpoint(slow, monkeypatch)
    jobs = [ep.run(T2V) for _ in range(4)]
    deadline = time.monotonic() + 30
    while jobs[0].status() != "IN_PROGRESS":  # the one worker has it; the other three wait
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert jobs[-1].cancel() == {"id": jobs[-1].job_id, "status": "CANCELLED"}
    assert ep.purge_queue() == {"removed": 2, "status": "completed"}
    assert [j.status() for j in jobs[1:]] == ["CANCELLED"] * 3
    jobs[0].output(timeout=60)
    assert jobs[0].cancel()["status"] == "COMPLETED"  # ended: answered as it is
    health = ep.health()["jobs"]
    assert (health["completed"], health["inQueue"], health["failed"]) == (1, 0, 0)
    assert slow.balance(key_of(ep)) == pytest.approx(10.0 - 0.25)


def test_runsync_answers_at_wait_and_the_sdk_polls_on(slow: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    ep = endpoint(slow, monkeypatch)
    early = httpx.post(slow.url + "/runpod/v2/fast/runsync", params={"wait": 1000}, json={"input": T2V},
                       headers={"authorization": f"Bearer {key_of(ep)}"}, timeout=30).json()
    assert early["status"] in ("IN_QUEUE", "IN_PROGRESS") and "output" not in early
    assert ep.run_sync(T2V, timeout=60)["seconds"] == 5


def test_webhook_is_signed(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    ep = endpoint(server, monkeypatch)
    receiver = Receiver()
    try:
        secret = webhook_secret(server, key_of(ep))
        job = ep.run({"input": T2V, "webhook": receiver.url("/runpod")})
        receiver.wait(lambda: len(receiver.got) == 1, why="the runpod webhook")
        body = receiver.got[0].verify(secret)
        assert (body["id"], body["status"]) == (job.job_id, "COMPLETED") and body["output"]["video"]
    finally:
        receiver.close()


def test_errors_come_in_runpod_shape(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    ep = endpoint(server, monkeypatch)
    with pytest.raises(requests.HTTPError) as unknown:
        ep.run({**T2V, "camera": "dolly"})
    assert unknown.value.response.status_code == 400
    assert "input.camera" in unknown.value.response.json()["error"]
    with pytest.raises(RuntimeError, match="401 Unauthorized"):
        runpod.Endpoint("fast", api_key="tk_wrong").run(T2V)
    with pytest.raises(requests.HTTPError) as nowhere:
        runpod.Endpoint("nowhere", api_key=key_of(ep)).run(T2V)
    assert nowhere.value.response.status_code == 404 and "endpoints: fast" in nowhere.value.response.json()["error"]
    with pytest.raises(requests.HTTPError) as poor:
        endpoint(server, monkeypatch, credits=0.1).run(T2V)
    assert poor.value.response.status_code == 402 and "insufficient credits" in poor.value.response.json()["error"]
    limited = {"authorization": f"Bearer {server.key(rate_limit=1)}"}
    answers = [httpx.post(server.url + "/runpod/v2/fast/run", json={"input": {}}, headers=limited)
               for _ in range(2)]
    assert [a.status_code for a in answers] == [400, 429] and int(answers[1].headers["retry-after"]) >= 1
    assert "error" in answers[1].json()


def test_ids_are_read_only_through_their_own_dialect(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    ep = endpoint(server, monkeypatch)
    key = key_of(ep)
    mine = ep.run(T2V).job_id
    with pytest.raises(requests.HTTPError) as other_endpoint:
        runpod.Endpoint("quality", api_key=key).rp_client.get(f"quality/status/{mine}")
    assert other_endpoint.value.response.status_code == 404
    for path in (f"/v2/requests/{mine}", f"/v1/videos/video_{mine}"):
        assert httpx.get(server.url + path, headers={"x-api-key": key}).status_code == 404, path
    segmind = httpx.post(server.url + "/v2/kling-2.6", headers={"x-api-key": key},
                         json={"prompt": "a fox", "duration": 5}).json()["request_id"]
    with pytest.raises(requests.HTTPError) as foreign:
        ep.rp_client.get(f"fast/status/{segmind}")
    assert foreign.value.response.status_code == 404


def test_scopes_and_idempotency(server: Server) -> None:
    url = server.url + "/runpod/v2/fast/run"
    narrow = server.key(10.0, scopes=["videos"])
    assert httpx.post(url, json={"input": T2V}, headers={"authorization": f"Bearer {narrow}"}).status_code == 403
    key = server.key(2.0)
    answers = [httpx.post(url, json={"input": T2V}, headers={"authorization": f"Bearer {key}",
                                                             "idempotency-key": "p1"}).json() for _ in range(2)]
    assert answers[0]["id"] == answers[1]["id"]
    assert server.balance(key) == pytest.approx(2.0 - 0.25)
