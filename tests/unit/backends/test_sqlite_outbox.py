"""The webhook outbox: rows written in the job's own transaction, claimed under a lease, one
job's events in order, kept until delivered, and gone with the job."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from takeone.backends.sql.status import transition
from takeone.backends.sql.store import SqlStore
from takeone.backends.sqlite.db import SCHEMA_VERSION
from takeone.backends.sqlite.driver import SqliteDriver
from takeone.core.errors import InvalidRequest
from takeone.core.jobs import Job, JobStatus, SubmitLimits
from takeone.core.task import VideoTask


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _setup(tmp_path: Path) -> tuple[SqliteDriver, SqlStore, SqlStore, str, Clock]:
    clock = Clock()
    db = SqliteDriver(tmp_path / "o.db")
    key = SqlStore(db, clock).create(100).key
    return db, SqlStore(db, clock), SqlStore(db, clock), key.id, clock


def _job(jobs: SqlStore, key: str, n: int, url: str | None = "https://hooks.example.com/x",
         external: str | None = None, dialect: str = "openai") -> Job:
    job = Job(id=f"j{n}", key_id=key, task=VideoTask(kind="t2v", prompt="p"), price=1.0,
              status=JobStatus.QUEUED, created_at=1000.0 + n, webhook_url=url, dialect=dialect,
              external_id=external, meta={"model": "sora-2"})
    return jobs.submit(job, SubmitLimits(None, 100))


def test_each_status_change_of_a_webhook_job_is_recorded(tmp_path: Path) -> None:
    _, jobs, outbox, key, _ = _setup(tmp_path)
    _job(jobs, key, 1)
    _job(jobs, key, 2, url=None)
    assert jobs.claim("me", 30).id == "j1"  # type: ignore[union-attr]
    jobs.complete("j1", "outputs/j1.mp4", {})
    jobs.claim("me", 30)
    jobs.fail("j2", "boom")
    due = outbox.claim_deliveries("sender", 60, 10)
    assert [(d.job_id, d.status) for d in due] == [("j1", JobStatus.PROCESSING)]  # one per job
    assert due[0].url == "https://hooks.example.com/x" and due[0].webhook_id.startswith("msg_")
    outbox.delivery_done(due[0].id, "delivered")
    assert [(d.job_id, d.status) for d in outbox.claim_deliveries("sender", 60, 10)] == [("j1", JobStatus.COMPLETED)]
    assert jobs.get("j1").meta == {"model": "sora-2"}  # type: ignore[union-attr]


def test_a_lease_keeps_others_off_until_it_runs_out(tmp_path: Path) -> None:
    _, jobs, outbox, key, clock = _setup(tmp_path)
    _job(jobs, key, 1)
    jobs.claim("me", 30)
    first = outbox.claim_deliveries("a", 60, 10)
    assert outbox.claim_deliveries("b", 60, 10) == []
    assert outbox.next_delivery_at() == clock.now + 60
    clock.now += 61
    again = outbox.claim_deliveries("b", 60, 10)
    assert [d.webhook_id for d in again] == [d.webhook_id for d in first]  # same id on a re-send


def test_retries_wait_and_count(tmp_path: Path) -> None:
    _, jobs, outbox, key, clock = _setup(tmp_path)
    _job(jobs, key, 1)
    jobs.claim("me", 30)
    (row,) = outbox.claim_deliveries("a", 60, 10)
    outbox.delivery_retry(row.id, clock.now + 5, "HTTP 500")
    assert outbox.claim_deliveries("a", 60, 10) == [] and outbox.next_delivery_at() == clock.now + 5
    clock.now += 5
    (again,) = outbox.claim_deliveries("a", 60, 10)
    assert again.attempts == 1 and again.webhook_id == row.webhook_id


def test_a_rolled_back_change_records_nothing(tmp_path: Path) -> None:
    db, jobs, outbox, key, _ = _setup(tmp_path)
    _job(jobs, key, 1)
    with pytest.raises(RuntimeError), db.write() as tx:
        assert transition(tx, db, "j1", JobStatus.FAILED, 1000.0) is not None
        raise RuntimeError("crash before commit")
    assert outbox.claim_deliveries("a", 60, 10) == [] and jobs.get("j1").status is JobStatus.QUEUED  # type: ignore[union-attr]


def test_pending_deliveries_outlive_retention_and_deletion_forgets_them(tmp_path: Path) -> None:
    _, jobs, outbox, key, clock = _setup(tmp_path)
    _job(jobs, key, 1)
    jobs.claim("me", 30)
    jobs.fail("j1", "boom")
    assert jobs.expired(clock.now + 10, 10) == []  # undelivered events keep the job
    for row in outbox.claim_deliveries("a", 60, 10) + outbox.claim_deliveries("a", 60, 10):
        outbox.delivery_done(row.id, "delivered")
    for row in outbox.claim_deliveries("a", 60, 10):
        outbox.delivery_done(row.id, "delivered")
    assert [j.id for j in jobs.expired(clock.now + 10, 10)] == ["j1"]
    jobs.delete("j1")
    assert outbox.next_delivery_at() is None


def test_external_ids_are_unique_per_key_and_dialect(tmp_path: Path) -> None:
    _, jobs, _, key, _ = _setup(tmp_path)
    _job(jobs, key, 1, external="mine")
    with pytest.raises(InvalidRequest, match="already the id of task j1"):
        _job(jobs, key, 2, external="mine")
    _job(jobs, key, 3, external="mine", dialect="other")
    assert jobs.find_external(key, "openai", "mine").id == "j1"  # type: ignore[union-attr]


def test_listing_is_per_dialect_with_a_cursor(tmp_path: Path) -> None:
    _, jobs, _, key, _ = _setup(tmp_path)
    for n in range(1, 5):
        _job(jobs, key, n, dialect="openai" if n != 3 else "segmind")
    assert [j.id for j in jobs.jobs_for_key(key, "openai", 10)] == ["j4", "j2", "j1"]
    assert [j.id for j in jobs.jobs_for_key(key, "openai", 10, after="j4")] == ["j2", "j1"]
    assert [j.id for j in jobs.jobs_for_key(key, "openai", 1, after="j1", ascending=True)] == ["j2"]
    assert [j.id for j in jobs.jobs_for_key(key, "openai", 2, offset=1)] == ["j2", "j1"]


def test_rows_from_before_dialects_are_segmind_jobs(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    SqliteDriver(path).close()
    with sqlite3.connect(path) as conn:  # the version before: undo what dialects added
        for index in ("jobs_external", "jobs_key_dialect", "api_keys_access"):
            conn.execute(f"DROP INDEX {index}")
        conn.execute("DROP TABLE webhook_outbox")
        for column in ("meta", "dialect", "webhook_url", "external_id"):
            conn.execute(f"ALTER TABLE jobs DROP COLUMN {column}")
        for column in ("webhook_url", "webhook_secret", "access_key", "access_secret"):
            conn.execute(f"ALTER TABLE api_keys DROP COLUMN {column}")
        conn.execute("INSERT INTO jobs (id, key_id, endpoint, request, price, charge, status,"
                     " created_at) VALUES ('old', 'k', 'kling-2.6', ?, 0, 'reserved', 'QUEUED', 1)",
                     ('{"kind": "t2v"}',))
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION - 1}")
    db = SqliteDriver(path)
    job = SqlStore(db, Clock()).get("old")
    assert job is not None and job.dialect == "segmind" and job.meta == {} and job.webhook_url is None
    with db.connection() as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
