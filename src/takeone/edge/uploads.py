"""Multipart forms read as they arrive, never held whole.

A file part goes straight to a temporary file on disk (``.upload-*`` in the scratch folder,
which the sweeper clears if a process dies before it removes its own), hashed as it is
written; a text part is kept in memory. Each part has its own cap, checked as its bytes come
in: the part that passes it is refused at once with a 400 naming it (the rest of the body is
not read), and the whole body past ``body_limit`` is a 413, as for every body. So one
request holds at most ``max_fields`` text parts of their caps in memory (by default
:data:`TEXT_MAX` each: 2 MiB in all) plus one network chunk, whatever the size of its files.

Example::

    async with read_form(request, FormLimits(body=32 << 20, file=20 << 20), scratch) as form:
        for name, value in form.items:
            ...  # value: a str, or an UploadedFile (path, size, sha256, filename)
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import Request

from takeone.core.errors import MISSING, InvalidRequest, PayloadTooLarge

UPLOAD_PREFIX = ".upload-"
TEXT_MAX = 64 * 1024
MAX_FILES = 2
MAX_FIELDS = 32


@dataclass(frozen=True, repr=False)
class UploadedFile:
    """A file part on disk: where, how big, its SHA-256 and the client's file name. Its repr
    (what an error shows) names the file as the client did, never the server's path."""

    path: Path
    size: int
    sha256: str
    filename: str

    def __repr__(self) -> str:
        return f"<file {self.filename!r}, {self.size} bytes>"


@dataclass(frozen=True)
class FormLimits:
    """Caps in bytes: the whole body, each file part, each text part (``text_for`` names
    fields allowed more, such as an image sent as a data URI in a text part)."""

    body: int
    file: int
    text: int = TEXT_MAX
    text_for: Mapping[str, int] = field(default_factory=dict)
    max_files: int = MAX_FILES
    max_fields: int = MAX_FIELDS


@dataclass
class Form:
    """The parts in the order they came; :meth:`close` removes the files."""

    items: list[tuple[str, str | UploadedFile]] = field(default_factory=list)

    def close(self) -> None:
        for _, value in self.items:
            if isinstance(value, UploadedFile):
                with contextlib.suppress(FileNotFoundError):
                    value.path.unlink()


@dataclass
class _Part:
    """The part being read."""

    name: str
    filename: str | None
    cap: int
    size: int = 0
    text: bytearray = field(default_factory=bytearray)
    file: IO[bytes] | None = None
    path: Path | None = None
    digest: Any = field(default_factory=hashlib.sha256)


@contextlib.asynccontextmanager
async def read_form(request: Request, limits: FormLimits, scratch: Path,
                    executor: Executor | None = None) -> AsyncIterator[Form]:
    """The request's multipart form, read chunk by chunk; files written on ``executor``
    (None: the event loop's default pool). Every file is removed on leaving the block."""
    boundary = _boundary(request)
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limits.body:
        raise PayloadTooLarge(f"the request body is {declared} bytes; the limit is {limits.body}")
    form = Form()
    reader = _Reader(form, limits, scratch)
    try:
        parser = MultipartParser(boundary, reader.callbacks())
        seen = 0
        async for chunk in request.stream():
            seen += len(chunk)
            if seen > limits.body:
                raise PayloadTooLarge(f"the request body is over the limit of {limits.body} bytes")
            _parse(parser.write, chunk)
            await reader.flush(executor)
        _parse(lambda _: parser.finalize(), b"")
        await reader.flush(executor)
        if not reader.ended:
            raise InvalidRequest("body", MISSING, "is not a complete multipart form (it ends early)")
        yield form
    finally:
        reader.abandon()
        form.close()


def _boundary(request: Request) -> bytes:
    ctype, options = parse_options_header(request.headers.get("content-type"))
    boundary = options.get(b"boundary")
    if ctype != b"multipart/form-data" or not boundary:
        raise InvalidRequest("content-type", request.headers.get("content-type"),
                             "must be multipart/form-data with a boundary")
    return boundary


def _parse(write: Callable[[bytes], object], chunk: bytes) -> None:
    try:
        write(chunk)
    except InvalidRequest:
        raise
    except Exception as exc:  # noqa: BLE001 - the parser raises several kinds for a broken form
        raise InvalidRequest("body", MISSING, f"is not a readable multipart form ({type(exc).__name__})") from None


