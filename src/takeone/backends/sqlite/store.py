"""The embedded store: jobs, keys, the ledger and rate counters on one SQLite file, async.

:class:`SqliteStore` implements :class:`~takeone.core.jobs.JobStore`,
:class:`~takeone.core.accounts.KeyStore`, :class:`~takeone.core.accounts.Ledger` and
:class:`~takeone.core.accounts.RateCounter`. Each call runs the synchronous SQLite code in a
worker thread, so the event loop never waits on the disk or on another process's lock, and
SQLite's own failures (locked past the busy timeout, disk full, a corrupt file) surface as
:class:`~takeone.core.errors.StoreUnavailable`.

Example::

    store = SqliteStore.open(Path("data/takeone.db"))
    job = await store.submit(job, SubmitLimits(max_concurrent=None, max_queue=100))
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec, TypeVar

from takeone.backends.sqlite.credentials import SqliteCredentials
from takeone.backends.sqlite.db import BUSY_TIMEOUT_S, Database
from takeone.backends.sqlite.jobs import SqliteJobs
from takeone.backends.sqlite.keys import SqliteKeys
from takeone.backends.sqlite.outbox import SqliteOutbox
from takeone.backends.threaded import ThreadedStore
from takeone.core.accounts import RATE_WINDOW_S, rate_limited
from takeone.core.errors import StoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")


class SqliteStore(ThreadedStore):
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self.jobs = SqliteJobs(db, clock)
        self.keys = SqliteKeys(db, clock)
        self.outbox = SqliteOutbox(db, clock)
        self.credentials = SqliteCredentials(db, self.keys)

    @classmethod
    def open(cls, path: Path, clock: Callable[[], float] = time.time,
             busy_timeout_s: float = BUSY_TIMEOUT_S, check: bool = False) -> SqliteStore:
        """Open (and create or upgrade) the database; ``check`` also reads every page first,
        so a damaged file is refused at start rather than failing requests later."""
        try:
            db = Database(path, busy_timeout_s)
            problem = db.check_integrity() if check else None
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailable(f"cannot open the database {path.name}: {exc}") from exc
        if problem is not None:
            db.close()
            raise StoreUnavailable(f"the database {path} is damaged ({problem}); restore it from a"
                                   " backup or move it away to start with an empty one")
        return cls(db, clock)

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except sqlite3.DatabaseError as exc:  # OperationalError: locked, full, I/O; corrupt
            raise StoreUnavailable(f"the job store is unavailable: {exc}") from exc

    def close(self) -> None:
        self.db.close()

    async def ping(self) -> None:
        await self._run(self.db.probe, self.clock())

    # -- RateCounter -------------------------------------------------------------------------

    def _pin(self, key: str, value: str) -> str:
        with self.db.transaction() as conn:
            conn.execute("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)", (key, value))
            return str(conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()[0])

    def _hit(self, key_id: str, per_minute: int) -> None:
        now = self.clock()
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM rate_hits WHERE at <= ?", (now - RATE_WINDOW_S,))
            rows = conn.execute("SELECT at FROM rate_hits WHERE key_id = ? ORDER BY at LIMIT ?",
                                (key_id, per_minute)).fetchall()
            if len(rows) >= per_minute:
                raise rate_limited(per_minute, rows[0]["at"], now)
            conn.execute("INSERT INTO rate_hits (key_id, at) VALUES (?, ?)", (key_id, now))
