"""What one database brings to the SQL store: the few things SQLite and PostgreSQL do differently.

:class:`~takeone.backends.sql.store.SqlStore` holds every rule (status changes, leases, the
ledger, limits, idempotency, the outbox) once, in SQL both databases run, written with ``?``
placeholders. A :class:`Driver` supplies the rest; a new database subclasses it and fills in:

- ``begin()`` and ``connection()``: a DB-API connection inside one write transaction, and one
  for reads;
- ``failure(exc)``: what a failure that says the database cannot answer (``unavailable``)
  reads like; ``retryable``: failures after which the whole transaction is run again;
- ``probe(now)``: one tiny committed write under a short timeout; ``close()``;
- where it differs from the defaults: ``placeholder``, ``row_lock`` and ``skip_locked_sql``
  (how the rows a transaction changes are locked), ``index_hint_sql``, ``to_json`` and
  ``from_json`` (JSON columns), ``lock_queue`` (submits take turns counting the queue),
  ``notify`` (tell listening processes of a change at commit).

Example::

    with driver.write() as tx:
        row = tx.one(f"SELECT * FROM api_keys WHERE id = ?{driver.row_lock}", (key_id,))
        tx.execute("UPDATE api_keys SET name = ? WHERE id = ?", ("ci", key_id))
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import Any, ClassVar, Protocol, TypeVar

from takeone.core.errors import StoreUnavailable

T = TypeVar("T")


class Row(Protocol):
    """One result row, read by column name (``sqlite3.Row`` and psycopg's dict rows)."""

    def __getitem__(self, key: str, /) -> Any: ...


class Cursor(Protocol):
    """What the store reads of a DB-API cursor."""

    @property
    def rowcount(self) -> int: ...

    def fetchall(self) -> Sequence[Row]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any], /) -> Cursor: ...


@functools.lru_cache(maxsize=1024)
def with_placeholder(sql: str, placeholder: str) -> str:
    """``sql`` with its ``?`` placeholders written as ``placeholder`` (a literal ``%`` doubled
    for a ``%s`` driver)."""
    if placeholder == "?":
        return sql
    return sql.replace("%", "%%").replace("?", placeholder)


class Tx:
    """Statements on one connection: inside one transaction (``write``) or one read each."""

    def __init__(self, conn: Connection, placeholder: str) -> None:
        self.conn = conn
        self.placeholder = placeholder

    def _run(self, sql: str, params: Sequence[Any]) -> Cursor:
        return self.conn.execute(with_placeholder(sql, self.placeholder), params)

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        return self._run(sql, params).rowcount

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None:
        rows = self.all(sql, params)  # every row fetched: a RETURNING statement runs to its end
        return rows[0] if rows else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Row]:
        return self._run(sql, params).fetchall()


class Driver:
    """One database under the SQL store (see the module docstring for what a subclass fills in)."""

    placeholder: ClassVar[str] = "?"
    row_lock: ClassVar[str] = ""
    """Appended to a SELECT inside ``write`` to lock the rows it reads until commit (empty
    where a write transaction already holds the whole database)."""
    skip_locked_sql: ClassVar[str] = ""
    """Appended to a SELECT inside ``write`` that takes only rows no other transaction holds
    (``{alias}``: the table's alias); empty where writers take turns anyway."""
    index_hint_sql: ClassVar[str] = ""
    """Placed after a table's alias to make the planner walk ``{index}`` (empty: it knows)."""
    retryable: ClassVar[tuple[type[BaseException], ...]] = ()
    unavailable: ClassVar[tuple[type[BaseException], ...]] = ()
    retries: ClassVar[int] = 3

    def begin(self) -> AbstractContextManager[Connection]:
        """A connection inside one transaction that may write: committed when the block
        ends, rolled back when it raises."""
        raise NotImplementedError

    def connection(self) -> AbstractContextManager[Connection]:
        """A connection for reads (each statement sees the latest commit)."""
        raise NotImplementedError

    def failure(self, exc: BaseException) -> str:
        """What an ``unavailable`` failure means, for :class:`StoreUnavailable`."""
        raise NotImplementedError

    def probe(self, now: float) -> None:
        """One tiny committed write under a short timeout (StoreUnavailable when refused)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def to_json(self, value: Any) -> Any:
        """A parameter for a JSON column."""
        return value

    def from_json(self, value: Any) -> Any:
        """A JSON column's value as Python data."""
        return value

    def lock_queue(self, tx: Tx) -> None:
        """Make submits take turns from counting the queue to their commit (``max_queue``
        exact); nothing where a write transaction holds the whole database."""

    def notify(self, tx: Tx, job_id: str, status: str) -> None:
        """Tell every listening process, at commit, that ``job_id`` is now ``status``
        (nothing where no process listens: waiters poll)."""

    # -- what the store calls, made of the above ----------------------------------------------

    @contextmanager
    def write(self) -> Iterator[Tx]:
        with self.begin() as conn:
            yield Tx(conn, self.placeholder)

    @contextmanager
    def read(self) -> Iterator[Tx]:
        with self.connection() as conn:
            yield Tx(conn, self.placeholder)

    def skip_locked(self, alias: str) -> str:
        return self.skip_locked_sql.format(alias=alias)

    def index_hint(self, index: str) -> str:
        return self.index_hint_sql.format(index=index)

    def guard(self, call: Callable[[], T]) -> T:
        """Run ``call``: again after a ``retryable`` failure (all of it was rolled back), and
        :class:`StoreUnavailable` for an ``unavailable`` one."""
        try:
            return self._retrying(call)
        except self.unavailable as exc:
            raise StoreUnavailable(self.failure(exc)) from exc

    def _retrying(self, call: Callable[[], T]) -> T:
        for attempt in range(1, self.retries):
            try:
                return call()
            except self.retryable:
                time.sleep(0.01 * attempt)
        return call()


DRIVER_PARTS = ("begin", "connection", "failure", "probe", "close", "placeholder", "row_lock",
                "skip_locked_sql", "index_hint_sql", "retryable", "retries", "unavailable", "to_json", "from_json",
                "lock_queue", "notify")
"""What a database's :class:`Driver` may define (the README counts them)."""
REQUIRED_DRIVER_PARTS = DRIVER_PARTS[:5]
"""What every database's :class:`Driver` must define (the rest have defaults)."""
