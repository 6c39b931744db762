"""The whole store one process talks to, and the roles it is made of.

A backend implements every role below in one object (so submitting a job and reserving its
price can share a transaction); code that needs only part of it should ask for that part.

- queue writes, ``core.jobs.JobQueue`` (9 methods): submit, claims, leases, endings
- queue reads, ``core.jobs.JobReads`` (11): status, position, history, counts, idempotency
- retention, ``core.jobs.Retention`` (2): the sweeper's pages of finished jobs, delete
- presence, ``core.jobs.Presence`` (3): worker reports, the store's own health
- keys, ``core.accounts.KeyStore`` (5); ledger, ``core.accounts.Ledger`` (2); rate
  counting, ``core.accounts.RateCounter`` (1)
- webhook outbox, ``core.webhooks.Outbox`` (5)
- key credentials, ``core.credentials.KeyCredentials`` (5); the server secret's pin,
  ``core.credentials.SecretPin`` (1)

44 async methods in all, plus ``close``. The SQL backends write each once, synchronously, in
:class:`~takeone.backends.sql.store.SqlStore` (over a small driver per database); their
async face is generated from this protocol.

Example::

    store: Store = SqliteStore.open(Path("data/takeone.db"))
"""

from __future__ import annotations

from typing import Protocol

from takeone.core.accounts import KeyStore, Ledger, RateCounter
from takeone.core.credentials import KeyCredentials, SecretPin
from takeone.core.jobs import JobQueue, JobReads, JobStore, Presence, Retention
from takeone.core.webhooks import Outbox


class Store(JobStore, KeyStore, Ledger, RateCounter, Outbox, KeyCredentials, SecretPin, Protocol):
    def close(self) -> None: ...


ROLES: tuple[type, ...] = (JobQueue, JobReads, Retention, Presence, KeyStore, Ledger, RateCounter, Outbox,
                           KeyCredentials, SecretPin)
"""The roles a :class:`Store` is made of, each a protocol of its own."""
