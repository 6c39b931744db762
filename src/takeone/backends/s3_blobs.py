"""Blobs in an S3-compatible bucket (AWS S3, MinIO, SeaweedFS, R2), for cluster mode.

Every API process and worker reaches the same bucket, so an output written by a worker on
one machine is served by an API process on another. Object names are ``PREFIX`` + the
takeone key (``outputs/<job id>.mp4``). Download links are presigned GET URLs that point
at the bucket itself (``public_endpoint`` when clients reach it by another address), so
:meth:`S3BlobStore.check_link` refuses every ``/files`` link.

Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
``AWS_PROFILE``, instance roles...); they never appear in an error message. Every failure to
reach the bucket (refused connection, timeout, 5xx, missing bucket, refused credentials) is a
:class:`~takeone.core.errors.StoreUnavailable` naming the bucket and the endpoint; a missing
key is a :class:`~takeone.core.errors.NotFound`, as with the local store.

Example::

    blobs = S3BlobStore.from_url("s3://media/takeone", endpoint="http://10.0.0.5:8333")
    blobs.check()                                   # the bucket exists and takes writes
    blobs.put_file("outputs/req_1.mp4", Path("scratch/out.mp4"))   # multipart when large
    url = blobs.url("outputs/req_1.mp4", "https://api.example.com", expires=time.time() + 3600)
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, NoReturn
from urllib.parse import urlsplit

import boto3
from boto3.exceptions import Boto3Error
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from takeone.core.blobs import CHUNK, BlobInfo, check_key
from takeone.core.errors import InvalidRequest, NotFound, StoreUnavailable

MAX_LINK_S = 7 * 24 * 3600  # S3's longest presigned-URL lifetime (SigV4)
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys per call
PROBE_BYTES = 1024
_MISSING = {"404", "NoSuchKey", "NotFound"}
_REFUSED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "AllAccessDisabled",
            "InvalidToken", "ExpiredToken", "AccountProblem"}


def default_transfer() -> TransferConfig:
    """Multipart above 8 MiB, in 8 MiB parts, four at a time."""
    return TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20, max_concurrency=4)


def parse_url(url: str) -> tuple[str, str]:
    """``(bucket, prefix)`` of ``s3://BUCKET/PREFIX``; the prefix ends with ``/`` unless empty.

    >>> parse_url("s3://media/takeone")
    ('media', 'takeone/')
    """
    parts = urlsplit(url)
    bucket = parts.netloc
    if parts.scheme != "s3" or not bucket or parts.query or parts.fragment or not _bucket_ok(bucket):
        raise InvalidRequest("--storage", url, "must be s3://BUCKET or s3://BUCKET/PREFIX")
    prefix = parts.path.strip("/")
    if any(seg in ("", ".", "..") for seg in prefix.split("/")) and prefix:
        raise InvalidRequest("--storage", url, "the prefix after the bucket must be plain folder names")
    return bucket, f"{prefix}/" if prefix else ""


def _bucket_ok(bucket: str) -> bool:
    return 3 <= len(bucket) <= 63 and all(c.isalnum() or c in "-._" for c in bucket)


class S3BlobStore:
    """A :class:`~takeone.core.blobs.BlobStore` on one bucket (and an optional key prefix)."""

    def __init__(self, bucket: str, prefix: str = "", *, endpoint: str | None = None,
                 region: str | None = None, public_endpoint: str | None = None,
                 session: boto3.Session | None = None, transfer: TransferConfig | None = None,
                 connect_timeout: float = 3, read_timeout: float = 30, max_attempts: int = 3,
                 clock: Callable[[], float] = time.time) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.transfer = transfer or default_transfer()
        self.clock = clock
        session = session or boto3.Session()
        config = Config(signature_version="s3v4", connect_timeout=connect_timeout, read_timeout=read_timeout,
                        retries={"total_max_attempts": max_attempts, "mode": "standard"})
        region = region or (None if session.region_name else "us-east-1")
        self.client: Any = _client(session, endpoint, region, config)
        self.endpoint = endpoint or self.client.meta.endpoint_url  # AWS_ENDPOINT_URL counts too
        link_endpoint = public_endpoint or endpoint
        self._links: Any = (self.client if link_endpoint == endpoint else
                            _client(session, link_endpoint, region, config))
        self._unaborted: set[str] = set()  # object names whose failed upload could not be aborted yet
        self._lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, endpoint: str | None = None, region: str | None = None,
                 public_endpoint: str | None = None, check: bool = False, **options: Any) -> S3BlobStore:
        """The store for ``s3://BUCKET/PREFIX``; with ``check``, fail now unless it takes writes."""
        bucket, prefix = parse_url(url)
        store = cls(bucket, prefix, endpoint=endpoint or None, region=region or None,
                    public_endpoint=public_endpoint or None, **options)
        if check:
            store.check()
        return store

    # -- where -----------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _where(self) -> str:
        return f"the bucket {self.bucket!r} at {self.endpoint or 'the default S3 endpoint'}"

    def _fail(self, exc: Exception, action: str, key: str | None = None) -> NoReturn:
        """Re-raise a boto3/botocore failure as a takeone error."""
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if key is not None and (code in _MISSING or status == 404) and code != "NoSuchBucket":
                raise NotFound(f"the file {key!r} no longer exists") from None
            if code == "NoSuchBucket" or (key is None and status == 404):
                raise StoreUnavailable(f"{self._where()} does not exist") from None
            if code in _REFUSED or status == 403:
                raise StoreUnavailable(f"{self._where()} refused to {action} ({code or status}): "
                                       "check the credentials and the bucket's permissions") from None
            detail = error.get("Message") or code or status
            raise StoreUnavailable(f"{self._where()} failed to {action}: {detail}") from None
        cause = exc.__cause__ or exc.__context__
        if isinstance(exc, Boto3Error) and isinstance(cause, ClientError | BotoCoreError):
            self._fail(cause, action, key)
        raise StoreUnavailable(f"{self._where()} cannot be reached to {action}: {_sentence(exc)}") from None

    # -- BlobStore -------------------------------------------------------------------------

    def put(self, key: str, data: bytes | BinaryIO) -> None:
        name = self._name(key)
        try:
            if isinstance(data, bytes):
                self.client.put_object(Bucket=self.bucket, Key=name, Body=data)
            else:
                self.client.upload_fileobj(data, self.bucket, name, Config=self.transfer)
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            if not isinstance(data, bytes):
                self._abort_uploads(name)
            self._fail(exc, f"store {key!r}")

    def put_file(self, key: str, path: Path) -> None:
        """Upload ``path`` (multipart above the threshold) and delete it. On a failure no object
        and no pending multipart upload remains; an abort the bucket cannot take now is retried
        by the next :meth:`put_file` or :meth:`probe`."""
        name = self._name(key)
        self._retry_aborts()
        try:
            self.client.upload_file(str(path), self.bucket, name, Config=self.transfer)
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            self._abort_uploads(name)
            self._fail(exc, f"store {key!r}")
        path.unlink(missing_ok=True)

    def fetch_to(self, key: str, path: Path) -> None:
        try:
            self.client.download_file(self.bucket, self._name(key), str(path), Config=self.transfer)
        except (BotoCoreError, ClientError, Boto3Error) as exc:
            self._fail(exc, f"read {key!r}", key)

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        extra = {} if start == 0 and end is None else {"Range": f"bytes={start}-{'' if end is None else end}"}
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self._name(key), **extra)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return iter(())  # past the end: nothing to read, as with a local file
            self._fail(exc, f"read {key!r}", key)
        except BotoCoreError as exc:
            self._fail(exc, f"read {key!r}", key)
        return self._stream(body, key)

    def _stream(self, body: Any, key: str) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(CHUNK)
        except BotoCoreError as exc:
            self._fail(exc, f"read {key!r}")
        finally:
            body.close()

    def stat(self, key: str) -> BlobInfo | None:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if code in _MISSING and code != "NoSuchBucket":
                return None
            self._fail(exc, f"read {key!r}")
        except BotoCoreError as exc:
            self._fail(exc, f"read {key!r}")
        return BlobInfo(key, int(head["ContentLength"]), head["LastModified"].timestamp())

    def url(self, key: str, base_url: str, expires: float) -> str:
        """A presigned GET on the bucket (``base_url`` is unused: the link skips the API)."""
        seconds = min(max(int(expires - self.clock()), 1), MAX_LINK_S)
        url: str = self._links.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._name(key)}, ExpiresIn=seconds)
        return url

    def check_link(self, key: str, expires: int, sig: str, now: float) -> None:
        raise NotFound("this download link is invalid or has expired")

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._name(key))
        except (BotoCoreError, ClientError) as exc:
            self._fail(exc, f"delete {key!r}")

    def delete_prefix(self, prefix: str) -> None:
        if not prefix.strip("/"):
            return  # never the whole store
        names = [name for name, _ in self._list(self.prefix + prefix)]
        for i in range(0, len(names), DELETE_BATCH):
            batch = [{"Key": name} for name in names[i:i + DELETE_BATCH]]
            try:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
            except (BotoCoreError, ClientError) as exc:
                self._fail(exc, f"delete {prefix!r}")

    def older_than(self, prefix: str, before: float) -> list[str]:
        keys = []
        for name, modified in self._list(self.prefix + prefix):
            key = name[len(self.prefix):]
            if modified < before and _key_ok(key):
                keys.append(key)
        return keys

    def _list(self, prefix: str) -> Iterator[tuple[str, float]]:
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", ()):
                    yield item["Key"], item["LastModified"].timestamp()
        except (BotoCoreError, ClientError) as exc:
            self._fail(exc, f"list {prefix!r}")

    def remove_temporaries(self, before: float) -> int:
        """Nothing to do: an upload is never visible half-written in a bucket."""
        return 0

    def probe(self) -> None:
        """A small write and delete; also retries aborts that an outage left pending."""
        name = f"{self.prefix}tmp/probe-{secrets.token_hex(8)}"
        try:
            self.client.put_object(Bucket=self.bucket, Key=name, Body=b"\0" * PROBE_BYTES)
            self.client.delete_object(Bucket=self.bucket, Key=name)
        except (BotoCoreError, ClientError) as exc:
            self._fail(exc, "take new files")
        self._retry_aborts()

    def check(self) -> None:
        """:class:`StoreUnavailable` unless the bucket exists, answers and takes writes."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (BotoCoreError, ClientError) as exc:
            self._fail(exc, "answer")
        self.probe()

    # -- failed multipart uploads ----------------------------------------------------------

    def _abort_uploads(self, name: str) -> None:
        """Abort every pending multipart upload of ``name`` (the transfer manager aborts its own
        when the bucket answers; this covers an abort that failed too)."""
        try:
            pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=name)
            for page in pages:
                for upload in page.get("Uploads", ()):
                    if upload["Key"] == name:
                        self.client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload["UploadId"])
        except (BotoCoreError, ClientError):
            with self._lock:
                self._unaborted.add(name)
            return
        with self._lock:
            self._unaborted.discard(name)

    def _retry_aborts(self) -> None:
        with self._lock:
            pending = sorted(self._unaborted)
        for name in pending:
            self._abort_uploads(name)

    def pending_aborts(self) -> list[str]:
        """Object names whose failed upload still waits for its abort (the bucket was away)."""
        with self._lock:
            return sorted(self._unaborted)


def _client(session: boto3.Session, endpoint: str | None, region: str | None, config: Config) -> Any:
    """An S3 client; path-style addressing on any endpoint but AWS's own (an IP address or a
    single host name has no room for the bucket in front)."""
    client = session.client("s3", endpoint_url=endpoint, region_name=region, config=config)
    host = urlsplit(client.meta.endpoint_url).hostname or ""
    if host.endswith(".amazonaws.com"):
        return client
    path_style = config.merge(Config(s3={"addressing_style": "path"}))
    return session.client("s3", endpoint_url=endpoint, region_name=region, config=path_style)


def _key_ok(key: str) -> bool:
    try:
        check_key(key)
    except NotFound:
        return False
    return True


def _sentence(exc: Exception) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]
