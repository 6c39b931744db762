"""The server's secret: 32 random bytes in the data folder's ``secret.key``, made on the first
run and readable by its owner only. It signs blob links and seals keys' credentials
(:mod:`takeone.core.credentials`); every process of one deployment reads the same file.

Example::

    secret = load_or_create_secret(Path("data/secret.key"))   # the same bytes on every call
"""

from __future__ import annotations

import secrets
from pathlib import Path


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
