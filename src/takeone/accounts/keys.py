"""API keys: created once (the secret is shown only then), stored as a SHA-256 hash.

Keys are 256-bit random secrets, so a fast hash is enough: it cannot be brute-forced, and
looking a key up by its hash means the secret is never compared byte by byte.

Example::

    keys = KeyStore(db, clock=time.time)
    created = keys.create(credits=10.0, scopes=["kling-2.6"])
    print(created.secret)          # shown once
    key = keys.authenticate(created.secret)
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from takeone.accounts.credits import from_micro, grant, to_micro
from takeone.backends.sqlite.db import Database
from takeone.core.errors import Forbidden, NotFound, Unauthorized

KEY_PREFIX = "tk_"


@dataclass(frozen=True)
class ApiKey:
    """One key's public record (never the secret)."""

    id: str
    prefix: str
    name: str
    scopes: tuple[str, ...] | None
    rate_limit: int | None
    max_concurrent: int | None
    balance: float
    reserved: float
    created_at: float
    revoked: bool

    def check_scope(self, slug: str) -> None:
        if self.scopes is not None and slug not in self.scopes:
            raise Forbidden(f"this API key may not call {slug!r} (allowed: {', '.join(self.scopes)})")


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def _row_to_key(row: sqlite3.Row) -> ApiKey:
    scopes = tuple(json.loads(row["scopes"])) if row["scopes"] is not None else None
    return ApiKey(
        id=row["id"],
        prefix=row["prefix"],
        name=row["name"],
        scopes=scopes,
        rate_limit=row["rate_limit"],
        max_concurrent=row["max_concurrent"],
        balance=from_micro(row["balance"]),
        reserved=from_micro(row["reserved"]),
        created_at=row["created_at"],
        revoked=row["revoked_at"] is not None,
    )


class KeyStore:
    """Create, authenticate, list, revoke and credit API keys."""

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    def create(
        self,
        credits: float,
        scopes: Sequence[str] | None = None,
        rate_limit: int | None = None,
        max_concurrent: int | None = None,
        name: str = "",
    ) -> CreatedKey:
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(6)
        now = self.clock()
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, key_hash, prefix, name, scopes, rate_limit,"
                " max_concurrent, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (key_id, hash_secret(secret), secret[:7], name,
                 json.dumps(list(scopes)) if scopes else None, rate_limit, max_concurrent, now),
            )
            grant(conn, key_id, to_micro(credits), now)
        return CreatedKey(key=self.get(key_id), secret=secret)

    def authenticate(self, secret: str | None) -> ApiKey:
        if not secret:
            raise Unauthorized("missing API key: send it in the x-api-key header")
        row = self.db.query_one("SELECT * FROM api_keys WHERE key_hash = ?", (hash_secret(secret),))
        if row is None:
            raise Unauthorized("invalid API key")
        if row["revoked_at"] is not None:
            raise Unauthorized("this API key has been revoked")
        return _row_to_key(row)

    def get(self, key_id: str) -> ApiKey:
        row = self.db.query_one(
            "SELECT * FROM api_keys WHERE id = ? OR prefix = ?", (key_id, key_id)
        )
        if row is None:
            raise NotFound(f"no API key {key_id!r}")
        return _row_to_key(row)

    def balance(self, key_id: str) -> float:
        return self.get(key_id).balance

    def list(self) -> list[ApiKey]:
        return [_row_to_key(r) for r in self.db.query("SELECT * FROM api_keys ORDER BY created_at")]

    def revoke(self, key_id: str) -> ApiKey:
        key = self.get(key_id)
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                (self.clock(), key.id),
            )
        return self.get(key.id)

    def credit(self, key_id: str, credits: float) -> ApiKey:
        key = self.get(key_id)
        with self.db.transaction() as conn:
            grant(conn, key.id, to_micro(credits), self.clock())
        return self.get(key.id)
