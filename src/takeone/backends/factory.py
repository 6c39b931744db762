"""Which store and which blob store a process opens, from :class:`Settings`.

The embedded default is the data folder's SQLite file and files; ``database_url`` and
``storage_url`` switch to PostgreSQL and an S3-compatible bucket (cluster mode). The cluster
backends are imported only when asked for, so the embedded server never loads their drivers.

Example::

    store = open_store(Settings(database_url="postgresql://takeone@db/takeone"))
    blobs = open_blobs(Settings(storage_url="s3://videos/takeone"), secret)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from takeone.core.blobs import BlobStore
from takeone.core.errors import InvalidRequest
from takeone.core.settings import Settings
from takeone.core.store import Store

DATABASE_SCHEMES = ("postgresql://", "postgres://")


def check_database_url(url: str) -> str:
    """``url`` if it names a PostgreSQL database; a clear error naming the flag otherwise."""
    if not url.startswith(DATABASE_SCHEMES):
        raise InvalidRequest("--database", redact(url), "must be a postgresql://USER@HOST:PORT/DB URL")
    return url


def check_storage_url(url: str) -> str:
    if not url.startswith("s3://") or len(url) <= len("s3://"):
        raise InvalidRequest("--storage", url, "must be an s3://BUCKET or s3://BUCKET/PREFIX URL")
    return url


API_CONNECTIONS = 8  # PostgreSQL connections an API process may hold (plus one that listens)
WORKER_CONNECTIONS = 2  # ... and a worker actor, which makes a few small writes per step


def open_store(settings: Settings, clock: Callable[[], float] = time.time, check: bool = False,
               connections: int = API_CONNECTIONS) -> Store:
    """The job/key/ledger store this process shares with every other one (``connections``:
    the most a PostgreSQL pool may open)."""
    if settings.database_url is not None:
        from takeone.backends.postgres.store import PostgresStore

        return PostgresStore.open(check_database_url(settings.database_url), clock=clock, check=check,
                                  max_size=connections)
    from takeone.backends.sqlite.store import SqliteStore

    return SqliteStore.open(settings.db_path, clock, settings.store_busy_timeout_s, check)


def open_blobs(settings: Settings, secret: bytes, check: bool = False) -> BlobStore:
    """Where inputs and outputs live; ``secret`` signs the local store's download links;
    ``check``: make sure a bucket exists and takes writes (a clear error at start)."""
    if settings.storage_url is not None:
        from takeone.backends.s3_blobs import S3BlobStore

        return S3BlobStore.from_url(check_storage_url(settings.storage_url), endpoint=settings.s3_endpoint,
                                    public_endpoint=settings.s3_public_endpoint, check=check)
    from takeone.backends.local_blobs import LocalBlobStore

    return LocalBlobStore(settings.data_dir, secret)


def describe_store(settings: Settings) -> str:
    """Where the state lives, for logs and banners (never a password)."""
    if settings.database_url is not None:
        return f"PostgreSQL {redact(settings.database_url)}"
    return f"SQLite {settings.db_path.resolve()}"


def describe_blobs(settings: Settings) -> str:
    if settings.storage_url is not None:
        where = f" at {settings.s3_endpoint}" if settings.s3_endpoint else ""
        return f"bucket {settings.storage_url}{where}"
    return f"files in {settings.data_dir.resolve()}"


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if not sep or "@" not in rest:
        return url
    creds, _, host = rest.rpartition("@")
    user, colon, _ = creds.partition(":")
    return f"{scheme}://{user}{':***' if colon else ''}@{host}"
