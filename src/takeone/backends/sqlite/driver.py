"""SQLite under the SQL store: one file, writers taking turns (``BEGIN IMMEDIATE``).

A write transaction holds the whole database, so rows need no locks of their own, claims no
``SKIP LOCKED`` and submits no queue lock; JSON columns are text; nothing listens for
changes (waiters poll). SQLite's own failures (locked past the busy timeout, a full disk, a
corrupt file) become :class:`~takeone.core.errors.StoreUnavailable`.

Example::

    store = SqlStore(SqliteDriver(Path("data/takeone.db")), clock=time.time)
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from takeone.backends.sql.driver import Driver
from takeone.backends.sqlite.db import Database


class SqliteDriver(Database, Driver):
    """The :class:`~takeone.backends.sql.driver.Driver` of one SQLite file (its connections,
    schema and migrations are :class:`Database`'s)."""

    # Without statistics the planner would take another index and sort every match.
    index_hint_sql = " INDEXED BY {index}"
    unavailable = (sqlite3.DatabaseError,)  # OperationalError: locked, full, I/O; corrupt
    retries = 1

    def failure(self, exc: BaseException) -> str:
        return f"the job store is unavailable: {exc}"

    def to_json(self, value: Any) -> Any:
        return json.dumps(value)

    def from_json(self, value: Any) -> Any:
        return None if value is None else json.loads(value)
