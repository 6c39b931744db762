import os
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from takeone.backends.local_blobs import LocalBlobStore
from takeone.core.blobs import input_key, output_key
from takeone.core.errors import NotFound
from takeone.core.server_secret import load_or_create_secret


def _parts(url: str) -> tuple[str, int, str]:
    u = urlparse(url)
    q = parse_qs(u.query)
    return u.path.split("/files/", 1)[1], int(q["expires"][0]), q["sig"][0]


def _store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "data", load_or_create_secret(tmp_path / "secret.key"))


def test_signed_links(tmp_path: Path) -> None:
    secret = load_or_create_secret(tmp_path / "secret.key")
    assert load_or_create_secret(tmp_path / "secret.key") == secret
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
    blobs = _store(tmp_path)
    for job in ("a", "b"):
        blobs.put(output_key(job), b"video " + job.encode())
    key, expires, sig = _parts(blobs.url(output_key("a"), "http://h", 2000))
    assert key == "outputs/a.mp4"
    blobs.check_link(key, expires, sig, now=1000)
    assert b"".join(blobs.open(key)) == b"video a"
    with pytest.raises(NotFound):
        blobs.check_link(key, expires, sig, now=2001)  # expired
    with pytest.raises(NotFound):
        blobs.check_link(key, expires + 1000, sig, now=1000)  # extended
    with pytest.raises(NotFound):
        blobs.check_link("outputs/b.mp4", expires, sig, now=1000)  # re-pointed
    with pytest.raises(NotFound):
        blobs.check_link("../secret.key", expires, sig, now=1000)


def test_ranges_streams_and_moves(tmp_path: Path) -> None:
    blobs = _store(tmp_path)
    scratch = tmp_path / "out.mp4"
    scratch.write_bytes(bytes(range(256)) * 4096)  # 1 MiB: several chunks
    blobs.put_file(output_key("j"), scratch)
    assert not scratch.exists()
    assert blobs.stat(output_key("j")).size == 1 << 20  # type: ignore[union-attr]
    assert b"".join(blobs.open(output_key("j"), 10, 13)) == bytes([10, 11, 12, 13])
    assert len(b"".join(blobs.open(output_key("j"), 1000))) == (1 << 20) - 1000
    copy = tmp_path / "copy.mp4"
    blobs.fetch_to(output_key("j"), copy)
    assert copy.stat().st_size == 1 << 20
    with pytest.raises(NotFound):
        blobs.open(output_key("missing"))


def test_open_survives_a_delete(tmp_path: Path) -> None:
    blobs = _store(tmp_path)
    blobs.put(output_key("j"), b"x" * 600_000)
    chunks = blobs.open(output_key("j"))
    blobs.delete(output_key("j"))
    assert len(b"".join(chunks)) == 600_000  # a download in progress finishes


def test_prefixes_and_age(tmp_path: Path) -> None:
    blobs = _store(tmp_path)
    blobs.put(input_key("j1", "first_frame"), b"png")
    blobs.put(input_key("j2", "first_frame"), b"png")
    old = time.time() - 7200
    os.utime(blobs.root / input_key("j1", "first_frame"), (old, old))
    (blobs.root / "inputs" / "j1" / ".put-half").write_bytes(b"")  # a write in progress
    assert blobs.older_than("inputs/", time.time() - 3600) == ["inputs/j1/first_frame.png"]
    blobs.delete_prefix("inputs/j1/")
    assert blobs.stat(input_key("j1", "first_frame")) is None
    assert blobs.stat(input_key("j2", "first_frame")) is not None
    with pytest.raises(NotFound):
        blobs.put("../escape.png", b"")
