"""S3BlobStore against a real SeaweedFS with authentication on (benchmarks/services/seaweed.py).

One server for the session, a fresh bucket per test; the outage tests get their own server,
since they kill and restart it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import boto3
import httpx
import pytest
from boto3.s3.transfer import TransferConfig

from benchmarks.services.seaweed import SeaweedServer
from takeone.backends import s3_blobs
from takeone.backends.s3_blobs import S3BlobStore, parse_url
from takeone.core.blobs import CHUNK, input_key, output_key
from takeone.core.errors import InvalidRequest, NotFound, StoreUnavailable

pytestmark = pytest.mark.cluster

SMALL_PARTS = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20, max_concurrency=2)


@pytest.fixture(scope="session")
def seaweed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    with SeaweedServer(tmp_path_factory.mktemp("seaweed")) as server:
        yield server


@pytest.fixture
def own_seaweed(tmp_path: Path) -> Iterator[SeaweedServer]:
    """A server of the test's own, free to be killed and restarted."""
    with SeaweedServer(tmp_path / "seaweed") as server:
        yield server


def _store(server: SeaweedServer, **options: Any) -> S3BlobStore:
    bucket = server.create_bucket(f"t-{secrets.token_hex(6)}")
    options.setdefault("transfer", SMALL_PARTS)
    return S3BlobStore(bucket, "pre/", endpoint=server.endpoint, session=server.session(), **options)


@pytest.fixture
def store(seaweed: SeaweedServer) -> S3BlobStore:
    return _store(seaweed)


def _objects(server: SeaweedServer, bucket: str) -> list[str]:
    return sorted(o["Key"] for o in server.client().list_objects_v2(Bucket=bucket).get("Contents", ()))


def _uploads(server: SeaweedServer, bucket: str) -> list[str]:
    return [u["Key"] for u in server.client().list_multipart_uploads(Bucket=bucket).get("Uploads", ())]


