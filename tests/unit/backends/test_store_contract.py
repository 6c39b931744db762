"""One contract, two backends: every test here runs against the embedded SQLite store and the
PostgreSQL store (a real server), through the async :class:`Store` API both implement."""

from __future__ import annotations

import asyncio
import dataclasses
import math
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from takeone.backends.postgres.store import PostgresStore
from takeone.backends.sqlite.store import SqliteStore
from takeone.core.errors import (
    Conflict,
    InsufficientCredits,
    InvalidRequest,
    NotFound,
    RateLimited,
    Unauthorized,
)
from takeone.core.jobs import Job, JobStatus, SubmitLimits, WorkerStatus
from takeone.core.store import Store
from takeone.core.task import VideoTask

T = TypeVar("T")
OPEN = SubmitLimits(None, 100)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Backend:
    """A store under test, a clock it reads, and a way to open a second handle on the same data."""

    def __init__(self, store: Store, clock: Clock, reopen: Callable[[], Store]) -> None:
        self.store = store
        self.clock = clock
        self.reopen = reopen


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    clock = Clock()
    opened: list[Store] = []
    if request.param == "sqlite":
        def reopen() -> Store:
            opened.append(SqliteStore.open(tmp_path / "t.db", clock))
            return opened[-1]
    else:
        url = request.getfixturevalue("pg_url")

        def reopen() -> Store:
            opened.append(PostgresStore.open(url, clock))
            return opened[-1]
    yield Backend(reopen(), clock, reopen)
    for store in opened:
        store.close()


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def job(key_id: str, n: int, price: float = 1.0, **fields: Any) -> Job:
    return Job(id=f"j{n}", key_id=key_id, task=VideoTask(kind="t2v", prompt=f"p{n}"), price=price,
               status=JobStatus.QUEUED, created_at=1000.0 + n, **{"dialect": "segmind", **fields})


async def new_key(store: Store, credits: float = 100.0, **kw: Any) -> str:
    return (await store.create(credits, **kw)).key.id


def test_fifo_claim_queue_position_and_leases(backend: Backend) -> None:
    s = backend.store

    async def go() -> None:
        key = await new_key(s)
        for n in (2, 0, 1):
            await s.submit(job(key, n), OPEN)
        assert [await s.queue_position(f"j{n}") for n in range(3)] == [1, 2, 3]
        assert await s.queued_ids() == ["j0", "j1", "j2"]
        claimed = await s.claim("h/1/0", 30)
        assert claimed is not None and (claimed.id, claimed.attempts, claimed.worker) == ("j0", 1, "h/1/0")
        assert claimed.status is JobStatus.PROCESSING and claimed.started_at == backend.clock.now
        assert await s.queue_position("j1") == 1 and await s.queue_position("j0") is None
        assert await s.complete("j1", "x.mp4", {}) is None  # not running: refused
        assert await s.renew("j0", "h/1/0", 30, progress=0.25)
        assert not await s.renew("j0", "someone-else", 30)
        done = await s.complete("j0", "outputs/j0.mp4", {"seconds": 1.5})
        assert done is not None and (done.status, done.output, done.metrics, done.progress) == (
            JobStatus.COMPLETED, "outputs/j0.mp4", {"seconds": 1.5}, 1.0)
        assert done.worker is None and done.finished_at == backend.clock.now
        assert not await s.renew("j0", "h/1/0", 30)  # finished: the worker must stop
        assert await s.job_exists("j0") and not await s.job_exists("nope")
        assert await s.get("nope") is None
        assert await s.counts() == {"COMPLETED": 1, "QUEUED": 2}
        assert await s.pin_secret("aaa") == "aaa" and await s.pin_secret("bbb") == "aaa"  # the first stays

    run(go())


def test_requeue_until_attempts_run_out(backend: Backend) -> None:
    s = backend.store

    async def go() -> None:
        key = await new_key(s)
        await s.submit(job(key, 0), OPEN)
        await s.claim("h/1/0", 30)
        again = await s.requeue("j0", 2, "crash")
        assert again is not None and again.status is JobStatus.QUEUED and again.worker is None
        await s.claim("h/1/0", 30)
        failed = await s.requeue("j0", 2, "crashed again")
        assert failed is not None and (failed.status, failed.error) == (JobStatus.FAILED, "crashed again")
        assert await s.requeue("j0", 2, "late") is None
        assert await s.balance(key) == 100.0  # released: nothing charged

    run(go())


