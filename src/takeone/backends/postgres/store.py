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
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

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
from takeone.core.accounts import RATE_WINDOW_S, ApiKey, CreatedKey
from takeone.core.credentials import KeyWebhook
from takeone.core.errors import RateLimited, StoreUnavailable
from takeone.core.jobs import Job, SubmitLimits, WorkerStatus
from takeone.core.webhooks import Delivery

P = ParamSpec("P")
T = TypeVar("T")
ROLLBACK_RETRIES = 3

__all__ = ["PostgresStore", "upgrade"]


class PostgresStore:
    def __init__(self, pool: ConnectionPool[Conn], url: str, clock: Callable[[], float] = time.time) -> None:
        self.pool = pool
        self.url = url
        self.where = describe(url)
        self.clock = clock
        self.jobs = PostgresJobs(pool, clock)
        self.keys = PostgresKeys(pool, clock)
        self.outbox = PostgresOutbox(pool, clock)
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

    async def jobs_for_key(self, key_id: str, dialect: str, limit: int, offset: int = 0,
                           after: str | None = None, ascending: bool = False,
                           route: str | None = None) -> list[Job]:
        return await self._run(self.jobs.jobs_for_key, key_id, dialect, limit, offset, after, ascending, route)

    async def find_external(self, key_id: str, dialect: str, external_id: str) -> Job | None:
        return await self._run(self.jobs.find_external, key_id, dialect, external_id)

    async def expired(self, before: float) -> list[Job]:
        return await self._run(self.jobs.expired, before)

    async def delete(self, job_id: str) -> None:
        await self._run(self.jobs.delete, job_id)

    async def report_worker(self, status: WorkerStatus) -> None:
        await self._run(self.jobs.report_worker, status)

    async def workers(self) -> list[WorkerStatus]:
        return await self._run(self.jobs.workers)

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
        return await self._run(self.keys.set_webhook_url, key_id, url)

    async def set_webhook_secret(self, key_id: str, sealed: str) -> ApiKey:
        return await self._run(self.keys.set_webhook_secret, key_id, sealed)

    async def webhook_of(self, key_id: str) -> KeyWebhook:
        return await self._run(self.keys.webhook_of, key_id)

    async def set_access_key(self, key_id: str, access_key: str, sealed_secret: str) -> ApiKey:
        return await self._run(self.keys.set_access_key, key_id, access_key, sealed_secret)

    async def by_access_key(self, access_key: str) -> tuple[ApiKey, str] | None:
        return await self._run(self.keys.by_access_key, access_key)

    # -- RateCounter -------------------------------------------------------------------------

    async def hit(self, key_id: str, per_minute: int | None) -> None:
        if per_minute is not None:
            await self._run(self._hit, key_id, per_minute)

    def _hit(self, key_id: str, per_minute: int) -> None:
        """Counted under the key's row lock, so replicas hitting at once take turns."""
        now = self.clock()
        with transaction(self.pool) as conn:
            lock_key(conn, key_id)
            conn.execute("DELETE FROM rate_hits WHERE key_id = %s AND at <= %s", (key_id, now - RATE_WINDOW_S))
            rows = conn.execute("SELECT at FROM rate_hits WHERE key_id = %s ORDER BY at LIMIT %s",
                                (key_id, per_minute)).fetchall()
            if len(rows) >= per_minute:
                retry = max(1, math.ceil(rows[0]["at"] + RATE_WINDOW_S - now))
                raise RateLimited(
                    f"rate limit exceeded: this key may make {per_minute} generation requests"
                    f" per minute; retry in {retry} s", retry_after=retry)
            conn.execute("INSERT INTO rate_hits (key_id, at) VALUES (%s, %s)", (key_id, now))
