import threading
import time
from pathlib import Path

import pytest

from takeone.backends.sql.store import SqlStore
from takeone.backends.sqlite.driver import SqliteDriver
from takeone.core.errors import InsufficientCredits, RateLimited
from takeone.core.jobs import Job, JobStatus, SubmitLimits
from takeone.core.task import VideoTask


def _job(key_id: str, n: int, price: float = 1.0) -> Job:
    return Job(id=f"job-{n}", key_id=key_id, task=VideoTask(kind="t2v", prompt="x"),
               price=price, status=JobStatus.QUEUED, created_at=time.time(), dialect="segmind")


@pytest.fixture()
def db(tmp_path: Path) -> SqliteDriver:
    return SqliteDriver(tmp_path / "t.db")


def test_reserve_commit_release_exactly_once(db: SqliteDriver) -> None:
    keys, jobs = SqlStore(db, time.time), SqlStore(db, time.time)
    key = keys.create(5.0).key
    jobs.submit(_job(key.id, 1, 2.0), SubmitLimits(None, 100))
    jobs.submit(_job(key.id, 2, 2.0), SubmitLimits(None, 100))
    assert keys.get_key(key.id).balance == 1.0 and keys.get_key(key.id).reserved == 4.0
    jobs.claim("w/1/0", 30)
    jobs.complete("job-1", "job-1.mp4", {})
    assert jobs.fail("job-1", "too late") is None  # already settled: no refund
    jobs.fail("job-2", "cancelled")
    assert jobs.fail("job-2", "cancelled again") is None
    k = keys.get_key(key.id)
    assert (k.balance, k.reserved) == (3.0, 0.0)


def test_insufficient_credits_keeps_nothing(db: SqliteDriver) -> None:
    keys, jobs = SqlStore(db, time.time), SqlStore(db, time.time)
    key = keys.create(0.5).key
    with pytest.raises(InsufficientCredits, match="costs 1.0"):
        jobs.submit(_job(key.id, 1), SubmitLimits(None, 100))
    assert jobs.get("job-1") is None and keys.get_key(key.id).balance == 0.5


def test_concurrent_submits_accept_exactly_what_the_balance_covers(tmp_path: Path) -> None:
    keys = SqlStore(SqliteDriver(tmp_path / "c.db"), time.time)
    key = keys.create(7.0).key
    accepted, refused = [], []

    def submit(n: int) -> None:
        store = SqlStore(SqliteDriver(tmp_path / "c.db"), time.time)  # separate connections
        try:
            store.submit(_job(key.id, n), SubmitLimits(None, 1000))
            accepted.append(n)
        except InsufficientCredits:
            refused.append(n)

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(accepted) == 7 and len(refused) == 13
    k = keys.get_key(key.id)
    assert (k.balance, k.reserved) == (0.0, 7.0)


def test_idempotency_key_returns_the_same_job_without_paying_twice(db: SqliteDriver) -> None:
    keys, jobs = SqlStore(db, time.time), SqlStore(db, time.time)
    key = keys.create(5.0).key
    first = jobs.submit(_job(key.id, 1), SubmitLimits(None, 100), idempotency_key="abc")
    again = jobs.submit(_job(key.id, 2), SubmitLimits(None, 100), idempotency_key="abc")
    assert again.id == first.id and keys.get_key(key.id).balance == 4.0


def test_queue_bound_and_concurrency_limit(db: SqliteDriver) -> None:
    keys, jobs = SqlStore(db, time.time), SqlStore(db, time.time)
    key = keys.create(50.0).key
    jobs.submit(_job(key.id, 1), SubmitLimits(1, 100))
    with pytest.raises(RateLimited, match="concurrent"):
        jobs.submit(_job(key.id, 2), SubmitLimits(1, 100))
    jobs.submit(_job(key.id, 3), SubmitLimits(None, 2))
    with pytest.raises(RateLimited, match="queue is full"):
        jobs.submit(_job(key.id, 4), SubmitLimits(None, 2))