def test_expired_or_dead_leases_requeue_running_jobs(backend: Backend) -> None:
    s, clock = backend.store, backend.clock

    async def go() -> None:
        key = await new_key(s)
        for n in range(4):
            await s.submit(job(key, n, blocking=(n == 1), caller="api/1" if n == 1 else None), OPEN)
        await s.claim("dead/1/0", 1000)  # j0: its owner is gone
        await s.claim("live/2/0", 1000)  # j1 (blocking): never retried
        await s.claim("live/2/1", 5)  # j2: its lease runs out
        await s.claim("kept/3/0", 1)  # j3: expired, but its owner is running it right now
        clock.now += 2
        touched = await s.expire_leases(2, lambda owner: owner.startswith("dead"), keep=frozenset({"kept/3/0"}))
        assert [j.id for j in touched] == ["j0"]
        assert [(await s.get(f"j{n}")).status for n in range(4)] == [  # type: ignore[union-attr]
            JobStatus.QUEUED, JobStatus.PROCESSING, JobStatus.PROCESSING, JobStatus.PROCESSING]
        clock.now += 10
        await s.expire_leases(2, lambda owner: False, keep=frozenset({"kept/3/0"}))
        assert (await s.get("j2")).status is JobStatus.QUEUED  # type: ignore[union-attr]
        assert not await s.renew("j2", "live/2/1", 30)  # the old owner lost it: it must stop
        assert await s.renew("j1", "live/2/0", 30, progress=0.5)
        assert (await s.get("j1")).progress == 0.5  # type: ignore[union-attr]
        clock.now += 100
        await s.expire_leases(2, lambda owner: False)
        failed = await s.get("j1")
        assert failed is not None and failed.status is JobStatus.FAILED  # blocking: failed, not retried
        assert failed.error == "the worker running this job stopped answering"

    run(go())


def test_blocking_jobs_of_a_lost_caller_fail(backend: Backend) -> None:
    s = backend.store

    async def go() -> None:
        key = await new_key(s)
        await s.submit(job(key, 0, blocking=True, caller="host/99"), OPEN)
        assert await s.fail_lost_callers(lambda c: False, "gone") == []
        [failed] = await s.fail_lost_callers(lambda c: c == "host/99", "gone")
        assert (failed.status, failed.error) == (JobStatus.FAILED, "gone")

    run(go())


def test_reserve_commit_release_exactly_once(backend: Backend) -> None:
    s = backend.store

    async def go() -> None:
        key = await new_key(s, 5.0)
        await s.submit(job(key, 1, 2.0), OPEN)
        await s.submit(job(key, 2, 2.0), OPEN)
        k = await s.get_key(key)
        assert (k.balance, k.reserved) == (1.0, 4.0)
        await s.claim("w/1/0", 30)
        await s.complete("j1", "j1.mp4", {})
        assert await s.fail("j1", "too late") is None  # settled: no refund
        failed = await s.fail("j2", "cancelled")
        assert failed is not None and failed.error == "cancelled" and failed.finished_at is not None
        assert await s.fail("j2", "cancelled again") is None
        k = await s.get_key(key)
        assert (k.balance, k.reserved) == (3.0, 0.0)
        with pytest.raises(InsufficientCredits, match="costs 3.5"):
            await s.submit(job(key, 3, 3.5), OPEN)
        assert await s.get("j3") is None and await s.balance(key) == 3.0

    run(go())


def test_idempotency_replay_conflict_and_retry_after_failure(backend: Backend) -> None:
    s = backend.store

    async def go() -> None:
        key = await new_key(s, 5.0)
        first = await s.submit(job(key, 1, request_hash="h1"), OPEN, idempotency_key="abc")
        again = await s.submit(job(key, 2, request_hash="h1"), OPEN, idempotency_key="abc")
        assert again.id == first.id and await s.balance(key) == 4.0 and await s.get("j2") is None
        found = await s.find_idempotent(key, "abc")
        assert found is not None and found.id == "j1" and await s.find_idempotent(key, "zzz") is None
        with pytest.raises(Conflict, match="'abc' was already used for a different request"):
            await s.submit(job(key, 3, request_hash="other"), OPEN, idempotency_key="abc")
        other_key = await new_key(s, 5.0)  # keys are per API key
        assert (await s.submit(job(other_key, 4, request_hash="x"), OPEN, idempotency_key="abc")).id == "j4"
        await s.fail("j1", "boom")
        retried = await s.submit(job(key, 5, request_hash="h1"), OPEN, idempotency_key="abc")
        assert retried.id == "j5" and await s.balance(key) == 4.0  # a new attempt, paid once
        assert (await s.submit(job(key, 6, request_hash="h1"), OPEN, idempotency_key="abc")).id == "j5"

    run(go())


