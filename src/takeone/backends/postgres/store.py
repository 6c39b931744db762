"""The cluster store: jobs, keys, the ledger, rate counters and the outbox in PostgreSQL, async.

The rules are :class:`~takeone.backends.sql.store.SqlStore`'s, the same as the embedded
store's, for any number of API replicas and dispatchers sharing one database; this module
upgrades the schema, opens the pool and adds the change feed (LISTEN/NOTIFY). Each call runs
on a pooled connection in a worker thread (usable from any event loop, and from sync code
through ``asyncio.run``); the pool drops dead connections and reconnects by itself, so the
same store object works again once the server is back.

Example::

    store = PostgresStore.open("postgresql://takeone@db:5432/takeone")
    store.add_listener(lambda job_id, status: print(job_id, status))
    job = await store.submit(job, SubmitLimits(max_concurrent=None, max_queue=100))
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psycopg

from takeone.backends.postgres.db import POOL_TIMEOUT_S, describe, first_line, open_pool, upgrade
from takeone.backends.postgres.driver import PostgresDriver
from takeone.backends.postgres.listener import Callback, JobListener
from takeone.backends.sql.store import SqlStore
from takeone.backends.threaded import ThreadedStore
from takeone.core.errors import StoreUnavailable

__all__ = ["PostgresStore", "upgrade"]


class PostgresStore(ThreadedStore):
    def __init__(self, sync: SqlStore, url: str) -> None:
        super().__init__(sync)
        self.url = url
        self.listener = JobListener(url)
        self._closed = False

    @classmethod
    def open(cls, url: str, clock: Callable[[], float] = time.time, check: bool = False,
             min_size: int = 1, max_size: int = 8, pool_timeout_s: float = POOL_TIMEOUT_S) -> PostgresStore:
        """Connect, create or upgrade the schema, and open the pool; ``check`` also makes one
        tiny write, so a read-only server (a standby) is refused at start. A call waits at most
        ``pool_timeout_s`` for a connection before it is :class:`StoreUnavailable`."""
        upgrade(url)
        try:
            pool = open_pool(url, min_size, max_size, pool_timeout_s)
        except (psycopg.Error, OSError) as exc:
            raise StoreUnavailable(f"cannot reach PostgreSQL at {describe(url)}: {first_line(exc)}") from exc
        store = cls(SqlStore(PostgresDriver(pool, url), clock), url)
        if check:
            try:
                store.sync.ping()
            except StoreUnavailable as exc:
                store.close()
                raise StoreUnavailable(f"PostgreSQL at {describe(url)} cannot take writes:"
                                       f" {first_line(exc.__cause__ or exc)}") from exc
        return store

    def add_listener(self, callback: Callback) -> None:
        """Call ``callback(job_id, status)`` (from a background thread) for every submit and
        status change made by any process on this database."""
        self.listener.add(callback)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.listener.close()
        super().close()