class _Reader:
    """The parser's callbacks: they only note what arrived; :meth:`flush` then writes file
    data off the event loop."""

    def __init__(self, form: Form, limits: FormLimits, scratch: Path) -> None:
        self.form, self.limits, self.scratch = form, limits, scratch
        self.header_field = bytearray()
        self.header_value = bytearray()
        self.headers: dict[bytes, bytes] = {}
        self.part: _Part | None = None
        self.pending: list[tuple[_Part, bytes | None]] = []  # file data to write; None: close
        self.files = 0
        self.ended = False

    def callbacks(self) -> Any:
        return {
            "on_part_begin": self._begin,
            "on_header_field": lambda d, s, e: self.header_field.extend(d[s:e]),
            "on_header_value": lambda d, s, e: self.header_value.extend(d[s:e]),
            "on_header_end": self._header_end,
            "on_headers_finished": self._headers_finished,
            "on_part_data": self._data,
            "on_part_end": self._end,
            "on_end": self._form_end,
        }

    def _begin(self) -> None:
        self.headers = {}

    def _header_end(self) -> None:
        self.headers[bytes(self.header_field).lower()] = bytes(self.header_value)
        self.header_field.clear()
        self.header_value.clear()

    def _headers_finished(self) -> None:
        kind, options = parse_options_header(self.headers.get(b"content-disposition"))
        name = options.get(b"name")
        if kind != b"form-data" or name is None:
            raise InvalidRequest("body", MISSING, "has a form part without a Content-Disposition name")
        text = name.decode("utf-8", "replace")
        if len(self.form.items) + (self.part is not None) >= self.limits.max_fields:
            raise InvalidRequest(text, MISSING, f"is one part too many: a form may have {self.limits.max_fields}")
        filename = options.get(b"filename")
        if filename is None:
            self.part = _Part(text, None, self.limits.text_for.get(text, self.limits.text))
            return
        self.files += 1
        if self.files > self.limits.max_files:
            raise InvalidRequest(text, MISSING, f"is one file too many: a form may have {self.limits.max_files}")
        self.part = _Part(text, filename.decode("utf-8", "replace"), self.limits.file)

    def _data(self, data: bytes, start: int, end: int) -> None:
        part = self.part
        assert part is not None
        part.size += end - start
        if part.size > part.cap:
            kind = "file" if part.filename is not None else "field"
            shown = part.filename if part.filename is not None else MISSING
            raise InvalidRequest(part.name, shown, f"is over {_bytes(part.cap)}, the most this {kind} may be")
        if part.filename is None:
            part.text.extend(data[start:end])
        else:
            self.pending.append((part, data[start:end]))

    def _end(self) -> None:
        part = self.part
        assert part is not None
        self.part = None
        if part.filename is None:
            self.form.items.append((part.name, part.text.decode("utf-8", "replace")))
        else:
            self.pending.append((part, None))

    def _form_end(self) -> None:
        self.ended = True

    async def flush(self, executor: Executor | None) -> None:
        """Write what the last chunk brought for file parts; finished files join the form."""
        if not self.pending:
            return
        pending, self.pending = self.pending, []
        await asyncio.get_running_loop().run_in_executor(executor, self._write, pending)
        for part, data in pending:
            if data is None:
                assert part.path is not None and part.filename is not None
                self.form.items.append((part.name, UploadedFile(part.path, part.size,
                                                                part.digest.hexdigest(), part.filename)))

    def _write(self, pending: list[tuple[_Part, bytes | None]]) -> None:
        for part, data in pending:
            if part.file is None:
                self.scratch.mkdir(parents=True, exist_ok=True)
                handle, name = tempfile.mkstemp(prefix=UPLOAD_PREFIX, dir=self.scratch)
                part.file, part.path = os.fdopen(handle, "wb"), Path(name)
            if data is None:
                part.file.close()
            else:
                part.file.write(data)
                part.digest.update(data)

    def abandon(self) -> None:
        """Close and remove the file of a part left half-read (the request failed mid-part);
        the form's own files go with :meth:`Form.close`."""
        parts = [p for p, _ in self.pending] + ([self.part] if self.part is not None else [])
        for part in parts:
            if part.file is not None:
                part.file.close()
            if part.path is not None:
                with contextlib.suppress(FileNotFoundError):
                    part.path.unlink()


def _bytes(count: int) -> str:
    mib = 1024 * 1024
    return f"{count / mib:g} MiB" if count >= mib and count % (mib // 16) == 0 else f"{count} bytes"