def test_queue_bound_and_concurrency_limit(backend: Backend) -> None:
    s = backend.store

    async def go() -> None:
        key = await new_key(s, 50.0)
        await s.submit(job(key, 1), SubmitLimits(1, 100))
        with pytest.raises(RateLimited, match="concurrent") as refused:
            await s.submit(job(key, 2), SubmitLimits(1, 100))
        assert refused.value.retry_after == 5
        await s.submit(job(key, 3), SubmitLimits(None, 2))
        with pytest.raises(RateLimited, match="queue is full"):
            await s.submit(job(key, 4), SubmitLimits(None, 2))
        assert await s.balance(key) == 48.0 and await s.get("j4") is None

    run(go())


def test_a_key_gets_its_share_of_the_queue_and_claims_go_round_robin(backend: Backend) -> None:
    s, clock = backend.store, backend.clock

    async def go() -> None:
        a, b = await new_key(s), await new_key(s)
        shared = SubmitLimits(None, 6, 3)
        for n in range(3):
            await s.submit(job(a, n), shared)
        with pytest.raises(RateLimited, match=r"3 jobs waiting, its share of the queue \(3 of 6\)") as refused:
            await s.submit(job(a, 3), shared)
        assert refused.value.retry_after > 0 and await s.get("j3") is None
        assert await s.queue_counts(a) == (3, 3)
        await s.submit(job(b, 10), shared)  # another key still gets in
        await s.submit(job(b, 11), shared)
        assert await s.queue_counts(b) == (5, 2)
        order = []
        for _ in range(5):
            clock.now += 1
            claimed = await s.claim("w", 30)
            assert claimed is not None
            order.append(claimed.id)
        assert order == ["j0", "j10", "j1", "j11", "j2"]  # the least recently served key first
        own = (await s.create(1.0, max_queued=1)).key
        assert own.max_queued == 1 and (await s.get_key(own.id)).max_queued == 1
        with pytest.raises(InvalidRequest, match="max_queued"):
            await s.create(1.0, max_queued=0)

    run(go())


def test_a_queue_position_is_the_place_round_robin_claims_serve_the_job(backend: Backend) -> None:
    s, clock = backend.store, backend.clock

    async def go() -> None:
        a, b, c = await new_key(s), await new_key(s), await new_key(s)
        await s.submit(job(a, 0), OPEN)
        clock.now += 1
        assert (await s.claim("w", 30)).id == "j0"  # type: ignore[union-attr]  # a was served: it waits its turn
        for n in (1, 2, 3, 4):
            await s.submit(job(a, n), OPEN)
        for n in (5, 6):
            await s.submit(job(b, n), OPEN)
        await s.submit(job(c, 7), OPEN)
        queued = await s.queued_ids()
        positions = {job_id: await s.queue_position(job_id) for job_id in queued}
        served = []
        while (claimed := await s.claim("w", 30)) is not None:
            clock.now += 1
            served.append(claimed.id)
        assert served == ["j5", "j7", "j1", "j6", "j2", "j3", "j4"]  # b, c (never served), then a; rounds
        assert positions == {job_id: served.index(job_id) + 1 for job_id in served}

    run(go())


def test_booleans_are_not_numbers(backend: Backend) -> None:
    """``credits: true`` is not one credit, nor ``max_concurrent: true`` one job."""
    s = backend.store

    async def go() -> None:
        with pytest.raises(InvalidRequest, match="credits"):
            await s.create(True)  # type: ignore[arg-type]
        key = await new_key(s, 1.0)
        with pytest.raises(InvalidRequest, match="credits"):
            await s.credit(key, False)  # type: ignore[arg-type]
        for limit in ("rate_limit", "max_concurrent", "max_queued"):
            with pytest.raises(InvalidRequest, match=limit):
                await s.create(1.0, **{limit: True})
        assert await s.balance(key) == 1.0

    run(go())


