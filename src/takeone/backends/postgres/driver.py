"""PostgreSQL under the SQL store: a pool of connections that many processes share.

The rows a transaction reads to change are locked (``FOR UPDATE``); claims take rows nobody
holds (``SKIP LOCKED``), so processes claiming at once never wait on each other; a submit
holds the queue lock (a transaction advisory lock) from counting the queue to its commit;
every change is announced with ``NOTIFY`` at commit. A deadlock or serialization failure is
retried (the transaction rolled back whole); an unreachable or restarting server is
:class:`~takeone.core.errors.StoreUnavailable`, and the pool reconnects by itself.

Example::

    store = SqlStore(PostgresDriver(open_pool(url), url), clock=time.time)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.errors import TransactionRollback
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from takeone.backends.postgres.db import (
    NOTIFY_CHANNEL,
    PING_TIMEOUT_S,
    QUEUE_LOCK,
    UNAVAILABLE,
    Conn,
    describe,
    first_line,
    transaction,
)
from takeone.backends.sql.driver import Driver, Tx
from takeone.core.errors import StoreUnavailable


class PostgresDriver(Driver):
    """The :class:`~takeone.backends.sql.driver.Driver` of one PostgreSQL database (its
    schema and migrations: :mod:`takeone.backends.postgres.db`)."""

    placeholder = "%s"
    row_lock = " FOR UPDATE"
    skip_locked_sql = " FOR UPDATE OF {alias} SKIP LOCKED"
    retryable = (TransactionRollback,)  # deadlock or serialization failure: all undone
    unavailable = UNAVAILABLE  # refused, restarting, shut down, pool timeout

    def __init__(self, pool: ConnectionPool[Conn], url: str) -> None:
        self.pool = pool
        self.where = describe(url)

    @contextmanager
    def begin(self) -> Iterator[Conn]:
        with transaction(self.pool) as conn:
            yield conn

    @contextmanager
    def connection(self) -> Iterator[Conn]:
        with self.pool.connection() as conn:
            yield conn

    def failure(self, exc: BaseException) -> str:
        return f"the job store (PostgreSQL at {self.where}) is unavailable: {first_line(exc)}"

    def to_json(self, value: object) -> Jsonb:
        return Jsonb(value)

    def lock_queue(self, tx: Tx) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(?)", (QUEUE_LOCK,))

    def notify(self, tx: Tx, job_id: str, status: str) -> None:
        tx.execute("SELECT pg_notify(?, ?)", (NOTIFY_CHANNEL, f"{job_id} {status}"))

    def probe(self, now: float) -> None:
        """One tiny committed write under a short statement timeout."""
        try:
            with transaction(self.pool, timeout_s=PING_TIMEOUT_S * 2) as conn:
                conn.execute(f"SET LOCAL statement_timeout = {int(PING_TIMEOUT_S * 1000)}")
                conn.execute("UPDATE meta SET value = %s WHERE key = 'ping'", (repr(now),))
        except psycopg.Error as exc:  # unreachable, timed out, read-only
            raise StoreUnavailable(f"the job store (PostgreSQL at {self.where}) cannot take writes:"
                                   f" {first_line(exc)}") from exc

    def close(self) -> None:
        self.pool.close(timeout=2.0)
