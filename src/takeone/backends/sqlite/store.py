"""The embedded store: jobs, keys, the ledger and rate counters on one SQLite file, async.

:class:`SqliteStore` implements :class:`~takeone.core.jobs.JobStore`,
:class:`~takeone.core.accounts.KeyStore`, :class:`~takeone.core.accounts.Ledger` and
:class:`~takeone.core.accounts.RateCounter`. Each call runs the synchronous SQLite code in a
worker thread, so the event loop never waits on the disk or on another process's lock, and
SQLite's own failures (locked past the busy timeout, disk full, a corrupt file) surface as
:class:`~takeone.core.errors.StoreUnavailable`.

Example::

    store = SqliteStore.open(Path("data/takeone.db"))
    job = await store.submit(job, SubmitLimits(max_concurrent=None, max_queue=100))
"""

from __future__ import annotations

import asyncio
import math
import sqlite3
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from takeone.backends.sqlite.credentials import SqliteCredentials
from takeone.backends.sqlite.db import BUSY_TIMEOUT_S, Database
from takeone.backends.sqlite.jobs import SqliteJobs
from takeone.backends.sqlite.keys import SqliteKeys
from takeone.backends.sqlite.outbox import SqliteOutbox
from takeone.core.accounts import RATE_WINDOW_S, ApiKey, CreatedKey
from takeone.core.credentials import KeyWebhook
from takeone.core.errors import RateLimited, StoreUnavailable
from takeone.core.jobs import Job, SubmitLimits, WorkerStatus
from takeone.core.webhooks import Delivery

P = ParamSpec("P")
T = TypeVar("T")