def test_external_ids_are_unique_per_key_and_dialect(backend: Backend) -> None:
    s = backend.store

    async def go() -> None:
        key = await new_key(s)
        await s.submit(job(key, 1, dialect="openai", external_id="mine"), OPEN)
        with pytest.raises(InvalidRequest, match="already the id of task j1"):
            await s.submit(job(key, 2, dialect="openai", external_id="mine"), OPEN)
        await s.submit(job(key, 3, dialect="other", external_id="mine"), OPEN)
        found = await s.find_external(key, "openai", "mine")
        assert found is not None and found.id == "j1"
        assert await s.find_external(key, "openai", "theirs") is None

    run(go())


def test_listing_is_per_dialect_with_cursors_and_routes(backend: Backend) -> None:
    s = backend.store

    async def go() -> None:
        key = await new_key(s)
        for n in range(1, 6):
            await s.submit(job(key, n, dialect="segmind" if n == 3 else "openai",
                               route="b" if n == 5 else "a", meta={"n": n}), OPEN)

        async def ids(*args: Any, **kw: Any) -> list[str]:
            return [j.id for j in await s.jobs_for_key(key, "openai", *args, **kw)]
        assert await ids(10) == ["j5", "j4", "j2", "j1"]
        assert await ids(10, after="j4") == ["j2", "j1"]
        assert await ids(1, after="j1", ascending=True) == ["j2"]
        assert await ids(2, offset=1) == ["j4", "j2"]
        assert await ids(10, route="a") == ["j4", "j2", "j1"]
        assert [j.id for j in await s.recent_for_key(key, 2)] == ["j5", "j4"]
        assert (await s.get("j2")).meta == {"n": 2}  # type: ignore[union-attr]

    run(go())


def test_expired_jobs_wait_for_their_deliveries_and_delete_forgets(backend: Backend) -> None:
    s, clock = backend.store, backend.clock

    async def go() -> None:
        key = await new_key(s)
        await s.submit(job(key, 0), OPEN)
        await s.submit(job(key, 1, webhook_url="https://hooks.example.com/x"), OPEN)
        await s.fail("j0", "cancelled")
        await s.fail("j1", "cancelled")
        assert [j.id for j in await s.expired(clock.now + 10)] == ["j0"]  # j1: undelivered event
        assert await s.expired(clock.now - 100) == []
        for delivery in await s.claim_deliveries("a", 60, 10):
            await s.delivery_done(delivery.id, "delivered")
        assert sorted(j.id for j in await s.expired(clock.now + 10)) == ["j0", "j1"]
        await s.delete("j0")
        assert await s.get("j0") is None

    run(go())


def test_expired_jobs_come_a_page_at_a_time_oldest_first(backend: Backend) -> None:
    """The sweeper pages through expired jobs: memory and each query stay bounded."""
    s, clock = backend.store, backend.clock

    async def go() -> None:
        key = await new_key(s)
        for n in range(5):
            await s.submit(job(key, n), OPEN)
            clock.now += 1
            await s.fail(f"j{n}", "cancelled")
        assert [j.id for j in await s.expired(clock.now + 10, 2)] == ["j0", "j1"]
        for finished in await s.expired(clock.now + 10, 2):
            await s.delete(finished.id)
        assert [j.id for j in await s.expired(clock.now + 10, 2)] == ["j2", "j3"]
        assert [j.id for j in await s.expired(clock.now - 1.5, 10)] == ["j2"]  # finished before

    run(go())


def test_counts_follow_every_status_change_on_every_handle(backend: Backend) -> None:
    """/metrics' counts are kept with each change (claim, requeue, fail, complete, delete),
    so a second handle (another replica) reads the same numbers."""
    s, clock = backend.store, backend.clock

    async def go() -> None:
        other = backend.reopen()
        key = await new_key(s)
        for n in range(6):
            await (s if n % 2 else other).submit(job(key, n), OPEN)
        assert await s.counts() == {"QUEUED": 6}
        await s.claim("h/1/0", 30)
        await other.claim("h/2/0", 30)
        await s.requeue("j1", 3, "crash")
        await s.complete("j0", "outputs/j0.mp4", {})
        await other.fail("j5", "cancelled")
        assert await s.counts() == await other.counts() == {"COMPLETED": 1, "FAILED": 1, "QUEUED": 4}
        await s.delete("j0")
        await other.delete("j5")
        assert await other.counts() == {"QUEUED": 4}
        full = SubmitLimits(None, 4)  # the queue bound reads the same count
        with pytest.raises(RateLimited, match="queue is full"):
            await s.submit(job(key, 9), full)
        await s.claim("h/1/0", 30)
        await other.submit(job(key, 9), full)
        assert await s.counts() == {"PROCESSING": 1, "QUEUED": 4}
        clock.now += 1

    run(go())


