"""OpenAI's Videos API end to end with the real ``openai`` SDK, unchanged but for base_url and
api_key, against a tiny-profile server: create_and_poll, retrieve, list, delete,
download_content (the MP4 opens with PyAV), with and without input_reference."""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from PIL import Image

from tests.integration.harness import Server, png_bytes
from tests.mp4probe import probe

# The SDK marks the Videos API deprecated (OpenAI shut its own down); that is why this exists.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture()
def client(server: Server) -> Iterator[openai.OpenAI]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield openai.OpenAI(base_url=server.url + "/v1", api_key=server.key(10.0), max_retries=0)


def test_create_and_poll_then_download(client: openai.OpenAI) -> None:
    video = client.videos.create_and_poll(prompt="a red fox in snow", seconds="5", size="1280x720")
    assert video.status == "completed" and video.progress == 100 and video.error is None
    assert video.id.startswith("video_") and video.model == "sora-2"
    assert (video.seconds, video.size) == ("5", "256x144")  # what the tiny profile delivers
    assert video.completed_at is not None and video.expires_at is not None
    assert video.expires_at - video.completed_at == 24 * 3600
    clip = probe(client.videos.download_content(video.id).read())
    assert (clip.codec, clip.width, clip.height, clip.frames) == ("h264", 256, 144, 121)
    assert clip.audio_codec == "aac"  # Sora 2 makes sound; so does a profile with audio
    thumbnail = Image.open(io.BytesIO(client.videos.download_content(video.id, variant="thumbnail").read()))
    assert (thumbnail.format, thumbnail.size) == ("JPEG", (256, 144))
    assert client.videos.retrieve(video.id).status == "completed"


# The first test polls as the server's openai-poll-after-ms says (1 s); the others poll at this.
POLL_MS = 100


def test_input_reference_and_openai_durations(client: openai.OpenAI, server: Server) -> None:
    picture = ("first.png", png_bytes((320, 240)), "image/png")
    video = client.videos.create_and_poll(prompt="the cat looks up", input_reference=picture,
                                          model="sora-2-pro", seconds="4", poll_interval_ms=POLL_MS)
    assert video.status == "completed", video.error
    assert (video.model, video.seconds, video.size) == ("sora-2-pro", "4", "144x256")  # portrait
    data = client.videos.download_content(video.id).read()
    assert probe(data).frames == 97
    ranged = httpx.get(f"{server.url}/v1/videos/{video.id}/content", headers={
        "authorization": f"Bearer {client.api_key}", "range": "bytes=0-99"})
    assert ranged.status_code == 206 and ranged.content == data[:100]


def test_openai_lengths_are_delivered_exactly(client: openai.OpenAI) -> None:
    """4, 8 and 12 s give 4, 8 and 12 s: 24 s + 1 frames at 24 fps (8k+1, LTX-2's frame rule),
    sound as long as the picture; 13 s at 9:16 is past the standard tier's memory cap."""
    for seconds in ("4", "8", "12"):
        video = client.videos.create_and_poll(prompt="waves", seconds=seconds, poll_interval_ms=POLL_MS)  # type: ignore[arg-type]
        assert (video.status, video.seconds) == ("completed", seconds), video.error
        clip = probe(client.videos.download_content(video.id).read())
        assert (clip.frames, clip.fps) == (24 * int(seconds) + 1, 24.0)
        assert abs(clip.duration - int(seconds)) < 0.05 and clip.audio_duration is not None
        assert abs(clip.audio_duration - clip.duration) < 0.1
    with pytest.raises(openai.BadRequestError) as long:
        client.videos.create(prompt="waves", seconds="13")  # type: ignore[arg-type]
    assert long.value.body["param"] == "seconds" and "at most 12" in long.value.body["message"]  # type: ignore[index]


