"""The storage interface: local files now; an S3-compatible store implements the same."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol


class Storage(Protocol):
    def path_for(self, name: str) -> Path:
        """Where the worker writes the output called ``name``."""

    def signed_url(self, base_url: str, name: str, expires: float) -> str:
        """An expiring link a client can download ``name`` from without a key."""

    def verify(self, name: str, expires: int, sig: str, now: float) -> Path:
        """The file behind a link, or :class:`~takeone.core.errors.NotFound`."""

    def delete(self, name: str) -> None: ...
