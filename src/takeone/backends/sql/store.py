"""One SQL store: every rule of the queue, the accounts and the outbox, over a driver.

:class:`SqlStore` is synchronous and implements each method of the
:class:`~takeone.core.store.Store` protocol under the same name and parameters;
:class:`~takeone.backends.threaded.ThreadedStore` makes every one of them async (run in a
thread, the driver's failures mapped). A new store method is written twice: in the
protocol, and here (in the part for its role).

Example::

    store = SqlStore(SqliteDriver(Path("data/takeone.db")), clock=time.time)
    created = store.create(credits=10.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable

from takeone.backends.sql.accounts import SqlAccounts
from takeone.backends.sql.driver import Driver
from takeone.backends.sql.outbox import SqlOutbox
from takeone.backends.sql.queue import SqlQueue
from takeone.backends.sql.reads import SqlReads


class SqlStore(SqlQueue, SqlReads, SqlAccounts, SqlOutbox):
    """The rules, once; the database's differences are ``db``'s."""

    def __init__(self, db: Driver, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock

    def ping(self) -> None:
        """A tiny write: StoreUnavailable when the store cannot take writes."""
        self.db.probe(self.clock())

    def close(self) -> None:
        self.db.close()