def test_list_is_paginated_and_delete_forgets(client: openai.OpenAI) -> None:
    made = [client.videos.create_and_poll(prompt=f"clip {i}", seconds="5", poll_interval_ms=POLL_MS) for i in range(3)]
    page = client.videos.list(limit=2)
    assert [v.id for v in page.data] == [made[2].id, made[1].id] and page.has_more
    assert [v.id for v in client.videos.list(limit=2)] == [v.id for v in reversed(made)]  # auto-paging
    assert [v.id for v in client.videos.list(order="asc")] == [v.id for v in made]
    deleted = client.videos.delete(made[0].id)
    assert (deleted.id, deleted.deleted, deleted.object) == (made[0].id, True, "video.deleted")
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(made[0].id)
    assert [v.id for v in client.videos.list()] == [made[2].id, made[1].id]


def test_errors_come_in_openai_shape(client: openai.OpenAI, server: Server) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client.videos.create(prompt="x", size="640x480")
    assert bad.value.body["param"] == "size" and "1280x720" in bad.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as unknown:
        client.videos.create(prompt="x", extra_body={"quality": "hd"})
    assert unknown.value.code == "unknown_parameter"
    with pytest.raises(openai.BadRequestError):
        client.videos.remix("video_x", prompt="more snow")  # not served, and says so
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="tk_wrong", max_retries=0).videos.list()
    poor = openai.OpenAI(base_url=server.url + "/v1", api_key=server.key(0.1), max_retries=0)
    with pytest.raises(openai.RateLimitError) as quota:
        poor.videos.create(prompt="x")
    assert quota.value.code == "insufficient_quota"


def test_a_job_is_read_only_through_its_own_dialect(client: openai.OpenAI, server: Server) -> None:
    key = client.api_key
    segmind = httpx.post(server.url + "/v2/kling-2.6", headers={"x-api-key": key},
                         json={"prompt": "a fox", "duration": 5}).json()["request_id"]
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(f"video_{segmind}")
    video = client.videos.create(prompt="a fox", seconds="5")
    for path in (f"/v2/requests/{video.id[6:]}", f"/v2/requests/{video.id[6:]}/status"):
        assert httpx.get(server.url + path, headers={"x-api-key": key}).status_code == 404
    assert segmind not in [v.id[6:] for v in client.videos.list()]


def test_scopes_and_idempotency(server: Server) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        narrow = openai.OpenAI(base_url=server.url + "/v1", max_retries=0,
                               api_key=server.key(10.0, scopes=["kling-2.6"]))
        with pytest.raises(openai.PermissionDeniedError):
            narrow.videos.create(prompt="x")
        client = openai.OpenAI(base_url=server.url + "/v1", api_key=server.key(2.0), max_retries=0)
        first = client.videos.create(prompt="once", seconds="5", extra_headers={"Idempotency-Key": "k1"})
        again = client.videos.create(prompt="once", seconds="5", extra_headers={"Idempotency-Key": "k1"})
    assert again.id == first.id
    assert server.balance(client.api_key) == pytest.approx(2.0 - 0.875)  # standard tier, 5 s, audio


@pytest.mark.parametrize("parts", [
    [("input_reference", ("f.png", "PNG")), ("input_reference[image_url]", (None, "https://x.example/a.png"))],
    [("input_reference[image_url]", (None, "https://x.example/a.png")), ("input_reference", ("f.png", "PNG"))],
    [("prompt", (None, "again")), ("input_reference[file_id]", (None, "a")), ("input_reference[file_id]", (None, "b"))],
])
def test_malformed_multipart_is_a_400_in_openai_shape(server: Server, parts: list[tuple[str, Any]]) -> None:
    """A file and its dict spelling together, or a part twice (before: a 500, not OpenAI's shape)."""
    files = [(name, (fn, png_bytes((64, 64)) if body == "PNG" else body)) for name, (fn, body) in parts]
    r = httpx.post(server.url + "/v1/videos", headers={"authorization": f"Bearer {server.key(10.0)}"},
                   files=[("prompt", (None, "a fox")), *files])
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["type"] == "invalid_request_error", error
    assert error["param"] in ("input_reference", "input_reference[file_id]", "prompt"), error
    assert "more than once" in error["message"] or "both as a file" in error["message"]


MiB = 1024 * 1024


