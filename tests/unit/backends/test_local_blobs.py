from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from takeone.core.errors import NotFound
from takeone.backends.local_blobs import LocalStorage, load_or_create_secret


def _parts(url: str) -> tuple[str, int, str]:
    u = urlparse(url)
    q = parse_qs(u.query)
    return u.path.rsplit("/", 1)[1], int(q["expires"][0]), q["sig"][0]


def test_signed_links(tmp_path: Path) -> None:
    secret = load_or_create_secret(tmp_path / "secret.key")
    assert load_or_create_secret(tmp_path / "secret.key") == secret
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
    storage = LocalStorage(tmp_path / "out", secret)
    for name in ("a.mp4", "b.mp4"):
        storage.path_for(name).write_bytes(b"video " + name.encode())
    name, expires, sig = _parts(storage.signed_url("http://h", "a.mp4", 2000))
    assert storage.verify(name, expires, sig, now=1000).read_bytes() == b"video a.mp4"
    with pytest.raises(NotFound):
        storage.verify(name, expires, sig, now=2001)  # expired
    with pytest.raises(NotFound):
        storage.verify(name, expires + 1000, sig, now=1000)  # extended
    with pytest.raises(NotFound):
        storage.verify("b.mp4", expires, sig, now=1000)  # re-pointed
    with pytest.raises(NotFound):
        storage.verify("../secret.key", expires, sig, now=1000)
