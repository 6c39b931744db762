"""Per-key webhook settings and access-key pairs in SQLite (see :mod:`takeone.core.credentials`).

Secrets arrive here already sealed; this module stores and returns opaque strings.

Example::

    creds = SqliteCredentials(db, SqliteKeys(db, time.time))
    creds.set_webhook_url("key_1a2b", "https://hooks.example.com/takeone")
"""

from __future__ import annotations

from takeone.backends.sqlite.db import Database
from takeone.backends.sqlite.keys import SqliteKeys
from takeone.core.accounts import ApiKey
from takeone.core.credentials import KeyWebhook


class SqliteCredentials:
    def __init__(self, db: Database, keys: SqliteKeys) -> None:
        self.db = db
        self.keys = keys

    def _set(self, key_id: str, assignments: str, values: tuple[str | None, ...]) -> ApiKey:
        key = self.keys.get(key_id)
        with self.db.transaction() as conn:
            conn.execute(f"UPDATE api_keys SET {assignments} WHERE id = ?", (*values, key.id))
        return self.keys.get(key.id)

    def set_webhook_url(self, key_id: str, url: str | None) -> ApiKey:
        return self._set(key_id, "webhook_url = ?", (url,))

    def set_webhook_secret(self, key_id: str, sealed: str) -> ApiKey:
        return self._set(key_id, "webhook_secret = ?", (sealed,))

    def webhook_of(self, key_id: str) -> KeyWebhook:
        row = self.db.query_one("SELECT webhook_url, webhook_secret FROM api_keys WHERE id = ?", (key_id,))
        if row is None:
            return KeyWebhook(None, None)
        return KeyWebhook(row["webhook_url"], row["webhook_secret"])

    def set_access_key(self, key_id: str, access_key: str, sealed_secret: str) -> ApiKey:
        return self._set(key_id, "access_key = ?, access_secret = ?", (access_key, sealed_secret))

    def by_access_key(self, access_key: str) -> tuple[ApiKey, str] | None:
        row = self.db.query_one("SELECT id, access_secret FROM api_keys WHERE access_key = ?",
                                (access_key,))
        if row is None or row["access_secret"] is None:
            return None
        return self.keys.get(row["id"]), str(row["access_secret"])
