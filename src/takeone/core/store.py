"""The whole store one process talks to: jobs, keys, the ledger and rate counters.

One backend object implements every protocol (so submitting a job and reserving its price
can share a transaction); code that needs only part of it should ask for that part.

Example::

    store: Store = SqliteStore.open(Path("data/takeone.db"))
"""

from __future__ import annotations

from typing import Protocol

from takeone.core.accounts import KeyStore, Ledger, RateCounter
from takeone.core.credentials import KeyCredentials
from takeone.core.jobs import JobStore
from takeone.core.webhooks import Outbox


class Store(JobStore, KeyStore, Ledger, RateCounter, Outbox, KeyCredentials, Protocol):
    def close(self) -> None: ...

    async def pin_secret(self, fingerprint: str) -> str:
        """Record the server secret's fingerprint if none is recorded; return the recorded one
        (every process sharing the store must hold the same secret, or sealed credentials
        made by one do not open in another)."""