class SqliteStore:
    def __init__(self, db: Database, clock: Callable[[], float] = time.time) -> None:
        self.db = db
        self.clock = clock
        self.jobs = SqliteJobs(db, clock)
        self.keys = SqliteKeys(db, clock)
        self.outbox = SqliteOutbox(db, clock)
        self.credentials = SqliteCredentials(db, self.keys)

    @classmethod
    def open(cls, path: Path, clock: Callable[[], float] = time.time,
             busy_timeout_s: float = BUSY_TIMEOUT_S, check: bool = False) -> SqliteStore:
        """Open (and create or upgrade) the database; ``check`` also reads every page first,
        so a damaged file is refused at start rather than failing requests later."""
        try:
            db = Database(path, busy_timeout_s)
            problem = db.check_integrity() if check else None
        except sqlite3.DatabaseError as exc:
            raise StoreUnavailable(f"cannot open the database {path.name}: {exc}") from exc
        if problem is not None:
            db.close()
            raise StoreUnavailable(f"the database {path} is damaged ({problem}); restore it from a"
                                   " backup or move it away to start with an empty one")
        return cls(db, clock)

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await asyncio.to_thread(fn, *args, **kwargs)
        except sqlite3.DatabaseError as exc:  # OperationalError: locked, full, I/O; corrupt
            raise StoreUnavailable(f"the job store is unavailable: {exc}") from exc

    def close(self) -> None:
        self.db.close()

    # -- JobStore ----------------------------------------------------------------------------

    async def submit(self, job: Job, limits: SubmitLimits, idempotency_key: str | None = None) -> Job:
        return await self._run(self.jobs.submit, job, limits, idempotency_key)

    async def get(self, job_id: str) -> Job | None:
        return await self._run(self.jobs.get, job_id)

    async def job_exists(self, job_id: str) -> bool:
        return await self._run(self.jobs.job_exists, job_id)

    async def claim(self, owner: str, lease_s: float) -> Job | None:
        return await self._run(self.jobs.claim, owner, lease_s)

    async def renew(self, job_id: str, owner: str, lease_s: float, progress: float | None = None) -> bool:
        return await self._run(self.jobs.renew, job_id, owner, lease_s, progress)

    async def complete(self, job_id: str, output: str, metrics: dict[str, Any]) -> Job | None:
        return await self._run(self.jobs.complete, job_id, output, metrics)

    async def fail(self, job_id: str, error: str) -> Job | None:
        return await self._run(self.jobs.fail, job_id, error)

    async def requeue(self, job_id: str, max_attempts: int, error: str) -> Job | None:
        return await self._run(self.jobs.requeue, job_id, max_attempts, error)

    async def expire_leases(self, max_attempts: int, is_dead: Callable[[str], bool],
                            keep: frozenset[str] = frozenset()) -> list[Job]:
        return await self._run(self.jobs.expire_leases, max_attempts, is_dead, keep)

    async def fail_lost_callers(self, is_dead: Callable[[str], bool], reason: str) -> list[Job]:
        return await self._run(self.jobs.fail_lost_callers, is_dead, reason)

    async def queue_position(self, job_id: str) -> int | None:
        return await self._run(self.jobs.queue_position, job_id)

    async def queued_ids(self) -> list[str]:
        return await self._run(self.jobs.queued_ids)

    async def recent_for_key(self, key_id: str, limit: int) -> list[Job]:
        return await self._run(self.jobs.recent_for_key, key_id, limit)

    async def expired(self, before: float) -> list[Job]:
        return await self._run(self.jobs.expired, before)

    async def delete(self, job_id: str) -> None:
        await self._run(self.jobs.delete, job_id)

    async def report_worker(self, status: WorkerStatus) -> None:
        await self._run(self.jobs.report_worker, status)

    async def workers(self) -> list[WorkerStatus]:
        return await self._run(self.jobs.workers)

    async def ping(self) -> None:
        await self._run(self.db.probe, self.clock())

    # -- KeyStore and Ledger -----------------------------------------------------------------

    async def create(self, credits: float, scopes: Sequence[str] | None = None,
                     rate_limit: int | None = None, max_concurrent: int | None = None,
                     name: str = "") -> CreatedKey:
        return await self._run(self.keys.create, credits, scopes, rate_limit, max_concurrent, name)

    async def authenticate(self, secret: str | None) -> ApiKey:
        return await self._run(self.keys.authenticate, secret)

    async def get_key(self, key_id: str) -> ApiKey:
        return await self._run(self.keys.get, key_id)

    async def list_keys(self) -> list[ApiKey]:
        return await self._run(self.keys.list)

    async def revoke(self, key_id: str) -> ApiKey:
        return await self._run(self.keys.revoke, key_id)

    async def balance(self, key_id: str) -> float:
        return await self._run(self.keys.balance, key_id)

    async def credit(self, key_id: str, credits: float) -> ApiKey:
        return await self._run(self.keys.credit, key_id, credits)

    async def jobs_for_key(self, key_id: str, dialect: str, limit: int, offset: int = 0,
                           after: str | None = None, ascending: bool = False,
                           route: str | None = None) -> list[Job]:
        return await self._run(self.jobs.jobs_for_key, key_id, dialect, limit, offset, after,
                               ascending, route)

    async def find_external(self, key_id: str, dialect: str, external_id: str) -> Job | None:
        return await self._run(self.jobs.find_external, key_id, dialect, external_id)

    # -- Outbox ------------------------------------------------------------------------------

    async def claim_deliveries(self, owner: str, lease_s: float, limit: int) -> list[Delivery]:
        return await self._run(self.outbox.claim, owner, lease_s, limit)

    async def delivery_done(self, delivery_id: int, outcome: str) -> None:
        await self._run(self.outbox.done, delivery_id, outcome)

    async def delivery_retry(self, delivery_id: int, at: float, error: str) -> None:
        await self._run(self.outbox.retry, delivery_id, at, error)

    async def next_delivery_at(self) -> float | None:
        return await self._run(self.outbox.next_at)

    # -- KeyCredentials ----------------------------------------------------------------------

    async def set_webhook_url(self, key_id: str, url: str | None) -> ApiKey:
        return await self._run(self.credentials.set_webhook_url, key_id, url)

    async def set_webhook_secret(self, key_id: str, sealed: str) -> ApiKey:
        return await self._run(self.credentials.set_webhook_secret, key_id, sealed)

    async def webhook_of(self, key_id: str) -> KeyWebhook:
        return await self._run(self.credentials.webhook_of, key_id)

    async def set_access_key(self, key_id: str, access_key: str, sealed_secret: str) -> ApiKey:
        return await self._run(self.credentials.set_access_key, key_id, access_key, sealed_secret)

    async def by_access_key(self, access_key: str) -> tuple[ApiKey, str] | None:
        return await self._run(self.credentials.by_access_key, access_key)

    # -- RateCounter -------------------------------------------------------------------------

    async def hit(self, key_id: str, per_minute: int | None) -> None:
        if per_minute is not None:
            await self._run(self._hit, key_id, per_minute)

    def _hit(self, key_id: str, per_minute: int) -> None:
        now = self.clock()
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM rate_hits WHERE at <= ?", (now - RATE_WINDOW_S,))
            rows = conn.execute("SELECT at FROM rate_hits WHERE key_id = ? ORDER BY at LIMIT ?",
                                (key_id, per_minute)).fetchall()
            if len(rows) >= per_minute:
                retry = max(1, math.ceil(rows[0]["at"] + RATE_WINDOW_S - now))
                raise RateLimited(
                    f"rate limit exceeded: this key may make {per_minute} generation requests"
                    f" per minute; retry in {retry} s", retry_after=retry)
            conn.execute("INSERT INTO rate_hits (key_id, at) VALUES (?, ?)", (key_id, now))
