"""PostgreSQL under the SQL store: a pool of connections that many processes share.

Rows a transaction reads to change are locked (``FOR UPDATE``); claims take rows nobody holds
(``FOR UPDATE ... SKIP LOCKED``), so processes claiming at once never wait on each other; a
submit holds the queue lock (a transaction advisory lock) from counting the queue to its
commit; every change is announced with ``NOTIFY`` at commit. A deadlock or serialization
failure is retried (the transaction rolled back whole); an unreachable or restarting server
is :class:`~takeone.core.errors.StoreUnavailable`, and the pool reconnects by itself.

Example::

    driver = PostgresDriver(open_pool(url), url)
    store = SqlStore(driver, clock=time.time)
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg.rows import DictRow
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
from takeone.backends.sql.driver import Tx
from takeone.core.errors import StoreUnavailable

T = TypeVar("T")
ROLLBACK_RETRIES = 3


@functools.lru_cache(maxsize=512)
def placeholders(sql: str) -> str:
    """The store's ``?`` placeholders as psycopg's ``%s`` (a literal ``%`` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


class PostgresTx:
    """Statements on one pooled connection."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self.conn.execute(placeholders(sql), params).rowcount

    def one(self, sql: str, params: Sequence[Any] = ()) -> DictRow | None:
        return self.conn.execute(placeholders(sql), params).fetchone()

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[DictRow]:
        return self.conn.execute(placeholders(sql), params).fetchall()


class PostgresDriver:
    """The :class:`~takeone.backends.sql.driver.Driver` of one PostgreSQL database."""

    row_lock = " FOR UPDATE"

    def __init__(self, pool: ConnectionPool[Conn], url: str) -> None:
        self.pool = pool
        self.where = describe(url)

    def skip_locked(self, alias: str) -> str:
        return f" FOR UPDATE OF {alias} SKIP LOCKED"

    def index_hint(self, index: str) -> str:
        return ""

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with transaction(self.pool) as conn:
            yield PostgresTx(conn)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self.pool.connection() as conn:
            yield PostgresTx(conn)

    def to_json(self, value: Any) -> Any:
        return Jsonb(value)

    def from_json(self, value: Any) -> Any:
        return value  # JSONB arrives decoded

    def lock_queue(self, tx: Tx) -> None:
        tx.execute("SELECT pg_advisory_xact_lock(?)", (QUEUE_LOCK,))

    def notify(self, tx: Tx, job_id: str, status: str) -> None:
        tx.execute("SELECT pg_notify(?, ?)", (NOTIFY_CHANNEL, f"{job_id} {status}"))

    def guard(self, call: Callable[[], T]) -> T:
        try:
            return self._retrying(call)
        except UNAVAILABLE as exc:  # refused, restarting, shut down, pool timeout
            raise StoreUnavailable(f"the job store (PostgreSQL at {self.where}) is unavailable:"
                                   f" {first_line(exc)}") from exc

    @staticmethod
    def _retrying(call: Callable[[], T]) -> T:
        for attempt in range(ROLLBACK_RETRIES):
            try:
                return call()
            except psycopg.errors.TransactionRollback:  # deadlock or serialization failure: all undone
                if attempt == ROLLBACK_RETRIES - 1:
                    raise
                time.sleep(0.01 * (attempt + 1))
        raise AssertionError("unreachable")

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
