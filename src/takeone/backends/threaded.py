"""The async face shared by the SQL stores: each call runs their synchronous code in a thread.

SQLite and PostgreSQL keep their own synchronous parts (``jobs``, ``keys``, ``outbox``,
``credentials``, typed by the protocols below) and their own :meth:`ThreadedStore._run`,
which maps the driver's failures to :class:`~takeone.core.errors.StoreUnavailable`; what
turns the :class:`~takeone.core.store.Store` protocol into calls on those parts is written
once, here.

Example::

    class SqliteStore(ThreadedStore):
        async def _run(self, fn, *args, **kwargs):
            return await asyncio.to_thread(fn, *args, **kwargs)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, Protocol, TypeVar

from takeone.core.accounts import ApiKey, CreatedKey
from takeone.core.credentials import KeyWebhook
from takeone.core.jobs import EXPIRY_PAGE, BatchKey, Job, SubmitLimits, WorkerStatus
from takeone.core.webhooks import Delivery

P = ParamSpec("P")
T = TypeVar("T")


class SyncJobs(Protocol):
    def submit(self, job: Job, limits: SubmitLimits, idempotency_key: str | None = None) -> Job: ...
    def get(self, job_id: str) -> Job | None: ...
    def job_exists(self, job_id: str) -> bool: ...
    def claim(self, owner: str, lease_s: float) -> Job | None: ...
    def claim_batch(self, owner: str, lease_s: float, limit: int, key: BatchKey) -> list[Job]: ...
    def renew(self, job_id: str, owner: str, lease_s: float, progress: float | None = None) -> bool: ...
    def complete(self, job_id: str, output: str, metrics: dict[str, Any]) -> Job | None: ...
    def fail(self, job_id: str, error: str) -> Job | None: ...
    def requeue(self, job_id: str, max_attempts: int, error: str) -> Job | None: ...
    def expire_leases(self, max_attempts: int, is_dead: Callable[[str], bool],
                      keep: frozenset[str] = frozenset()) -> list[Job]: ...
    def fail_lost_callers(self, is_dead: Callable[[str], bool], reason: str) -> list[Job]: ...
    def queue_position(self, job_id: str) -> int | None: ...
    def queued_ids(self) -> list[str]: ...
    def counts(self) -> dict[str, int]: ...
    def recent_for_key(self, key_id: str, limit: int) -> list[Job]: ...
    def jobs_for_key(self, key_id: str, dialect: str, limit: int, offset: int = 0, after: str | None = None,
                     ascending: bool = False, route: str | None = None) -> list[Job]: ...
    def find_idempotent(self, key_id: str, idempotency_key: str) -> Job | None: ...
    def queue_counts(self, key_id: str) -> tuple[int, int]: ...
    def find_external(self, key_id: str, dialect: str, external_id: str) -> Job | None: ...
    def expired(self, before: float, limit: int) -> list[Job]: ...
    def delete(self, job_id: str) -> None: ...
    def report_worker(self, status: WorkerStatus) -> None: ...
    def workers(self) -> list[WorkerStatus]: ...


class SyncKeys(Protocol):
    def create(self, credits: float, scopes: Sequence[str] | None = None, rate_limit: int | None = None,
               max_concurrent: int | None = None, name: str = "", max_queued: int | None = None) -> CreatedKey: ...
    def authenticate(self, secret: str | None) -> ApiKey: ...
    def get(self, key_id: str) -> ApiKey: ...
    def list(self) -> list[ApiKey]: ...
    def revoke(self, key_id: str) -> ApiKey: ...
    def balance(self, key_id: str) -> float: ...
    def credit(self, key_id: str, credits: float) -> ApiKey: ...


class SyncOutbox(Protocol):
    def claim(self, owner: str, lease_s: float, limit: int) -> list[Delivery]: ...
    def done(self, delivery_id: int, outcome: str) -> None: ...
    def retry(self, delivery_id: int, at: float, error: str) -> None: ...
    def defer(self, delivery_id: int, at: float) -> None: ...
    def next_at(self) -> float | None: ...


class SyncCredentials(Protocol):
    def set_webhook_url(self, key_id: str, url: str | None) -> ApiKey: ...
    def set_webhook_secret(self, key_id: str, sealed: str) -> ApiKey: ...
    def webhook_of(self, key_id: str) -> KeyWebhook: ...
    def set_access_key(self, key_id: str, access_key: str, sealed_secret: str) -> ApiKey: ...
    def by_access_key(self, access_key: str) -> tuple[ApiKey, str] | None: ...


class ThreadedStore:
    """The :class:`~takeone.core.store.Store` methods, each one ``_run`` of a sync part."""

    jobs: SyncJobs
    keys: SyncKeys
    outbox: SyncOutbox
    credentials: SyncCredentials

    async def _run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        raise NotImplementedError

    def _hit(self, key_id: str, per_minute: int) -> None:
        """Count one request under the store's own locking; RateLimited when over."""
        raise NotImplementedError

    def _pin(self, key: str, value: str) -> str:
        """Insert ``key`` into the store's meta table unless present; the value it holds."""
        raise NotImplementedError

    async def pin_secret(self, fingerprint: str) -> str:
        return await self._run(self._pin, "secret_fingerprint", fingerprint)

    # -- RateCounter -------------------------------------------------------------------------

    async def hit(self, key_id: str, per_minute: int | None) -> None:
        if per_minute is not None:
            await self._run(self._hit, key_id, per_minute)

    # -- JobStore ----------------------------------------------------------------------------

    async def submit(self, job: Job, limits: SubmitLimits, idempotency_key: str | None = None) -> Job:
        return await self._run(self.jobs.submit, job, limits, idempotency_key)

    async def get(self, job_id: str) -> Job | None:
        return await self._run(self.jobs.get, job_id)

    async def job_exists(self, job_id: str) -> bool:
        return await self._run(self.jobs.job_exists, job_id)

    async def claim(self, owner: str, lease_s: float) -> Job | None:
        return await self._run(self.jobs.claim, owner, lease_s)

    async def claim_batch(self, owner: str, lease_s: float, limit: int, key: BatchKey) -> list[Job]:
        return await self._run(self.jobs.claim_batch, owner, lease_s, limit, key)

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

    async def counts(self) -> dict[str, int]:
        return await self._run(self.jobs.counts)

    async def recent_for_key(self, key_id: str, limit: int) -> list[Job]:
        return await self._run(self.jobs.recent_for_key, key_id, limit)

    async def jobs_for_key(self, key_id: str, dialect: str, limit: int, offset: int = 0,
                           after: str | None = None, ascending: bool = False,
                           route: str | None = None) -> list[Job]:
        return await self._run(self.jobs.jobs_for_key, key_id, dialect, limit, offset, after, ascending, route)

    async def queue_counts(self, key_id: str) -> tuple[int, int]:
        return await self._run(self.jobs.queue_counts, key_id)

    async def find_idempotent(self, key_id: str, idempotency_key: str) -> Job | None:
        return await self._run(self.jobs.find_idempotent, key_id, idempotency_key)

    async def find_external(self, key_id: str, dialect: str, external_id: str) -> Job | None:
        return await self._run(self.jobs.find_external, key_id, dialect, external_id)

    async def expired(self, before: float, limit: int = EXPIRY_PAGE) -> list[Job]:
        return await self._run(self.jobs.expired, before, limit)

    async def delete(self, job_id: str) -> None:
        await self._run(self.jobs.delete, job_id)

    async def report_worker(self, status: WorkerStatus) -> None:
        await self._run(self.jobs.report_worker, status)

    async def workers(self) -> list[WorkerStatus]:
        return await self._run(self.jobs.workers)

    # -- KeyStore and Ledger -----------------------------------------------------------------

    async def create(self, credits: float, scopes: Sequence[str] | None = None,
                     rate_limit: int | None = None, max_concurrent: int | None = None,
                     name: str = "", max_queued: int | None = None) -> CreatedKey:
        return await self._run(self.keys.create, credits, scopes, rate_limit, max_concurrent, name, max_queued)

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

    async def delivery_defer(self, delivery_id: int, at: float) -> None:
        await self._run(self.outbox.defer, delivery_id, at)

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
