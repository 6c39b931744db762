"""What one database brings to the SQL store: the few things SQLite and PostgreSQL do differently.

:class:`~takeone.backends.sql.store.SqlStore` holds every rule (status changes, leases, the
ledger, limits, idempotency, the outbox) once, in SQL both databases run, written with ``?``
placeholders. A :class:`Driver` supplies the rest: its connections (a transaction that may
write, a read), how it locks the rows a transaction reads, how JSON columns travel, the
queue's lock, notifications, what a planner needs told, and how its failures read.

Example::

    with driver.write() as tx:
        row = tx.one(f"SELECT * FROM api_keys WHERE id = ?{driver.row_lock}", (key_id,))
        tx.execute("UPDATE api_keys SET name = ? WHERE id = ?", ("ci", key_id))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Row(Protocol):
    """One result row, read by column name (``sqlite3.Row`` and psycopg's dict rows)."""

    def __getitem__(self, key: str, /) -> Any: ...


class Tx(Protocol):
    """Statements on one connection: inside one transaction (``write``) or one read each."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""

    def one(self, sql: str, params: Sequence[Any] = ()) -> Row | None: ...

    def all(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Row]: ...


class Driver(Protocol):
    """One database under the SQL store (see the module docstring)."""

    row_lock: str
    """Appended to a SELECT inside ``write`` to lock the rows it reads until commit
    (``" FOR UPDATE"``; empty where a write transaction already holds the whole database)."""

    def skip_locked(self, alias: str) -> str:
        """Appended to a SELECT inside ``write`` that takes rows no other transaction holds
        (``FOR UPDATE OF alias SKIP LOCKED``; empty where writers take turns anyway)."""

    def index_hint(self, index: str) -> str:
        """Placed after a table's alias to make the planner walk ``index`` (empty: it knows)."""

    def write(self) -> AbstractContextManager[Tx]:
        """One transaction that may write, committed when the block ends, rolled back on raise."""

    def read(self) -> AbstractContextManager[Tx]:
        """A connection for reads (each statement sees the latest commit)."""

    def to_json(self, value: Any) -> Any:
        """A parameter for a JSON column."""

    def from_json(self, value: Any) -> Any:
        """A JSON column's value as Python data."""

    def lock_queue(self, tx: Tx) -> None:
        """Make submits take turns from counting the queue to their commit (``max_queue`` exact)."""

    def notify(self, tx: Tx, job_id: str, status: str) -> None:
        """Tell every listening process, at commit, that ``job_id`` is now ``status``."""

    def guard(self, call: Callable[[], T]) -> T:
        """Run ``call``: retry what the database asks to retry, raise
        :class:`~takeone.core.errors.StoreUnavailable` for what says it cannot answer."""

    def probe(self, now: float) -> None:
        """One tiny committed write under a short timeout (StoreUnavailable when refused)."""

    def close(self) -> None: ...


DRIVER_MEMBERS = ("row_lock", "skip_locked", "index_hint", "write", "read", "to_json", "from_json",
                  "lock_queue", "notify", "guard", "probe", "close")
"""Everything a :class:`Driver` provides (the README counts them; a test checks the list)."""
