"""API keys, their credits and their sealed credentials in PostgreSQL.

The same rules as the embedded store (:mod:`takeone.backends.sqlite.keys`): the secret is
shown once and stored as a SHA-256 hash; revoking a key fails its queued and running jobs
with their credits released; a balance never goes below zero. Webhook secrets and access-key
secrets arrive sealed (:mod:`takeone.core.credentials`) and are stored as opaque strings.

Example::

    keys = PostgresKeys(pool, clock=time.time)
    created = keys.create(credits=10.0, scopes=["my-route"])
    key = keys.authenticate(created.secret)
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Sequence

from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from takeone.backends.postgres.credits import grant
from takeone.backends.postgres.db import Conn, query, query_one, transaction
from takeone.backends.postgres.jobs import ACTIVE, fail_in, lock_key
from takeone.backends.sqlite.keys import KEY_PREFIX, hash_secret
from takeone.core.accounts import ApiKey, CreatedKey, check_amount, check_limit, from_micro, to_micro
from takeone.core.credentials import KeyWebhook
from takeone.core.errors import NotFound, Unauthorized

REVOKED = "cancelled: the API key was revoked"


def row_to_key(row: DictRow) -> ApiKey:
    return ApiKey(
        id=row["id"], prefix=row["prefix"], name=row["name"],
        scopes=tuple(row["scopes"]) if row["scopes"] is not None else None,
        rate_limit=row["rate_limit"], max_concurrent=row["max_concurrent"], max_queued=row["max_queued"],
        balance=from_micro(row["balance"]), reserved=from_micro(row["reserved"]),
        created_at=row["created_at"], revoked=row["revoked_at"] is not None,
    )


class PostgresKeys:
    """Create, authenticate, list, revoke and credit API keys; their webhook settings and
    access-key pairs."""

    def __init__(self, pool: ConnectionPool[Conn], clock: Callable[[], float]) -> None:
        self.pool = pool
        self.clock = clock

    def create(self, credits: float, scopes: Sequence[str] | None = None, rate_limit: int | None = None,
               max_concurrent: int | None = None, name: str = "", max_queued: int | None = None) -> CreatedKey:
        check_amount("credits", credits)
        check_limit("rate_limit", rate_limit)
        check_limit("max_concurrent", max_concurrent)
        check_limit("max_queued", max_queued)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(6)
        now = self.clock()
        with transaction(self.pool) as conn:
            conn.execute(
                "INSERT INTO api_keys (id, key_hash, prefix, name, scopes, rate_limit, max_concurrent,"
                " max_queued, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (key_id, hash_secret(secret), secret[:7], name, Jsonb(list(scopes)) if scopes else None,
                 rate_limit, max_concurrent, max_queued, now))
            grant(conn, key_id, to_micro(credits), now)
        return CreatedKey(key=self.get(key_id), secret=secret)

    def authenticate(self, secret: str | None) -> ApiKey:
        if not secret:
            raise Unauthorized("missing API key: send it in the x-api-key header")
        row = query_one(self.pool, "SELECT * FROM api_keys WHERE key_hash = %s", (hash_secret(secret),))
        if row is None:
            raise Unauthorized("invalid API key")
        if row["revoked_at"] is not None:
            raise Unauthorized("this API key has been revoked")
        return row_to_key(row)

    def get(self, key_id: str) -> ApiKey:
        row = query_one(self.pool, "SELECT * FROM api_keys WHERE id = %s OR prefix = %s"
                                   " ORDER BY (id = %s) DESC, created_at LIMIT 1", (key_id, key_id, key_id))
        if row is None:
            raise NotFound(f"no API key {key_id!r}")
        return row_to_key(row)

    def balance(self, key_id: str) -> float:
        return self.get(key_id).balance

    def list(self) -> list[ApiKey]:
        return [row_to_key(r) for r in query(self.pool, "SELECT * FROM api_keys ORDER BY created_at, id")]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke the key and fail its queued and running jobs (credits released): a leaked
        key must not leave work behind that nobody can cancel."""
        key = self.get(key_id)
        now = self.clock()
        with transaction(self.pool) as conn:
            lock_key(conn, key.id)
            conn.execute("UPDATE api_keys SET revoked_at = %s WHERE id = %s AND revoked_at IS NULL", (now, key.id))
            active = conn.execute("SELECT id FROM jobs WHERE key_id = %s AND status = ANY(%s) ORDER BY id",
                                  (key.id, ACTIVE)).fetchall()
            for row in active:
                fail_in(conn, row["id"], REVOKED, now)
        return self.get(key.id)

    def credit(self, key_id: str, credits: float) -> ApiKey:
        check_amount("credits", credits, allow_negative=True)
        key = self.get(key_id)
        with transaction(self.pool) as conn:
            lock_key(conn, key.id)
            grant(conn, key.id, to_micro(credits), self.clock())
        return self.get(key.id)

    # -- credentials -------------------------------------------------------------------------

    def _set(self, key_id: str, assignments: str, values: tuple[str | None, ...]) -> ApiKey:
        key = self.get(key_id)
        with transaction(self.pool) as conn:
            conn.execute(f"UPDATE api_keys SET {assignments} WHERE id = %s", (*values, key.id))
        return self.get(key.id)

    def set_webhook_url(self, key_id: str, url: str | None) -> ApiKey:
        return self._set(key_id, "webhook_url = %s", (url,))

    def set_webhook_secret(self, key_id: str, sealed: str) -> ApiKey:
        return self._set(key_id, "webhook_secret = %s", (sealed,))

    def webhook_of(self, key_id: str) -> KeyWebhook:
        row = query_one(self.pool, "SELECT webhook_url, webhook_secret FROM api_keys WHERE id = %s", (key_id,))
        if row is None:
            return KeyWebhook(None, None)
        return KeyWebhook(row["webhook_url"], row["webhook_secret"])

    def set_access_key(self, key_id: str, access_key: str, sealed_secret: str) -> ApiKey:
        return self._set(key_id, "access_key = %s, access_secret = %s", (access_key, sealed_secret))

    def by_access_key(self, access_key: str) -> tuple[ApiKey, str] | None:
        row = query_one(self.pool, "SELECT * FROM api_keys WHERE access_key = %s", (access_key,))
        if row is None or row["access_secret"] is None:
            return None
        return row_to_key(row), str(row["access_secret"])
