"""API keys in SQLite: created once (the secret is shown only then), stored as a SHA-256 hash.

Keys are 256-bit random secrets, so a fast hash is enough: it cannot be brute-forced, and
looking a key up by its hash means the secret is never compared byte by byte.

Example::

    keys = SqliteKeys(db, clock=time.time)
    created = keys.create(credits=10.0, scopes=["my-route"])
    print(created.secret)          # shown once
    key = keys.authenticate(created.secret)
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Callable, Sequence

from takeone.backends.sqlite.credits import grant
from takeone.backends.sqlite.db import Database
from takeone.backends.sqlite.jobs import fail_in
from takeone.core.accounts import ApiKey, CreatedKey, check_amount, check_limit, from_micro, to_micro
from takeone.core.errors import NotFound, Unauthorized

KEY_PREFIX = "tk_"


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
        max_queued=row["max_queued"],
        balance=from_micro(row["balance"]),
        reserved=from_micro(row["reserved"]),
        created_at=row["created_at"],
        revoked=row["revoked_at"] is not None,
    )


class SqliteKeys:
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
        max_queued: int | None = None,
    ) -> CreatedKey:
        check_amount("credits", credits)
        check_limit("rate_limit", rate_limit)
        check_limit("max_concurrent", max_concurrent)
        check_limit("max_queued", max_queued)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(6)
        now = self.clock()
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT INTO api_keys (id, key_hash, prefix, name, scopes, rate_limit,"
                " max_concurrent, max_queued, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (key_id, hash_secret(secret), secret[:7], name,
                 json.dumps(list(scopes)) if scopes else None, rate_limit, max_concurrent, max_queued, now),
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
        """Revoke the key and fail its queued and running jobs (credits released): a leaked
        key must not leave work behind that nobody can cancel."""
        key = self.get(key_id)
        now = self.clock()
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, key.id))
            active = conn.execute("SELECT id FROM jobs WHERE key_id = ? AND status IN"
                                  " ('QUEUED', 'PROCESSING')", (key.id,)).fetchall()
            for row in active:
                fail_in(conn, row["id"], "cancelled: the API key was revoked", now)
        return self.get(key.id)

    def credit(self, key_id: str, credits: float) -> ApiKey:
        check_amount("credits", credits, allow_negative=True)
        key = self.get(key_id)
        with self.db.transaction() as conn:
            grant(conn, key.id, to_micro(credits), self.clock())
        return self.get(key.id)