def test_worker_reports_replace_each_other(backend: Backend) -> None:
    s = backend.store

    async def go() -> None:
        await s.report_worker(WorkerStatus("h/1/1", "tiny", "starting", 1.0))
        await s.report_worker(WorkerStatus("h/1/0", "tiny", "starting", 1.0))
        await s.report_worker(WorkerStatus("h/1/0", "tiny", "ready", 2.0, device="cpu", pid=7, job_id="j"))
        first, second = await s.workers()
        assert (first.id, first.state, first.device, first.pid, first.job_id) == ("h/1/0", "ready", "cpu", 7, "j")
        assert second.id == "h/1/1"

    run(go())


def test_keys_authenticate_list_and_revoke_failing_their_jobs(backend: Backend) -> None:
    s = backend.store

    async def go() -> None:
        created = await s.create(10.0, scopes=["a", "b"], rate_limit=5, max_concurrent=2, name="ci")
        key = created.key
        assert (key.scopes, key.rate_limit, key.max_concurrent, key.name) == (("a", "b"), 5, 2, "ci")
        assert (await s.authenticate(created.secret)).id == key.id
        assert (await s.get_key(key.prefix)).id == key.id
        with pytest.raises(Unauthorized, match="missing"):
            await s.authenticate(None)
        with pytest.raises(Unauthorized, match="invalid"):
            await s.authenticate("tk_nope")
        with pytest.raises(NotFound, match="no API key 'key_nope'"):
            await s.get_key("key_nope")
        backend.clock.now += 1  # listed oldest first
        other = await new_key(s, 1.0)
        assert [k.id for k in await s.list_keys()] == [key.id, other]
        await s.submit(job(key.id, 1, 2.0), OPEN)
        await s.submit(job(key.id, 2, 3.0), OPEN)
        await s.claim("w/1/0", 30)
        revoked = await s.revoke(key.id)
        assert revoked.revoked and (revoked.balance, revoked.reserved) == (10.0, 0.0)  # nothing charged
        for n in (1, 2):
            failed = await s.get(f"j{n}")
            assert failed is not None and failed.status is JobStatus.FAILED
            assert failed.error == "cancelled: the API key was revoked"
        with pytest.raises(Unauthorized, match="revoked"):
            await s.authenticate(created.secret)

    run(go())


def test_credits_never_make_a_balance_negative(backend: Backend) -> None:
    s = backend.store

    async def go() -> None:
        key = await new_key(s, 2.0)
        assert (await s.credit(key, 0.5)).balance == 2.5
        assert (await s.credit(key, -1.5)).balance == 1.0
        with pytest.raises(InvalidRequest, match="negative .it is 1."):
            await s.credit(key, -1.5)
        with pytest.raises(InvalidRequest, match="finite"):
            await s.credit(key, math.nan)
        with pytest.raises(InvalidRequest, match="must not be negative"):
            await s.create(-1.0)
        with pytest.raises(NotFound):
            await s.credit("key_nope", 1.0)
        assert await s.balance(key) == 1.0

    run(go())


def test_rate_limits_are_shared_by_two_handles(backend: Backend) -> None:
    one, two, clock = backend.store, backend.reopen(), backend.clock

    async def go() -> None:
        key = await new_key(one)
        await one.hit(key, 3)
        clock.now += 10
        await two.hit(key, 3)
        await one.hit(key, 3)
        with pytest.raises(RateLimited, match="3 generation requests per minute") as refused:
            await two.hit(key, 3)
        assert refused.value.retry_after == 50
        await two.hit(key, None)  # no limit: never refused
        clock.now += 51  # the first hit left the window
        await one.hit(key, 3)

    run(go())