def _video(size: int) -> bytes:
    return (bytes(range(256)) * (size // 256 + 1))[:size]


def test_round_trip(store: S3BlobStore, seaweed: SeaweedServer, tmp_path: Path) -> None:
    import io

    store.put(output_key("j"), b"video j")
    store.put(input_key("j", "first_frame"), io.BytesIO(b"png bytes"))  # a stream
    assert _objects(seaweed, store.bucket) == ["pre/inputs/j/first_frame.png", "pre/outputs/j.mp4"]
    info = store.stat(output_key("j"))
    assert info is not None and info.size == 7 and abs(info.modified - time.time()) < 60
    assert b"".join(store.open(output_key("j"))) == b"video j"
    store.fetch_to(input_key("j", "first_frame"), tmp_path / "in.png")
    assert (tmp_path / "in.png").read_bytes() == b"png bytes"
    store.delete(output_key("j"))
    store.delete(output_key("j"))  # twice: no error
    assert store.stat(output_key("j")) is None
    with pytest.raises(NotFound):
        store.open(output_key("j"))
    with pytest.raises(NotFound):
        store.fetch_to(output_key("j"), tmp_path / "gone.mp4")
    with pytest.raises(NotFound):
        store.put("../escape.png", b"")
    with pytest.raises(NotFound):
        store.stat("pre/../../etc/passwd")


def test_range_reads(store: S3BlobStore) -> None:
    data = _video(CHUNK * 2 + 1000)
    store.put(output_key("r"), data)
    assert b"".join(store.open(output_key("r"), 0, 9)) == data[:10]
    assert b"".join(store.open(output_key("r"), 300_000, 300_099)) == data[300_000:300_100]
    chunks = list(store.open(output_key("r"), 1000))
    assert b"".join(chunks) == data[1000:]
    assert len(chunks) >= 2 and max(map(len, chunks)) <= CHUNK  # streamed, not read whole
    assert b"".join(store.open(output_key("r"), len(data) - 5, len(data) + 100)) == data[-5:]
    assert b"".join(store.open(output_key("r"), len(data) + 10)) == b""  # past the end


def test_put_file_uses_multipart_and_keeps_the_bytes(store: S3BlobStore, seaweed: SeaweedServer,
                                                    tmp_path: Path) -> None:
    data = hashlib.sha256(b"seed").digest() * ((12 << 20) // 32) + b"tail"  # 12 MiB + 4: three parts
    scratch = tmp_path / "out.mp4"
    scratch.write_bytes(data)
    store.put_file(output_key("big"), scratch)
    assert not scratch.exists()
    head = seaweed.client().head_object(Bucket=store.bucket, Key="pre/outputs/big.mp4")
    assert head["ETag"].strip('"').endswith("-3")  # really uploaded as three parts
    assert store.stat(output_key("big")).size == len(data)  # type: ignore[union-attr]
    assert hashlib.sha256(b"".join(store.open(output_key("big")))).digest() == hashlib.sha256(data).digest()
    copy = tmp_path / "copy.mp4"
    store.fetch_to(output_key("big"), copy)
    assert copy.read_bytes() == data
    assert _uploads(seaweed, store.bucket) == []


def _tamper(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    path = changes.pop("path", parts.path)
    query.update(changes)
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def test_presigned_links(store: S3BlobStore, seaweed: SeaweedServer) -> None:
    store.put(output_key("a"), b"video a")
    store.put(output_key("b"), b"video b")
    url = store.url(output_key("a"), "https://api.example.com", expires=time.time() + 3600)
    assert url.startswith(f"{seaweed.endpoint}/{store.bucket}/pre/outputs/a.mp4?")
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"][0] in ("3599", "3600")  # never past `expires`
    with httpx.Client() as http:  # no credentials anywhere
        assert http.get(url).content == b"video a"
        ranged = http.get(url, headers={"Range": "bytes=2-4"})
        assert (ranged.status_code, ranged.content) == (206, b"deo")
        sig = parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]
        forged = ("0" if sig[0] != "0" else "1") + sig[1:]
        assert http.get(_tamper(url, **{"X-Amz-Signature": forged})).status_code == 403
        assert http.get(_tamper(url, path=urlsplit(url).path.replace("a.mp4", "b.mp4"))).status_code == 403
        assert http.get(_tamper(url, **{"X-Amz-Expires": "7200"})).status_code == 403
        assert http.get(url.split("?")[0]).status_code == 403  # no signature at all
    far = store.url(output_key("a"), "", expires=time.time() + 30 * 86400)
    assert parse_qs(urlsplit(far).query)["X-Amz-Expires"] == [str(7 * 86400)]  # S3's longest
    with pytest.raises(NotFound):
        store.check_link(output_key("a"), int(time.time()) + 60, "anything", time.time())


def test_expired_link_is_refused(store: S3BlobStore) -> None:
    store.put(output_key("e"), b"video e")
    url = store.url(output_key("e"), "", expires=time.time() + 1)
    assert httpx.get(url).status_code == 200
    time.sleep(2.1)
    assert httpx.get(url).status_code == 403


def test_links_on_the_public_endpoint(seaweed: SeaweedServer) -> None:
    internal = seaweed.endpoint.replace("127.0.0.1", "localhost")
    bucket = seaweed.create_bucket(f"t-{secrets.token_hex(6)}")
    store = S3BlobStore.from_url(f"s3://{bucket}", endpoint=internal, public_endpoint=seaweed.endpoint,
                                 session=seaweed.session())
    store.put(output_key("p"), b"public")
    url = store.url(output_key("p"), "", expires=time.time() + 60)
    assert url.startswith(f"{seaweed.endpoint}/{bucket}/outputs/p.mp4?")
    assert httpx.get(url).content == b"public"


def test_prefix_delete_and_age(store: S3BlobStore, seaweed: SeaweedServer,
                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_blobs, "DELETE_BATCH", 2)  # several DeleteObjects calls
    raw = seaweed.client()
    for job in ("j1", "j2"):
        store.put(input_key(job, "first_frame"), b"png")
        store.put(input_key(job, "last_frame"), b"png")
    store.put(output_key("j1"), b"mp4")
    raw.put_object(Bucket=store.bucket, Key="pre/inputs/j1/notes.txt", Body=b"not takeone's")
    raw.put_object(Bucket=store.bucket, Key="inputs/j1/first_frame.png", Body=b"outside the prefix")
    later = time.time() + 60
    assert store.older_than("inputs/", later) == [
        "inputs/j1/first_frame.png", "inputs/j1/last_frame.png",
        "inputs/j2/first_frame.png", "inputs/j2/last_frame.png"]  # notes.txt is not a takeone key
    assert store.older_than("outputs/", later) == ["outputs/j1.mp4"]
    assert store.older_than("inputs/", time.time() - 3600) == []
    store.delete_prefix("inputs/j1/")
    assert _objects(seaweed, store.bucket) == [
        "inputs/j1/first_frame.png", "pre/inputs/j2/first_frame.png", "pre/inputs/j2/last_frame.png",
        "pre/outputs/j1.mp4"]
    store.delete_prefix("")  # never the whole store
    assert len(_objects(seaweed, store.bucket)) == 4


def test_urls_and_checks(seaweed: SeaweedServer) -> None:
    assert parse_url("s3://media") == ("media", "")
    assert parse_url("s3://media/a/b/") == ("media", "a/b/")
    for bad in ("media", "http://media/x", "s3:///x", "s3://me", "s3://media/a//b", "s3://media/../x",
                "s3://media/x?versionId=1", "s3://bad_bucket!/x"):
        with pytest.raises(InvalidRequest) as err:
            S3BlobStore.from_url(bad)
        assert err.value.field == "--storage"
    bucket = seaweed.create_bucket(f"t-{secrets.token_hex(6)}")
    store = S3BlobStore.from_url(f"s3://{bucket}/tk", endpoint=seaweed.endpoint, session=seaweed.session(),
                                 check=True)
    assert (store.bucket, store.prefix) == (bucket, "tk/")
    assert _objects(seaweed, bucket) == []  # the probe cleaned up after itself
    with pytest.raises(StoreUnavailable, match="t-nosuchbucket.*does not exist"):
        S3BlobStore.from_url("s3://t-nosuchbucket", endpoint=seaweed.endpoint, session=seaweed.session(),
                             check=True)


def test_credentials_and_endpoint_from_the_environment(seaweed: SeaweedServer,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    bucket = seaweed.create_bucket(f"t-{secrets.token_hex(6)}")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in seaweed.env().items():
        monkeypatch.setenv(name, value)
    store = S3BlobStore.from_url(f"s3://{bucket}/env", check=True)  # boto3's default chain
    assert store.endpoint == seaweed.endpoint
    store.put(output_key("v"), b"env")
    assert _objects(seaweed, bucket) == ["env/outputs/v.mp4"]
    assert store.url(output_key("v"), "", time.time() + 60).startswith(f"{seaweed.endpoint}/{bucket}/env/")


def test_wrong_credentials(seaweed: SeaweedServer) -> None:
    bucket = seaweed.create_bucket(f"t-{secrets.token_hex(6)}")
    wrong = boto3.Session(aws_access_key_id=seaweed.access_key, aws_secret_access_key="wrong-secret-xyz",
                          region_name="us-east-1")
    store = S3BlobStore(bucket, endpoint=seaweed.endpoint, session=wrong)
    for call in (store.check, store.probe, lambda: store.put(output_key("x"), b"x"),
                 lambda: store.stat(output_key("x")), lambda: store.older_than("outputs/", time.time())):
        with pytest.raises(StoreUnavailable) as err:
            call()
        assert bucket in err.value.message and seaweed.endpoint in err.value.message
        assert "credentials" in err.value.message and "wrong-secret" not in err.value.message
    unknown = boto3.Session(aws_access_key_id="nobody", aws_secret_access_key="x", region_name="us-east-1")
    with pytest.raises(StoreUnavailable, match=bucket):
        S3BlobStore(bucket, endpoint=seaweed.endpoint, session=unknown).check()


def test_an_outage_fails_fast_and_a_failed_upload_leaves_nothing(own_seaweed: SeaweedServer,
                                                                 tmp_path: Path) -> None:
    server = own_seaweed
    store = _store(server)
    store.put(output_key("kept"), b"before the outage")
    store.probe()

    # the server dies while a multipart upload is under way (after it began, before part 2)
    parts: list[int] = []

    def kill_on_second_part(**_: object) -> None:
        parts.append(1)
        if len(parts) == 2:
            server.kill()

    store.client.meta.events.register("before-send.s3.UploadPart", kill_on_second_part)
    scratch = tmp_path / "out.mp4"
    scratch.write_bytes(_video(12 << 20))
    began = time.monotonic()
    with pytest.raises(StoreUnavailable) as err:
        store.put_file(output_key("big"), scratch)
    assert time.monotonic() - began < 15
    assert store.bucket in err.value.message
    assert scratch.exists()  # the worker still holds its file
    assert store.pending_aborts() == ["pre/outputs/big.mp4"]
    store.client.meta.events.unregister("before-send.s3.UploadPart", kill_on_second_part)

    for call in (store.probe, lambda: store.put(output_key("x"), b"x"), lambda: store.stat(output_key("kept")),
                 lambda: store.open(output_key("kept"))):
        began = time.monotonic()
        with pytest.raises(StoreUnavailable) as err:
            call()
        assert time.monotonic() - began < 10
        assert f"the bucket {store.bucket!r} at {server.endpoint} cannot be reached" in err.value.message

    server.start()
    assert _uploads(server, store.bucket) == ["pre/outputs/big.mp4"]  # left behind by the outage
    store.probe()  # the store is back: the pending abort goes through
    assert _uploads(server, store.bucket) == []
    assert store.pending_aborts() == []
    assert store.stat(output_key("big")) is None
    assert b"".join(store.open(output_key("kept"))) == b"before the outage"
    store.put_file(output_key("big"), scratch)  # the retry succeeds
    assert store.stat(output_key("big")).size == 12 << 20  # type: ignore[union-attr]


def test_a_hung_server_times_out(own_seaweed: SeaweedServer) -> None:
    store = _store(own_seaweed, read_timeout=1, max_attempts=1)
    store.put(output_key("h"), b"x")
    own_seaweed.pause()
    try:
        began = time.monotonic()
        with pytest.raises(StoreUnavailable, match="cannot be reached"):
            store.probe()
        assert time.monotonic() - began < 5
    finally:
        own_seaweed.resume()
    assert store.stat(output_key("h")) is not None
