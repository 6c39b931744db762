"""API keys, their credits, rate counters and sealed credentials (synchronous; the async face
runs them in a thread).

A key is created once (its secret shown only then) and stored as a SHA-256 hash: keys are
256-bit random secrets, so a fast hash cannot be brute-forced, and looking a key up by its
hash means the secret is never compared byte by byte. Revoking a key fails its queued and
running jobs with their credits released; a balance never goes below zero. Webhook secrets
and access-key secrets arrive sealed (:mod:`takeone.core.credentials`) and are stored as
opaque strings.

Example::

    created = store.create(credits=10.0, scopes=["my-route"])
    key = store.authenticate(created.secret)
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence

from takeone.backends.sql import ledger
from takeone.backends.sql.driver import Driver
from takeone.backends.sql.rows import to_key
from takeone.backends.sql.status import ACTIVE, fail_in, lock_key
from takeone.core.accounts import RATE_WINDOW_S, ApiKey, CreatedKey, check_amount, check_limit, rate_limited, to_micro
from takeone.core.credentials import KeyWebhook
from takeone.core.errors import NotFound, Unauthorized

KEY_PREFIX = "tk_"
REVOKED = "cancelled: the API key was revoked"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


class SqlAccounts:
    db: Driver
    clock: Callable[[], float]

    # -- keys and the ledger -----------------------------------------------------------------

    def create(self, credits: float, scopes: Sequence[str] | None = None, rate_limit: int | None = None,
               max_concurrent: int | None = None, name: str = "", max_queued: int | None = None) -> CreatedKey:
        check_amount("credits", credits)
        check_limit("rate_limit", rate_limit)
        check_limit("max_concurrent", max_concurrent)
        check_limit("max_queued", max_queued)
        secret = KEY_PREFIX + secrets.token_urlsafe(32)
        key_id = "key_" + secrets.token_hex(6)
        now = self.clock()
        with self.db.write() as tx:
            tx.execute("INSERT INTO api_keys (id, key_hash, prefix, name, scopes, rate_limit, max_concurrent,"
                       " max_queued, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (key_id, hash_secret(secret), secret[:7], name,
                        self.db.to_json(list(scopes)) if scopes else None, rate_limit, max_concurrent,
                        max_queued, now))
            ledger.grant(tx, key_id, to_micro(credits), now)
        return CreatedKey(key=self.get_key(key_id), secret=secret)

    def authenticate(self, secret: str | None) -> ApiKey:
        if not secret:
            raise Unauthorized("missing API key: send it in the x-api-key header")
        with self.db.read() as tx:
            row = tx.one("SELECT * FROM api_keys WHERE key_hash = ?", (hash_secret(secret),))
        if row is None:
            raise Unauthorized("invalid API key")
        if row["revoked_at"] is not None:
            raise Unauthorized("this API key has been revoked")
        return to_key(row, self.db)

    def get_key(self, key_id: str) -> ApiKey:
        """By id, or by the secret's visible prefix."""
        with self.db.read() as tx:
            row = tx.one("SELECT * FROM api_keys WHERE id = ? OR prefix = ?"
                         " ORDER BY (id = ?) DESC, created_at LIMIT 1", (key_id, key_id, key_id))
        if row is None:
            raise NotFound(f"no API key {key_id!r}")
        return to_key(row, self.db)

    def balance(self, key_id: str) -> float:
        return self.get_key(key_id).balance

    def list_keys(self) -> list[ApiKey]:
        with self.db.read() as tx:
            return [to_key(r, self.db) for r in tx.all("SELECT * FROM api_keys ORDER BY created_at, id")]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke the key and fail its queued and running jobs (credits released): a leaked
        key must not leave work behind that nobody can cancel."""
        key = self.get_key(key_id)
        now = self.clock()
        with self.db.write() as tx:
            lock_key(tx, self.db, key.id)
            tx.execute("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (now, key.id))
            for row in tx.all("SELECT id FROM jobs WHERE key_id = ? AND status IN (?, ?) ORDER BY id",
                              (key.id, *ACTIVE)):
                fail_in(tx, self.db, row["id"], REVOKED, now)
        return self.get_key(key.id)

    def credit(self, key_id: str, credits: float) -> ApiKey:
        check_amount("credits", credits, allow_negative=True)
        key = self.get_key(key_id)
        with self.db.write() as tx:
            lock_key(tx, self.db, key.id)
            ledger.grant(tx, key.id, to_micro(credits), self.clock())
        return self.get_key(key.id)

    # -- rate counting -----------------------------------------------------------------------

    def hit(self, key_id: str, per_minute: int | None) -> None:
        """Counted under the key's row lock, so processes hitting at once take turns."""
        if per_minute is None:
            return
        now = self.clock()
        with self.db.write() as tx:
            lock_key(tx, self.db, key_id)
            tx.execute("DELETE FROM rate_hits WHERE key_id = ? AND at <= ?", (key_id, now - RATE_WINDOW_S))
            rows = tx.all("SELECT at FROM rate_hits WHERE key_id = ? ORDER BY at LIMIT ?", (key_id, per_minute))
            if len(rows) >= per_minute:
                raise rate_limited(per_minute, rows[0]["at"], now)
            tx.execute("INSERT INTO rate_hits (key_id, at) VALUES (?, ?)", (key_id, now))

    # -- credentials -------------------------------------------------------------------------

    def _set(self, key_id: str, assignments: str, values: tuple[str | None, ...]) -> ApiKey:
        key = self.get_key(key_id)
        with self.db.write() as tx:
            tx.execute(f"UPDATE api_keys SET {assignments} WHERE id = ?", (*values, key.id))
        return self.get_key(key.id)

    def set_webhook_url(self, key_id: str, url: str | None) -> ApiKey:
        return self._set(key_id, "webhook_url = ?", (url,))

    def set_webhook_secret(self, key_id: str, sealed: str) -> ApiKey:
        return self._set(key_id, "webhook_secret = ?", (sealed,))

    def webhook_of(self, key_id: str) -> KeyWebhook:
        with self.db.read() as tx:
            row = tx.one("SELECT webhook_url, webhook_secret FROM api_keys WHERE id = ?", (key_id,))
        return KeyWebhook(None, None) if row is None else KeyWebhook(row["webhook_url"], row["webhook_secret"])

    def set_access_key(self, key_id: str, access_key: str, sealed_secret: str) -> ApiKey:
        return self._set(key_id, "access_key = ?, access_secret = ?", (access_key, sealed_secret))

    def by_access_key(self, access_key: str) -> tuple[ApiKey, str] | None:
        with self.db.read() as tx:
            row = tx.one("SELECT * FROM api_keys WHERE access_key = ?", (access_key,))
        if row is None or row["access_secret"] is None:
            return None
        return to_key(row, self.db), str(row["access_secret"])

    def pin_secret(self, fingerprint: str) -> str:
        """Record the server secret's fingerprint if none is recorded; the recorded one."""
        with self.db.write() as tx:
            tx.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
                       ("secret_fingerprint", fingerprint))
            row = tx.one("SELECT value FROM meta WHERE key = ?", ("secret_fingerprint",))
        return str(row["value"]) if row else fingerprint