def test_outbox_in_order_under_leases_with_retries(backend: Backend) -> None:
    s, clock = backend.store, backend.clock
    url = "https://hooks.example.com/x"

    async def go() -> None:
        key = await new_key(s)
        await s.submit(job(key, 1, webhook_url=url), OPEN)
        await s.submit(job(key, 2), OPEN)
        assert await s.next_delivery_at() is None
        await s.claim("me", 30)
        await s.claim("me", 30)
        await s.fail("j2", "boom")  # no URL: nothing recorded
        assert await s.next_delivery_at() == 0.0
        due = await s.claim_deliveries("a", 60, 10)
        assert [(d.job_id, d.status, d.url, d.attempts) for d in due] == [("j1", JobStatus.PROCESSING, url, 0)]
        assert due[0].webhook_id.startswith("msg_")
        assert await s.claim_deliveries("b", 60, 10) == []  # leased
        assert await s.next_delivery_at() == clock.now + 60
        clock.now += 61
        (again,) = await s.claim_deliveries("b", 60, 10)
        assert again.webhook_id == due[0].webhook_id  # the same id on a re-send
        await s.delivery_retry(again.id, clock.now + 5, "HTTP 500")
        assert await s.claim_deliveries("a", 60, 10) == [] and await s.next_delivery_at() == clock.now + 5
        clock.now += 5
        (deferred,) = await s.claim_deliveries("a", 60, 10)
        await s.delivery_defer(deferred.id, clock.now + 3)  # put back unattempted
        assert await s.claim_deliveries("a", 60, 10) == [] and await s.next_delivery_at() == clock.now + 3
        clock.now += 3
        (third,) = await s.claim_deliveries("a", 60, 10)
        assert third.attempts == 1
        await s.complete("j1", "outputs/j1.mp4", {})
        assert await s.claim_deliveries("a", 60, 10) == []  # j1's next event waits for the first
        await s.delivery_done(third.id, "delivered (HTTP 200)")
        (completed,) = await s.claim_deliveries("a", 60, 10)
        assert completed.status is JobStatus.COMPLETED
        await s.delivery_done(completed.id, "delivered (HTTP 200)")
        assert await s.next_delivery_at() is None

    run(go())


def test_key_credentials(backend: Backend) -> None:
    s = backend.store

    async def go() -> None:
        key = (await s.create(1.0)).key
        assert (await s.webhook_of(key.id)).url is None
        await s.set_webhook_url(key.prefix, "https://hooks.example.com/k")
        await s.set_webhook_secret(key.id, "v1.sealed")
        hook = await s.webhook_of(key.id)
        assert (hook.url, hook.sealed_secret) == ("https://hooks.example.com/k", "v1.sealed")
        await s.set_webhook_url(key.id, None)
        assert (await s.webhook_of(key.id)).url is None
        assert await s.by_access_key("AK1") is None
        await s.set_access_key(key.id, "AK1", "v1.secret")
        found = await s.by_access_key("AK1")
        assert found is not None and found[0].id == key.id and found[1] == "v1.secret"
        await s.revoke(key.id)
        found = await s.by_access_key("AK1")
        assert found is not None and found[0].revoked  # revoked keys too: the caller refuses them
        with pytest.raises(NotFound):
            await s.set_webhook_url("key_nope", "https://x")
        assert (await s.webhook_of("key_nope")).url is None
        await s.ping()

    run(go())


def by_seconds(queued: Job) -> int | None:
    """A batch key for the claim tests: jobs of equal length batch; first-last-frame runs alone."""
    return None if queued.task.kind == "flf2v" else queued.task.seconds


