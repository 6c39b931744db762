"""Blob answers: whole files, single byte ranges, and what is refused."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from starlette.responses import StreamingResponse

from takeone.backends.local_blobs import LocalBlobStore
from takeone.core.blobs import output_key
from takeone.core.errors import NotFound
from takeone.edge.files import blob_response

DATA = bytes(range(256)) * 8  # 2048 bytes


async def _body(response: StreamingResponse) -> bytes:
    return b"".join([chunk async for chunk in response.body_iterator])  # type: ignore[misc]


@pytest.mark.parametrize(("header", "status", "expected", "content_range"), [
    (None, 200, DATA, None),
    ("bytes=0-9", 206, DATA[:10], "bytes 0-9/2048"),
    ("bytes=2000-", 206, DATA[2000:], "bytes 2000-2047/2048"),
    ("bytes=-48", 206, DATA[-48:], "bytes 2000-2047/2048"),
    ("bytes=100-99999", 206, DATA[100:], "bytes 100-2047/2048"),
    ("bytes=0-1,5-6", 200, DATA, None),  # several ranges: the whole file
])
def test_ranges(tmp_path: Path, header: str | None, status: int, expected: bytes,
                content_range: str | None) -> None:
    blobs = LocalBlobStore(tmp_path, b"s")
    blobs.put(output_key("j"), DATA)
    response = asyncio.run(blob_response(blobs, output_key("j"), header))
    assert isinstance(response, StreamingResponse)
    assert response.status_code == status and response.headers.get("content-range") == content_range
    assert response.headers["content-length"] == str(len(expected))
    assert asyncio.run(_body(response)) == expected


def test_unsatisfiable_range_and_missing_blob(tmp_path: Path) -> None:
    blobs = LocalBlobStore(tmp_path, b"s")
    blobs.put(output_key("j"), DATA)
    response = asyncio.run(blob_response(blobs, output_key("j"), "bytes=5000-"))
    assert response.status_code == 416 and response.headers["content-range"] == "bytes */2048"
    with pytest.raises(NotFound):
        asyncio.run(blob_response(blobs, output_key("gone"), None))
