"""fal's queue API end to end with the real ``fal_client``, against a tiny-profile server:
subscribe (with logs and queue updates), submit / status / result / cancel by request id, the
status stream (server-sent events), ``fal_webhook`` verified with ``standardwebhooks``,
errors in fal's ``{"detail": ...}`` shape, and ids that no other dialect reads.

``fal_client`` always builds ``https://{FAL_QUEUE_RUN_HOST}/...``; a server behind TLS is
reached by setting ``FAL_QUEUE_RUN_HOST=<host>/fal`` alone. The test server speaks plain
HTTP, so the tests set the client's one URL prefix to ``http://127.0.0.1:<port>/fal/`` and
make the same calls."""

from __future__ import annotations

import json

import fal_client
import fal_client.client
import httpx
import pytest

from tests.integration.harness import ImageServer, Server
from tests.integration.test_webhooks import webhook_secret
from tests.integration.webhooks import Receiver
from tests.mp4probe import probe

LTX_FAST = "fal-ai/ltx-2/text-to-video/fast"
KLING_I2V = "fal-ai/kling-video/v2.1/standard/image-to-video"
T2V = {"prompt": "a red fox in snow", "generate_audio": False}


@pytest.fixture()
def fal(server: Server, monkeypatch: pytest.MonkeyPatch) -> fal_client.SyncClient:
    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", server.url + "/fal/")
    return fal_client.SyncClient(key=server.key(10.0))


@pytest.fixture()
def slow(slow_server: Server) -> Server:
    """The shared server whose steps take 0.3 s (conftest\'s ``slow_server``): requests stay
    queued and running long enough to watch and cancel."""
    return slow_server


def key_of(client: fal_client.SyncClient) -> str:
    assert client.key is not None
    return client.key


def test_subscribe_text_to_video_with_logs(fal: fal_client.SyncClient, server: Server) -> None:
    updates: list[fal_client.Status] = []
    result = fal.subscribe(LTX_FAST, arguments={**T2V, "duration": 6}, with_logs=True,
                           on_queue_update=updates.append, interval=0.1)
    video = result["video"]
    assert video["content_type"] == "video/mp4" and video["file_name"].endswith(".mp4")
    data = httpx.get(video["url"]).content
    assert len(data) == video["file_size"] and isinstance(result["seed"], int)
    clip = probe(data)
    assert (clip.width, clip.height, clip.frames, clip.audio_codec) == (256, 144, 145, None)  # 6 s, exactly
    done = updates[-1]
    assert isinstance(done, fal_client.Completed) and done.error is None and done.logs
    assert done.logs[-1]["message"].startswith("100%") and done.metrics["inference_time"] > 0
    assert server.balance(key_of(fal)) == pytest.approx(10.0 - 0.30)  # fast tier, 6 s at 0.05 a second, no audio


def test_submit_status_result_image_to_video(fal: fal_client.SyncClient, images: ImageServer) -> None:
    handle = fal.submit(KLING_I2V, arguments={"prompt": "the car moves", "image_url": images.url("/first.jpg")})
    assert handle.status_url.endswith(f"/fal/fal-ai/kling-video/requests/{handle.request_id}/status")
    result = handle.get(interval=0.1)
    clip = probe(httpx.get(result["video"]["url"]).content)
    assert (clip.width, clip.height) == (144, 144)  # the 4:3 photo's nearest served aspect is 1:1
    assert isinstance(fal.status(KLING_I2V, handle.request_id, with_logs=True), fal_client.Completed)
    again = fal.result(KLING_I2V, handle.request_id)
    assert again["video"]["file_size"] == result["video"]["file_size"] and again["seed"] == result["seed"]


def test_queue_position_stream_and_cancel(slow: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fal_client.client, "QUEUE_URL_FORMAT", slow.url + "/fal/")
    client = fal_client.SyncClient(key=slow.key(10.0))
    handles = [client.submit(LTX_FAST, arguments=T2V) for _ in range(3)]
    last = client.status(LTX_FAST, handles[-1].request_id)
    assert isinstance(last, fal_client.Queued) and last.position >= 1
    with httpx.stream("GET", handles[0].status_url + "/stream", params={"logs": 1},
                      headers={"authorization": f"Key {client.key}"}, timeout=60) as events:
        assert events.headers["content-type"].startswith("text/event-stream")
        seen = [json.loads(line[6:]) for line in events.iter_lines() if line.startswith("data: ")]
    assert seen[-1]["status"] == "COMPLETED" and "error" not in seen[-1]
    running = [e for e in seen if e["status"] == "IN_PROGRESS"]
    assert running and all(isinstance(e["logs"], list) for e in running)
    client.cancel(LTX_FAST, handles[-1].request_id)
    ended = client.status(LTX_FAST, handles[-1].request_id)
    assert isinstance(ended, fal_client.Completed) and ended.error_type == "request_cancelled"
    with pytest.raises(fal_client.FalClientHTTPError) as gone:
        handles[-1].get()
    assert gone.value.status_code == 400
    with pytest.raises(fal_client.FalClientHTTPError) as late:
        handles[0].cancel()
    assert late.value.status_code == 400 and "ALREADY_COMPLETED" in late.value.response.text
    handles[1].get(interval=0.2)
    assert slow.balance(key_of(client)) == pytest.approx(10.0 - 2 * 0.30)  # two 6 s clips (fal's default length)


