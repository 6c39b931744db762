"""Output files on local disk, reached through expiring signed links.

A link is ``/files/{name}?expires={unix}&sig={hmac}``; the HMAC covers the name and the
expiry, so a link can neither be extended nor re-pointed at another file. Downloads need no
API key (clients hand the link to browsers and players), which is why the signature matters.

Example::

    storage = LocalStorage(Path("data/outputs"), secret=b"...")
    url = storage.signed_url("https://api.example.com", "req_abc.mp4", expires=now + 86400)
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from pathlib import Path
from urllib.parse import urlencode

from takeone.core.errors import NotFound

_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}\.mp4$")


def load_or_create_secret(path: Path) -> bytes:
    """The server's signing secret, created on first run (readable by the owner only)."""
    if path.exists():
        return path.read_bytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_bytes(32)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(secret)
    tmp.chmod(0o600)
    tmp.replace(path)
    return secret


class LocalStorage:
    def __init__(self, root: Path, secret: bytes) -> None:
        self.root = root
        self.secret = secret
        root.mkdir(parents=True, exist_ok=True)

    def path_for(self, name: str) -> Path:
        if not _NAME.match(name):
            raise NotFound(f"no file {name!r}")
        return self.root / name

    def _sign(self, name: str, expires: int) -> str:
        msg = f"{name}:{expires}".encode()
        return hmac.new(self.secret, msg, hashlib.sha256).hexdigest()

    def signed_url(self, base_url: str, name: str, expires: float) -> str:
        query = urlencode({"expires": int(expires), "sig": self._sign(name, int(expires))})
        return f"{base_url.rstrip('/')}/files/{name}?{query}"

    def verify(self, name: str, expires: int, sig: str, now: float) -> Path:
        """The file's path if the link is genuine and unexpired; NotFound otherwise."""
        path = self.path_for(name)
        if not hmac.compare_digest(self._sign(name, expires), sig) or expires < now:
            raise NotFound("this download link is invalid or has expired")
        if not path.is_file():
            raise NotFound(f"the file {name!r} no longer exists")
        return path

    def delete(self, name: str) -> None:
        self.path_for(name).unlink(missing_ok=True)
