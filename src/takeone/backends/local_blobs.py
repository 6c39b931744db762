"""Blobs as files under one root folder, reached through expiring signed links.

A link is ``/files/{key}?expires={unix}&sig={hmac}``; the HMAC covers the key and the
expiry, so a link can neither be extended nor re-pointed at another blob. Downloads need no
API key (clients hand the link to browsers and players), which is why the signature matters.
Writes go to a temporary file beside the target and are renamed into place, so a reader
never sees half a file and a failed write leaves none.

Example::

    blobs = LocalBlobStore(Path("data"), secret=b"...")
    blobs.put("inputs/req_1/first_frame.png", png_bytes)
    url = blobs.url("outputs/req_1.mp4", "https://api.example.com", expires=now + 86400)
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlencode

from takeone.core.blobs import CHUNK, BlobInfo, check_key
from takeone.core.errors import NotFound, StoreUnavailable


class LocalBlobStore:
    def __init__(self, root: Path, secret: bytes) -> None:
        self.root = root
        self.secret = secret
        for folder in ("inputs", "outputs"):
            (root / folder).mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes | BinaryIO) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".put-")
        try:
            with os.fdopen(fd, "wb") as out:
                if isinstance(data, bytes):
                    out.write(data)
                else:
                    shutil.copyfileobj(data, out, CHUNK)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)  # same file system: a rename
        except OSError:
            with path.open("rb") as src:
                self.put(key, src)
            path.unlink(missing_ok=True)

    def fetch_to(self, key: str, path: Path) -> None:
        source = self._path(key)
        if not source.is_file():
            raise NotFound(f"no blob {key!r}")
        shutil.copyfile(source, path)

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        handle = self._open(key)  # opened now: a sweep that unlinks it later cannot cut it short
        return _read_range(handle, start, end)

    def _open(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except (FileNotFoundError, IsADirectoryError):
            raise NotFound(f"the file {key!r} no longer exists") from None

    def stat(self, key: str) -> BlobInfo | None:
        try:
            st = self._path(key).stat()
        except FileNotFoundError:
            return None
        return BlobInfo(key, st.st_size, st.st_mtime)

    def _sign(self, key: str, expires: int) -> str:
        return hmac.new(self.secret, f"{key}:{expires}".encode(), hashlib.sha256).hexdigest()

    def url(self, key: str, base_url: str, expires: float) -> str:
        query = urlencode({"expires": int(expires), "sig": self._sign(check_key(key), int(expires))})
        return f"{base_url.rstrip('/')}/files/{key}?{query}"

    def check_link(self, key: str, expires: int, sig: str, now: float) -> None:
        check_key(key)
        if not hmac.compare_digest(self._sign(key, expires), sig) or expires < now:
            raise NotFound("this download link is invalid or has expired")

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> None:
        folder = self.root / prefix.rstrip("/")
        if folder.resolve().is_relative_to(self.root.resolve()) and folder != self.root:
            shutil.rmtree(folder, ignore_errors=True)

    def probe(self) -> None:
        _probe(self.root)

    def remove_temporaries(self, before: float) -> int:
        """``.put-*`` files under inputs/ and outputs/ that a killed writer left behind."""
        removed = 0
        for top in ("inputs", "outputs"):
            folder = self.root / top
            for path in folder.rglob(".put-*") if folder.is_dir() else ():
                with contextlib.suppress(FileNotFoundError):
                    if path.is_file() and path.stat().st_mtime < before:
                        path.unlink()
                        removed += 1
        return removed

    def older_than(self, prefix: str, before: float) -> list[str]:
        top = self.root / prefix.split("/", 1)[0]
        keys: list[str] = []
        for path in top.rglob("*") if top.is_dir() else ():
            key = path.relative_to(self.root).as_posix()
            if not key.startswith(prefix) or not _KEY_OK(key):
                continue  # a half-written temporary file, or something takeone did not make
            with contextlib.suppress(FileNotFoundError):
                if path.is_file() and path.stat().st_mtime < before:
                    keys.append(key)
        return keys


PROBE_BYTES = 64 * 1024


def _probe(root: Path) -> None:
    folder = root / "tmp"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".probe-") as f:
            f.write(b"\0" * PROBE_BYTES)
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        raise StoreUnavailable(f"the data folder cannot take new files: {exc.strerror or exc}") from exc


def _KEY_OK(key: str) -> bool:
    try:
        check_key(key)
    except NotFound:
        return False
    return True


def _read_range(handle: BinaryIO, start: int, end: int | None) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        remaining = None if end is None else end - start + 1
        while remaining is None or remaining > 0:
            chunk = handle.read(CHUNK if remaining is None else min(CHUNK, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk
