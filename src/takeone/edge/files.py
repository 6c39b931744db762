"""Answers made of blobs: the MP4 of a blocking call and signed downloads, with Range.

Blobs are read by key from the blob store in a thread, chunk by chunk, so a large video
never sits in memory and never blocks the event loop. One byte range per request
(``bytes=a-b``, ``bytes=a-``, ``bytes=-n``) is answered with 206; anything else gets the
whole file.

Example::

    return await blob_response(services.blobs, "outputs/req_1.mp4", request.headers.get("range"))
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping

from starlette.concurrency import iterate_in_threadpool
from starlette.responses import Response, StreamingResponse

from takeone.core.blobs import BlobStore
from takeone.core.errors import NotFound

_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
MEDIA_TYPES = {"mp4": "video/mp4", "png": "image/png", "jpg": "image/jpeg"}


async def blob_response(blobs: BlobStore, key: str, range_header: str | None = None,
                        headers: Mapping[str, str] | None = None,
                        filename: str | None = None) -> Response:
    info = await asyncio.to_thread(blobs.stat, key)
    if info is None:
        raise NotFound(f"the file {key.rsplit('/', 1)[-1]!r} no longer exists")
    base = {"accept-ranges": "bytes", **(headers or {})}
    if filename:
        base["content-disposition"] = f'attachment; filename="{filename}"'
    media_type = MEDIA_TYPES.get(key.rsplit(".", 1)[-1], "application/octet-stream")
    span = _parse_range(range_header, info.size)
    if span == "unsatisfiable":
        return Response(status_code=416, headers={**base, "content-range": f"bytes */{info.size}"})
    start, end, status = (0, info.size - 1, 200) if span is None else (*span, 206)
    chunks = await asyncio.to_thread(blobs.open, key, start, end)
    base["content-length"] = str(end - start + 1)
    if status == 206:
        base["content-range"] = f"bytes {start}-{end}/{info.size}"
    return StreamingResponse(iterate_in_threadpool(chunks), status_code=status,
                             media_type=media_type, headers=base)


def _parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    if not header or size == 0:
        return None
    match = _RANGE.match(header.strip())
    if match is None or match.group(1) == match.group(2) == "":
        return None  # several ranges or a malformed header: the whole file
    first, last = match.groups()
    if first == "":
        start, end = max(size - int(last), 0), size - 1
    else:
        start, end = int(first), min(int(last), size - 1) if last else size - 1
    if start > end or start >= size:
        return "unsatisfiable"
    return start, end