def test_claim_batch_takes_the_oldest_and_its_compatible_company(backend: Backend) -> None:
    s = backend.store

    async def go() -> None:
        key = await new_key(s)
        lengths = [5, 10, 5, 5, 10, 5, 5]  # j0..j6
        for n, seconds in enumerate(lengths):
            await s.submit(dataclasses.replace(job(key, n), task=VideoTask(kind="t2v", seconds=seconds)), OPEN)
        batch = await s.claim_batch("h/1/0", 30, 3, by_seconds)
        assert [j.id for j in batch] == ["j0", "j2", "j3"]  # oldest first; the 10 s jobs wait
        assert all(j.status is JobStatus.PROCESSING and j.attempts == 1 and j.worker == "h/1/0" for j in batch)
        assert await s.queued_ids() == ["j1", "j4", "j5", "j6"]
        assert [j.id for j in await s.claim_batch("h/1/1", 30, 3, by_seconds)] == ["j1", "j4"]
        assert [j.id for j in await s.claim_batch("h/1/1", 30, 1, by_seconds)] == ["j5"]  # 1: batching off
        assert await s.claim_batch("h/1/1", 30, 4, by_seconds) == [await s.get("j6")]
        assert await s.claim_batch("h/1/1", 30, 4, by_seconds) == []
        # each job keeps its own lease: one finishing or failing leaves the others running
        assert await s.renew("j2", "h/1/0", 30, progress=0.5) and await s.fail("j0", "boom") is not None
        assert (await s.get("j3")).status is JobStatus.PROCESSING  # type: ignore[union-attr]
        assert await s.counts() == {"FAILED": 1, "PROCESSING": 6}

    run(go())


def test_claim_batch_runs_a_job_its_family_cannot_batch_alone(backend: Backend) -> None:
    s = backend.store

    async def go() -> None:
        key = await new_key(s)
        alone = VideoTask(kind="flf2v", first_frame="a", last_frame="b")
        await s.submit(dataclasses.replace(job(key, 0), task=alone), OPEN)
        for n in (1, 2):
            await s.submit(job(key, n), OPEN)
        assert [j.id for j in await s.claim_batch("h/1/0", 30, 4, by_seconds)] == ["j0"]
        assert [j.id for j in await s.claim_batch("h/1/0", 30, 4, by_seconds)] == ["j1", "j2"]

    run(go())


def test_two_workers_claiming_batches_never_share_a_job(backend: Backend) -> None:
    s, other = backend.store, backend.reopen()

    async def drain(store: Store, owner: str) -> list[str]:
        taken: list[str] = []
        while batch := await store.claim_batch(owner, 30, 3, by_seconds):
            taken += [j.id for j in batch]
        return taken

    async def go() -> None:
        key = await new_key(s)
        for n in range(30):
            await s.submit(job(key, n), OPEN)
        first, second = await asyncio.gather(drain(s, "a/1/0"), drain(other, "b/1/0"))
        assert not set(first) & set(second) and sorted(first + second) == sorted(f"j{n}" for n in range(30))

    run(go())


def test_claim_batch_never_puts_two_lora_sets_in_one_batch(backend: Backend) -> None:
    from takeone.core.loras import LoraUse
    from takeone.dispatch.local.batching import batch_key_for

    s, by_recipe = backend.store, batch_key_for("tiny")  # the key a tiny worker's claims use

    async def go() -> None:
        key = await new_key(s)
        sets = [(LoraUse("alpha"),), (LoraUse("beta"),), (), (LoraUse("alpha"),), (LoraUse("alpha", 0.5),)]
        for n, loras in enumerate(sets):  # j0..j4: the same recipe, only the LoRAs differ
            task = VideoTask(kind="t2v", prompt=f"p{n}", seed=n, loras=loras)
            await s.submit(dataclasses.replace(job(key, n), task=task), OPEN)
        assert [j.id for j in await s.claim_batch("h/1/0", 30, 4, by_recipe)] == ["j0", "j3"]  # alpha at 1.0
        for expected in (["j1"], ["j2"], ["j4"]):  # beta; none; alpha at another scale: each alone
            assert [j.id for j in await s.claim_batch("h/1/0", 30, 4, by_recipe)] == expected

    run(go())


def test_statuses_of_many_jobs_come_in_one_read(backend: Backend) -> None:
    """More ids than one statement takes (a chunk each), the gone ones left out."""
    from takeone.backends.sql.reads import STATUS_CHUNK

    s = backend.store

    async def go() -> None:
        key = await new_key(s, 10_000.0)
        for n in range(3):
            await s.submit(job(key, n), OPEN)
        assert await s.claim("h/1/0", 30) is not None  # j0
        await s.complete("j0", "outputs/j0.mp4", {})
        await s.fail("j2", "cancelled")
        ids = ["j0", "j1", "j2"] + [f"gone{n}" for n in range(STATUS_CHUNK + 10)]
        assert await s.statuses(ids) == {"j0": JobStatus.COMPLETED, "j1": JobStatus.QUEUED,
                                         "j2": JobStatus.FAILED}
        assert await s.statuses([]) == {}

    run(go())
