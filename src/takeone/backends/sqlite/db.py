"""The embedded SQLite database (WAL) that holds keys, the credit ledger and jobs.

One :class:`Database` per process. SQLite serialises writers; every multi-row change runs in
one ``BEGIN IMMEDIATE`` transaction (:meth:`Database.transaction`) so that reserving credits
and persisting a job are atomic. The SQL is plain and portable so that a Postgres store can
implement the same interfaces later.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    scopes TEXT,
    rate_limit INTEGER,
    max_concurrent INTEGER,
    balance INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id TEXT NOT NULL,
    job_id TEXT,
    kind TEXT NOT NULL,
    amount INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_key ON ledger(key_id);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    request TEXT NOT NULL,
    price INTEGER NOT NULL,
    charge TEXT NOT NULL,
    status TEXT NOT NULL,
    blocking INTEGER NOT NULL DEFAULT 0,
    progress REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    output TEXT,
    metrics TEXT NOT NULL DEFAULT '{}',
    idempotency_key TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created_at);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(key_id, status);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idem ON jobs(key_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
"""


class Database:
    """A thread-safe handle on one SQLite file.

    Example::

        db = Database(Path("data/takeone.backends.sqlite.db"))
        with db.transaction() as conn:
            conn.execute("SELECT 1")
    """

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            path, check_same_thread=False, isolation_level=None, timeout=30.0
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA busy_timeout=30000")
        self._conn.executescript(SCHEMA)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction; roll back if it raises."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def query_one(self, sql: str, params: tuple[Any, ...] = ()) -> sqlite3.Row | None:
        rows = self.query(sql, params)
        return rows[0] if rows else None

    def close(self) -> None:
        with self._lock:
            self._conn.close()
