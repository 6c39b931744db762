"""Blob storage by key: every input image and every output video goes through a BlobStore.

Keys are plain relative names (``inputs/<job id>/first_frame.png``, ``outputs/<job id>.mp4``,
``loras/<name>.safetensors`` and its ``.json`` manifest);
no local path crosses this seam, so the same code runs on local files (the embedded
default) and on an S3-compatible bucket. The interface is synchronous because its callers
are a worker thread (which writes) and request handlers that run it in a thread pool.

Example::

    blobs.put(input_key(job_id, "first_frame"), png_bytes)
    blobs.put_file(output_key(job_id), Path("scratch/out.mp4"))   # moves the finished file
    for chunk in blobs.open(output_key(job_id), start=0, end=1023): ...
    blobs.url(output_key(job_id), "https://api.example.com", expires=now + 3600)
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from takeone.core.errors import NotFound

_KEY = re.compile(r"^(?:inputs|outputs)/[A-Za-z0-9_-]{1,64}(?:/[A-Za-z0-9_-]{1,64})?\.(?:mp4|png|jpg)$")
_LORA_KEY = re.compile(r"^loras/[A-Za-z0-9][A-Za-z0-9_-]{0,63}\.(?:safetensors|json)$")
CHUNK = 256 * 1024


@dataclass(frozen=True)
class BlobInfo:
    key: str
    size: int
    modified: float


def input_key(job_id: str, role: str) -> str:
    """Where a job's input image lives (``role`` is ``first_frame`` or ``last_frame``)."""
    return check_key(f"inputs/{job_id}/{role}.png")


def input_prefix(job_id: str) -> str:
    return f"inputs/{job_id}/"


def output_key(job_id: str) -> str:
    return check_key(f"outputs/{job_id}.mp4")


def poster_key(job_id: str) -> str:
    """The JPEG of an output's first frame (written by the worker beside the MP4)."""
    return check_key(f"outputs/{job_id}.jpg")


def check_key(key: str) -> str:
    """``key`` if it is one takeone makes; :class:`NotFound` otherwise (never a path escape)."""
    if not (_KEY.fullmatch(key) or _LORA_KEY.fullmatch(key)):  # fullmatch: "$" would let a final newline in
        raise NotFound(f"no file {key!r}")
    return key


class BlobStore(Protocol):
    def put(self, key: str, data: bytes | BinaryIO) -> None:
        """Store ``data`` (bytes or a readable binary stream) under ``key``, atomically."""

    def put_file(self, key: str, path: Path) -> None:
        """Store a finished local file under ``key``; the file is consumed (moved or deleted)."""

    def fetch_to(self, key: str, path: Path) -> None:
        """Copy the blob to a local file (a worker reading its inputs)."""

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        """The bytes ``start..end`` (inclusive; ``None``: to the end), in chunks."""

    def stat(self, key: str) -> BlobInfo | None: ...

    def url(self, key: str, base_url: str, expires: float) -> str:
        """An expiring link that downloads ``key`` without an API key."""

    def check_link(self, key: str, expires: int, sig: str, now: float) -> None:
        """Raise :class:`NotFound` unless a link this store made for ``key`` is genuine and
        unexpired (stores whose links point elsewhere refuse every link)."""

    def delete(self, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> None: ...

    def older_than(self, prefix: str, before: float) -> list[str]:
        """Keys under ``prefix`` last written before ``before`` (for orphan sweeps)."""

    def remove_temporaries(self, before: float) -> int:
        """Delete the store's own half-written files last touched before ``before`` (a
        process killed mid-write leaves them); return how many."""

    def probe(self) -> None:
        """A small write and delete: raises :class:`~takeone.core.errors.StoreUnavailable`
        when the store cannot take a new file (a full disk, a read-only mount, no access)."""
