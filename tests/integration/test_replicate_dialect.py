"""Replicate's predictions API end to end with the real ``replicate`` client, unchanged but for
base_url and api_token, against a tiny-profile server: run (the MP4 opens with PyAV), create
with and without ``Prefer: wait``, get, list, cancel, webhooks with ``webhook_events_filter``
verified by ``standardwebhooks`` and by the client's own ``webhooks.validate``, errors in
Replicate's problem-details shape, and ids that no other dialect reads."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator

import httpx
import pytest
import replicate
from replicate.exceptions import ReplicateError
from replicate.helpers import FileOutput

from takeone.edge.dialects.hosted import job_id_of_short, short_id
from tests.integration.harness import Server, png_bytes
from tests.integration.test_webhooks import webhook_secret
from tests.integration.webhooks import Receiver
from tests.mp4probe import probe

T2V = {"prompt": "a red fox in snow", "duration": 5, "generate_audio": False}


def client_for(server: Server, credits: float = 10.0) -> replicate.Client:
    return replicate.Client(api_token=server.key(credits), base_url=server.url)


@pytest.fixture()
def client(server: Server) -> replicate.Client:
    return client_for(server)


@pytest.fixture()
def slow(slow_server: Server) -> Server:
    """The shared server whose steps take 0.3 s (conftest\'s ``slow_server``): requests stay
    queued and running long enough to watch and cancel."""
    return slow_server


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def token(client: replicate.Client) -> str:
    return str(client._api_token)


def test_run_returns_the_file(client: replicate.Client, server: Server) -> None:
    output = client.run("kwaivgi/kling-v2.6", input=T2V)
    # The client wraps https links in a FileOutput; over plain HTTP it hands back the link.
    assert isinstance(output, str) and output.startswith(server.url + "/files/")
    clip = probe(FileOutput(output, client).read())
    assert (clip.codec, clip.width, clip.height, clip.frames) == ("h264", 256, 144, 121)
    assert clip.audio_codec is None  # generate_audio false
    assert server.balance(token(client)) == pytest.approx(10.0 - 0.25)  # fast tier (standard mode), 5 s


def test_create_wait_get_list_and_progress(client: replicate.Client, server: Server) -> None:
    picture = "data:image/png;base64," + base64.b64encode(png_bytes((240, 320))).decode()
    # predictions.create(model=...) drops wait on its way to models.predictions.create
    waited = client.models.predictions.create(model="kwaivgi/kling-v2.1-master", wait=60,
                                              input={"prompt": "the cat looks up", "start_image": picture})
    assert waited.status == "succeeded" and waited.model == "kwaivgi/kling-v2.1-master"
    assert waited.input["start_image"].startswith("data:") and waited.metrics["predict_time"] > 0
    assert probe(httpx.get(waited.output).content).height == 256  # portrait, as the picture is
    queued = client.predictions.create(version="takeone/tiny", input={**T2V, "duration": 10})
    assert queued.status == "starting" and len(queued.id) == 26 and queued.urls["get"].endswith(queued.id)
    queued.wait()
    assert queued.status == "succeeded" and queued.progress is not None
    assert queued.progress.percentage == 1.0 and queued.logs.startswith("Generating a 10 s video")
    assert client.predictions.get(queued.id).output == queued.output
    listed = [p.id for p in client.predictions.list().results]
    assert listed == [queued.id, waited.id]


def test_cancel_releases_the_credits(slow: Server) -> None:
    client = client_for(slow)
    made = [client.predictions.create(model="kwaivgi/kling-v2.6", input=T2V) for _ in range(3)]
    canceled = client.predictions.cancel(made[-1].id)
    assert canceled.status == "canceled" and canceled.error is None
    for prediction in made[:-1]:
        prediction.wait()
    assert client.predictions.get(made[-1].id).status == "canceled"
    assert client.predictions.cancel(made[0].id).status == "succeeded"  # ended: answered as it is
    assert slow.balance(token(client)) == pytest.approx(10.0 - 2 * 0.25)


def test_webhooks_follow_the_filter_and_are_signed(slow: Server, receiver: Receiver) -> None:
    client, server = client_for(slow), slow
    secret = webhook_secret(server, token(client))
    assert client.webhooks.default.secret().key == secret
    every = client.predictions.create(model="kwaivgi/kling-v2.6", input={**T2V, "duration": 10},
                                      webhook=receiver.url("/all"),
                                      webhook_events_filter=["start", "logs", "completed"])
    only_end = client.predictions.create(model="kwaivgi/kling-v2.6", input=T2V,
                                         webhook=receiver.url("/end"), webhook_events_filter=["completed"])
    only_output = client.predictions.create(model="kwaivgi/kling-v2.6", input=T2V,
                                            webhook=receiver.url("/output"), webhook_events_filter=["output"])
    receiver.wait(lambda: len(receiver.on("/end")) == 1 and len(receiver.on("/output")) == 1 and any(
        r.json()["status"] == "succeeded" for r in receiver.on("/all")), why="both completed")
    time.sleep(1.0)  # nothing more may arrive
    got = receiver.on("/all")
    for delivery in receiver.got:
        assert delivery.verify(secret)["id"] in (every.id, only_end.id, only_output.id)
        replicate.webhooks.validate(headers=delivery.headers, body=delivery.body.decode(),
                                    secret=client.webhooks.default.secret())
    statuses = [r.json()["status"] for r in got]
    assert statuses[0] == "processing" and statuses[-1] == "succeeded", statuses
    logs = got[1:-1]
    assert logs and all(r.json()["status"] == "processing" for r in logs), statuses
    texts = [r.json()["logs"] for r in logs]
    assert len(set(texts)) == len(texts) and all(b.startswith(a) for a, b in zip(texts, texts[1:]))
    # At most one logs event per 500 ms of the run. Counted against the run's own length, not
    # the gaps between arrivals: a delivery that waited behind another receiver's lands close
    # to the next one although the two were sent 500 ms apart.
    run_s = got[-1].json()["metrics"]["predict_time"]
    assert len(logs) <= run_s / 0.5 + 1, (len(logs), run_s)
    assert [r.json()["status"] for r in receiver.on("/end")] == ["succeeded"]
    assert [r.json()["output"].startswith(server.url) for r in receiver.on("/output")] == [True]


def test_errors_come_in_replicate_shape(client: replicate.Client, server: Server) -> None:
    with pytest.raises(ReplicateError) as unknown:
        client.predictions.create(model="kwaivgi/kling-v2.6", input={**T2V, "camera": "dolly"})
    assert unknown.value.status == 422 and unknown.value.title == "Input validation failed"
    assert "camera" in str(unknown.value.detail)
    with pytest.raises(ReplicateError) as needs_image:
        client.predictions.create(model="kwaivgi/kling-v2.1", input=T2V)
    assert needs_image.value.status == 422 and "start_image" in str(needs_image.value.detail)
    with pytest.raises(ReplicateError) as model:
        client.predictions.create(model="someone/else", input=T2V)
    assert model.value.status == 422 and "someone/else" in str(model.value.detail)
    with pytest.raises(ReplicateError) as missing:
        client.predictions.get("a" * 26)
    assert missing.value.status == 404
    with pytest.raises(ReplicateError) as anonymous:
        replicate.Client(api_token="tk_wrong", base_url=server.url).predictions.list()
    assert anonymous.value.status == 401 and anonymous.value.title == "Unauthenticated"
    with pytest.raises(ReplicateError) as poor:
        client_for(server, 0.1).predictions.create(model="kwaivgi/kling-v2.6", input=T2V)
    assert poor.value.status == 402
    bad_wait = httpx.post(server.url + "/v1/models/kwaivgi/kling-v2.6/predictions", json={"input": T2V},
                          headers={"authorization": f"Bearer {token(client)}", "prefer": "wait=600"})
    assert bad_wait.status_code == 422 and bad_wait.headers["content-type"] == "application/problem+json"
    assert bad_wait.json()["invalid_fields"][0]["field"] == "Prefer"
    limited = {"authorization": f"Bearer {server.key(rate_limit=1)}"}
    answers = [httpx.post(server.url + "/v1/predictions", json={"version": "kwaivgi/kling-v2.6", "input": {}},
                          headers=limited) for _ in range(2)]
    assert [a.status_code for a in answers] == [422, 429] and int(answers[1].headers["retry-after"]) >= 1
    assert answers[1].json()["title"] == "Request was throttled"


def test_ids_are_read_only_through_their_own_dialect(client: replicate.Client, server: Server) -> None:
    key = token(client)
    auth = {"authorization": f"Bearer {key}"}
    segmind = httpx.post(server.url + "/v2/kling-2.6", headers={"x-api-key": key},
                         json={"prompt": "a fox", "duration": 5}).json()["request_id"]
    with pytest.raises(ReplicateError) as foreign:
        client.predictions.get(short_id(segmind))
    assert foreign.value.status == 404
    mine = client.predictions.create(model="kwaivgi/kling-v2.6", input=T2V)
    job_id = job_id_of_short(mine.id)
    assert job_id is not None and httpx.get(f"{server.url}/v2/requests/{segmind}", headers=auth).status_code == 200
    for path in (f"/v2/requests/{job_id}", f"/v1/videos/video_{job_id}", f"/v1/videos/video_{mine.id}"):
        assert httpx.get(server.url + path, headers=auth).status_code == 404, path
    assert [p.id for p in client.predictions.list().results] == [mine.id]


def test_scopes_and_idempotency(server: Server) -> None:
    narrow = replicate.Client(api_token=server.key(10.0, scopes=["videos"]), base_url=server.url)
    with pytest.raises(ReplicateError) as scoped:
        narrow.predictions.create(model="kwaivgi/kling-v2.6", input=T2V)
    assert scoped.value.status == 403
    key = server.key(2.0)
    answers = [httpx.post(server.url + "/v1/predictions", json={"version": "kwaivgi/kling-v2.6", "input": T2V},
                          headers={"authorization": f"Bearer {key}", "idempotency-key": "r1"}) for _ in range(2)]
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    assert server.balance(key) == pytest.approx(2.0 - 0.25)
