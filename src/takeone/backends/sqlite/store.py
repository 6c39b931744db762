"""The embedded store: jobs, keys, the ledger, rate counters and the outbox on one SQLite
file (WAL), async.

The rules are :class:`~takeone.backends.sql.store.SqlStore`'s; this module opens the file
(creating or upgrading its schema) and hands it to the generated async face.

Example::

    store = SqliteStore.open(Path("data/takeone.db"))
    job = await store.submit(job, SubmitLimits(max_concurrent=None, max_queue=100))
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from takeone.backends.sql.store import SqlStore
from takeone.backends.sqlite.db import BUSY_TIMEOUT_S
from takeone.backends.sqlite.driver import SqliteDriver
from takeone.backends.threaded import ThreadedStore
from takeone.core.errors import StoreUnavailable


class SqliteStore(ThreadedStore):
    @classmethod
    def open(cls, path: Path, clock: Callable[[], float] = time.time,
             busy_timeout_s: float = BUSY_TIMEOUT_S, check: bool = False) -> SqliteStore:
        """Open (and create or upgrade) the database; ``check`` also reads every page first,
        so a damaged file is refused at start rather than failing requests later."""
        try:
            db = SqliteDriver(path, busy_timeout_s)
            problem = db.check_integrity() if check else None
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailable(f"cannot open the database {path.name}: {exc}") from exc
        if problem is not None:
            db.close()
            raise StoreUnavailable(f"the database {path} is damaged ({problem}); restore it from a"
                                   " backup or move it away to start with an empty one")
        return cls(SqlStore(db, clock))
