"""The cluster store: jobs, keys, the ledger, rate counters and the outbox in PostgreSQL, async.

:class:`PostgresStore` implements :class:`~takeone.core.store.Store` with the embedded
store's semantics, for any number of API replicas and dispatchers sharing one database. Each
call runs synchronous psycopg code on a pooled connection in a worker thread (usable from
any event loop, and from sync code through ``asyncio.run``). An unreachable or restarting
server surfaces as :class:`~takeone.core.errors.StoreUnavailable`; the pool drops dead
connections and reconnects by itself, so the same store object works again once the server
is back. A deadlock or serialization failure is retried (the transaction rolled back whole).

Example::

    store = PostgresStore.open("postgresql://takeone@db:5432/takeone")
    store.add_listener(lambda job_id, status: print(job_id, status))
    job = await store.submit(job, SubmitLimits(max_concurrent=None, max_queue=100))
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import psycopg
from psycopg.errors import TransactionRollback
from psycopg_pool import ConnectionPool

from takeone.backends.postgres.db import (
    PING_TIMEOUT_S,
    POOL_TIMEOUT_S,
    UNAVAILABLE,
    Conn,
    describe,
    first_line,
    open_pool,
    transaction,
    upgrade,
)
from takeone.backends.postgres.jobs import PostgresJobs, lock_key
from takeone.backends.postgres.keys import PostgresKeys
from takeone.backends.postgres.listener import Callback, JobListener
from takeone.backends.postgres.outbox import PostgresOutbox
from takeone.backends.threaded import ThreadedStore
from takeone.core.accounts import RATE_WINDOW_S, rate_limited
from takeone.core.errors import StoreUnavailable

P = ParamSpec("P")
T = TypeVar("T")
ROLLBACK_RETRIES = 3

__all__ = ["PostgresStore", "upgrade"]


class PostgresStore(ThreadedStore):
    def __init__(self, pool: ConnectionPool[Conn], url: str, clock: Callable[[], float] = time.time) -> None:
        self.pool = pool
        self.url = url
        self.where = describe(url)
        self.clock = clock
        self.jobs = PostgresJobs(pool, clock)
        self.keys = PostgresKeys(pool, clock)
        self.outbox = PostgresOutbox(pool, clock)
        self.credentials = self.keys  # the key rows hold the webhook settings and access keys
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
        store = cls(pool, url, clock)
        if check:
            try:
                store._probe()
            except psycopg.Error as exc:
                store.close()
                raise StoreUnavailable(f"PostgreSQL at {store.where} cannot take writes: {first_line(exc)}") from exc
        return store

    @staticmethod
    def _retrying(call: Callable[[], T]) -> T:
        for attempt in range(ROLLBACK_RETRIES):
            try:
                return call()
            except TransactionRollback:  # deadlock or serialization failure: all undone
                if attempt == ROLLBACK_RETRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await asyncio.to_thread(self._retrying, functools.partial(fn, *args, **kwargs))
        except UNAVAILABLE as exc:  # refused, restarting, shut down, pool timeout
            raise StoreUnavailable(f"the job store (PostgreSQL at {self.where}) is unavailable:"
                                   f" {first_line(exc)}") from exc

    def add_listener(self, callback: Callback) -> None:
        """Call ``callback(job_id, status)`` (from a background thread) for every submit and
        status change made by any process on this database."""
        self.listener.add(callback)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.listener.close()
        self.pool.close(timeout=2.0)

    async def ping(self) -> None:
        """One tiny committed write under a short statement timeout."""
        try:
            await asyncio.to_thread(self._probe)
        except psycopg.Error as exc:  # unreachable, timed out, read-only
            raise StoreUnavailable(f"the job store (PostgreSQL at {self.where}) cannot take writes:"
                                   f" {first_line(exc)}") from exc

    def _probe(self) -> None:
        with transaction(self.pool, timeout_s=PING_TIMEOUT_S * 2) as conn:
            conn.execute(f"SET LOCAL statement_timeout = {int(PING_TIMEOUT_S * 1000)}")
            conn.execute("UPDATE meta SET value = %s WHERE key = 'ping'", (repr(self.clock()),))

    # -- RateCounter -------------------------------------------------------------------------

    def _pin(self, key: str, value: str) -> str:
        with transaction(self.pool) as conn:
            conn.execute("INSERT INTO meta (key, value) VALUES (%s, %s) ON CONFLICT (key) DO NOTHING", (key, value))
            row = conn.execute("SELECT value FROM meta WHERE key = %s", (key,)).fetchone()
        return str(row["value"]) if row else value

    def _hit(self, key_id: str, per_minute: int) -> None:
        """Counted under the key's row lock, so replicas hitting at once take turns."""
        now = self.clock()
        with transaction(self.pool) as conn:
            lock_key(conn, key_id)
            conn.execute("DELETE FROM rate_hits WHERE key_id = %s AND at <= %s", (key_id, now - RATE_WINDOW_S))
            rows = conn.execute("SELECT at FROM rate_hits WHERE key_id = %s ORDER BY at LIMIT %s",
                                (key_id, per_minute)).fetchall()
            if len(rows) >= per_minute:
                raise rate_limited(per_minute, rows[0]["at"], now)
            conn.execute("INSERT INTO rate_hits (key_id, at) VALUES (%s, %s)", (key_id, now))