def _peak_rss_growth(server: Server, request: Any) -> tuple[Any, int]:
    """``request()``'s answer and how far the server's peak resident memory rose meanwhile
    (the peak is reset first, through /proc/<pid>/clear_refs)."""
    assert server.proc is not None
    proc = Path(f"/proc/{server.proc.pid}")

    def peak() -> int:
        line = next(x for x in (proc / "status").read_text().splitlines() if x.startswith("VmHWM:"))
        return int(line.split()[1]) * 1024

    (proc / "clear_refs").write_text("5")
    before = peak()
    answer = request()
    return answer, peak() - before


def test_a_large_multipart_upload_is_streamed_to_disk_and_capped_per_field(server: Server) -> None:
    """An 18 MiB file part (a small PNG with padding after its end) is made into a video while
    the server's peak memory rises by far less than the file (before: the file, its base64
    and its decoded bytes were all in memory, over 3x its size); a file part over the image
    limit and a text part over its cap are 400s naming the part, the upload left on disk is
    removed."""
    key = server.key(10.0)
    auth = {"authorization": f"Bearer {key}"}
    picture = png_bytes((320, 240)) + b"\0" * (18 * MiB)
    form = [("prompt", (None, "a cat in a big file")), ("seconds", (None, "5")), ("size", (None, "1280x720"))]
    httpx.post(server.url + "/v1/videos", headers=auth, files=[("prompt", (None, ""))])  # warm up

    def upload(body: bytes, *extra: tuple[str, Any]) -> httpx.Response:
        return httpx.post(server.url + "/v1/videos", headers=auth, timeout=60,
                          files=[*form, *extra, ("input_reference", ("big.png", body, "image/png"))])

    r, grew = _peak_rss_growth(server, lambda: upload(picture))
    print(f"peak memory rose {grew / MiB:.1f} MiB for an 18 MiB upload")
    assert r.status_code == 200, r.text
    assert grew < 6 * MiB, f"the server's peak memory rose {grew / MiB:.1f} MiB for an 18 MiB upload"
    video_id = r.json()["id"]
    deadline = time.monotonic() + 90
    while (video := httpx.get(f"{server.url}/v1/videos/{video_id}", headers=auth).json())["status"] != "completed":
        assert video["status"] in ("queued", "in_progress") and time.monotonic() < deadline, video
        time.sleep(0.3)
    assert video["size"] == "256x144"

    too_big, grew = _peak_rss_growth(server, lambda: upload(picture + b"\0" * (3 * MiB)))
    print(f"peak memory rose {grew / MiB:.1f} MiB for a refused 21 MiB upload")
    assert too_big.status_code == 400, too_big.text
    error = too_big.json()["error"]
    assert error["param"] == "input_reference" and error["type"] == "invalid_request_error", error
    assert "20 MiB" in error["message"] and "big.png" in error["message"], error
    assert grew < 6 * MiB, f"the server's peak memory rose {grew / MiB:.1f} MiB for a refused upload"

    long = httpx.post(server.url + "/v1/videos", headers=auth,
                      files=[("prompt", (None, "x" * (200 * 1024)))])
    assert long.status_code == 400 and long.json()["error"]["param"] == "prompt", long.text
    assert "65536 bytes" in long.json()["error"]["message"]

    def chunked() -> Iterator[bytes]:  # no Content-Length: the body limit ends it as it comes
        yield b'--b\r\nContent-Disposition: form-data; name="input_reference"\r\n\r\n'
        for _ in range(33):
            yield b"A" * MiB
    over = httpx.post(server.url + "/v1/videos", timeout=60, content=chunked(),
                      headers={**auth, "content-type": "multipart/form-data; boundary=b"})
    assert over.status_code == 413 and "limit" in over.json()["error"]["message"], over.text
    cut = httpx.post(server.url + "/v1/videos", headers={**auth, "content-type": "multipart/form-data; boundary=b"},
                     content=b'--b\r\nContent-Disposition: form-data; name="input_reference"; filename="a.png"'
                             b"\r\n\r\n" + picture[:MiB])
    assert cut.status_code == 400 and "ends early" in cut.json()["error"]["message"], cut.text
    assert list(server.data_dir.glob("tmp/.upload-*")) == []
