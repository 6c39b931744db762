"""SQLite under the SQL store: one file, writers taking turns (``BEGIN IMMEDIATE``).

A write transaction holds the whole database, so nothing needs locking row by row, claims
need no ``SKIP LOCKED`` and submits no queue lock. JSON columns are text. Nothing listens
for changes (waiters poll). SQLite's own failures (locked past the busy timeout, a full
disk, a corrupt file) become :class:`~takeone.core.errors.StoreUnavailable`.

Example::

    store = SqlStore(SqliteDriver(Path("data/takeone.db")), clock=time.time)
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from takeone.backends.sql.driver import Tx
from takeone.backends.sqlite.db import Database
from takeone.core.errors import StoreUnavailable

T = TypeVar("T")


class SqliteTx:
    """Statements on one SQLite connection."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(sql, params).rowcount

    def one(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Row | None:
        rows = self.all(sql, params)  # every row fetched: a RETURNING statement runs to its end
        return rows[0] if rows else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return self.conn.execute(sql, params).fetchall()


class SqliteDriver(Database):
    """The :class:`~takeone.backends.sql.driver.Driver` of one SQLite file."""

    row_lock = ""

    def skip_locked(self, alias: str) -> str:
        return ""

    def index_hint(self, index: str) -> str:
        # Without statistics the planner would take another index and sort every match.
        return f" INDEXED BY {index}"

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self.transaction() as conn:
            yield SqliteTx(conn)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self.reading() as conn:
            yield SqliteTx(conn)

    def to_json(self, value: Any) -> Any:
        return json.dumps(value)

    def from_json(self, value: Any) -> Any:
        return None if value is None else json.loads(value)

    def lock_queue(self, tx: Tx) -> None:
        """Nothing: the write transaction already holds the whole database."""

    def notify(self, tx: Tx, job_id: str, status: str) -> None:
        """Nothing: SQLite has no listeners (waiters and idle workers poll)."""

    def guard(self, call: Callable[[], T]) -> T:
        try:
            return call()
        except sqlite3.DatabaseError as exc:  # OperationalError: locked, full, I/O; corrupt
            raise StoreUnavailable(f"the job store is unavailable: {exc}") from exc