def test_fal_webhook_is_signed(fal: fal_client.SyncClient, server: Server) -> None:
    receiver = Receiver()
    try:
        secret = webhook_secret(server, key_of(fal))
        handle = fal.submit(LTX_FAST, arguments=T2V, webhook_url=receiver.url("/fal"))
        receiver.wait(lambda: len(receiver.got) == 1, why="the fal webhook")
        body = receiver.got[0].verify(secret)
        assert (body["request_id"], body["status"]) == (handle.request_id, "OK")
        assert body["payload"]["video"]["content_type"] == "video/mp4"
    finally:
        receiver.close()


def test_errors_come_in_fal_shape(fal: fal_client.SyncClient, server: Server) -> None:
    with pytest.raises(fal_client.FalClientHTTPError) as unknown:
        fal.submit(LTX_FAST, arguments={**T2V, "camera": "dolly"})
    assert unknown.value.status_code == 422
    assert unknown.value.response.json()["detail"][0]["loc"] == ["body", "camera"]
    with pytest.raises(fal_client.FalClientHTTPError) as no_image:
        fal.submit(KLING_I2V, arguments={"prompt": "x"})
    assert no_image.value.response.json()["detail"][0]["loc"] == ["body", "image_url"]
    with pytest.raises(fal_client.FalClientHTTPError) as model:
        fal.submit("fal-ai/flux/dev", arguments=T2V)
    assert model.value.status_code == 404
    with pytest.raises(fal_client.FalClientHTTPError) as missing:
        fal.status(LTX_FAST, "00000000-0000-0000-0000-000000000000")
    assert missing.value.status_code == 404 and "not found" in str(missing.value)
    bearer = httpx.post(server.url + "/fal/" + LTX_FAST, json=T2V,
                        headers={"authorization": f"Bearer {key_of(fal)}"})
    assert bearer.status_code == 401 and "Key" in bearer.json()["detail"]
    with pytest.raises(fal_client.FalClientHTTPError) as poor:
        fal_client.SyncClient(key=server.key(0.1)).submit(LTX_FAST, arguments=T2V)
    assert poor.value.status_code == 403 and poor.value.error_type == "exhausted_balance"
    limited = {"authorization": f"Key {server.key(rate_limit=1)}"}
    answers = [httpx.post(server.url + "/fal/" + LTX_FAST, json={}, headers=limited) for _ in range(2)]
    assert [a.status_code for a in answers] == [422, 429] and int(answers[1].headers["retry-after"]) >= 1
    assert answers[1].headers["x-fal-error-type"] == "rate_limited" and "detail" in answers[1].json()


def test_ids_are_read_only_through_their_own_dialect(fal: fal_client.SyncClient, server: Server) -> None:
    key = key_of(fal)
    mine = fal.submit(LTX_FAST, arguments=T2V).request_id
    with pytest.raises(fal_client.FalClientHTTPError) as other_app:
        fal.status(KLING_I2V, mine)  # under another owner/alias
    assert other_app.value.status_code == 404
    for path in (f"/v2/requests/{mine}", f"/v1/videos/video_{mine}"):
        assert httpx.get(server.url + path, headers={"x-api-key": key}).status_code == 404, path
    segmind = httpx.post(server.url + "/v2/kling-2.6", headers={"x-api-key": key},
                         json={"prompt": "a fox", "duration": 5}).json()["request_id"]
    with pytest.raises(fal_client.FalClientHTTPError) as foreign:
        fal.status(LTX_FAST, segmind)
    assert foreign.value.status_code == 404


def test_scopes_and_idempotency(fal: fal_client.SyncClient, server: Server) -> None:
    narrow = fal_client.SyncClient(key=server.key(10.0, scopes=["videos"]))
    with pytest.raises(fal_client.FalClientHTTPError) as scoped:
        narrow.submit(LTX_FAST, arguments=T2V)
    assert scoped.value.status_code == 403
    key = server.key(2.0)
    client = fal_client.SyncClient(key=key)
    first = client.submit(LTX_FAST, arguments=T2V, headers={"Idempotency-Key": "f1"})
    again = client.submit(LTX_FAST, arguments=T2V, headers={"Idempotency-Key": "f1"})
    assert first.request_id == again.request_id
    first.get(interval=0.1)
    assert server.balance(key) == pytest.approx(2.0 - 0.30)  # one 6 s clip, charged once
