"""The async store over SQLite: shared rate counters, outages as StoreUnavailable, upgrades."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from pathlib import Path

import pytest

from takeone.backends.sqlite.store import SqliteStore
from takeone.core.errors import RateLimited, StoreUnavailable
from takeone.core.jobs import Job, JobStatus, SubmitLimits
from takeone.core.task import VideoTask


def test_rate_limits_are_shared_by_every_process_on_the_store(tmp_path: Path) -> None:
    async def run() -> None:
        one, two = SqliteStore.open(tmp_path / "t.db"), SqliteStore.open(tmp_path / "t.db")
        key = (await one.create(10)).key
        await one.hit(key.id, 3)
        await two.hit(key.id, 3)
        await one.hit(key.id, 3)
        with pytest.raises(RateLimited) as refused:
            await two.hit(key.id, 3)
        assert 1 <= refused.value.retry_after <= 60
        await two.hit(key.id, None)  # no limit: never refused

    asyncio.run(run())


def test_a_locked_store_is_unavailable_not_an_error(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteStore.open(tmp_path / "t.db", busy_timeout_s=0.2)
        key = (await store.create(10)).key
        other = sqlite3.connect(tmp_path / "t.db", isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.ping()
        with pytest.raises(StoreUnavailable, match="locked"):
            await store.credit(key.id, 1)
        assert (await store.get_key(key.id)).balance == 10  # reads go on
        other.execute("ROLLBACK")
        await store.ping()

    asyncio.run(run())


def test_a_corrupt_file_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreUnavailable, match="cannot open the database"):
        SqliteStore.open(path)


def test_jobs_queued_by_version_0_1_still_run(tmp_path: Path) -> None:
    """A database written before the neutral task: its queued job converts on open."""
    path = tmp_path / "t.db"
    old = sqlite3.connect(path)
    old.executescript(Path(__file__).with_name("schema_0_1.sql").read_text())
    request = {"endpoint": "kling-2.1", "prompt": "fox", "negative_prompt": "", "cfg_scale": 0.7,
               "mode": "master", "aspect_ratio": "9:16", "duration": 10, "generate_audio": False,
               "image": "/srv/data/inputs/j1/image.png", "image_tail": None, "seed": 3}
    old.execute("INSERT INTO jobs (id, key_id, endpoint, request, price, charge, status,"
                " created_at) VALUES ('j1', 'k', 'kling-2.1', ?, 1, 'reserved', 'QUEUED', ?)",
                (json.dumps(request), time.time()))
    old.commit()
    old.close()
    store = SqliteStore.open(path)
    job = asyncio.run(store.get("j1"))
    assert job is not None and job.status is JobStatus.QUEUED and job.route == "kling-2.1"
    assert job.task == VideoTask(kind="i2v", tier="quality", seconds=10, aspect_ratio="9:16",
                                 prompt="fox", guidance=0.7, seed=3,
                                 first_frame="inputs/j1/image.png")


def test_submit_and_claim_through_the_async_api(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteStore.open(tmp_path / "t.db")
        key = (await store.create(2)).key
        job = Job(id="a", key_id=key.id, task=VideoTask(kind="t2v"), price=1.5,
                  status=JobStatus.QUEUED, created_at=time.time(), dialect="segmind")
        await store.submit(job, SubmitLimits(None, 10))
        assert await store.balance(key.id) == 0.5
        claimed = await store.claim("h/1/0", 30)
        assert claimed is not None and claimed.worker == "h/1/0"
        done = await store.complete("a", "outputs/a.mp4", {"seed": 1})
        assert done is not None and done.output == "outputs/a.mp4"
        assert [j.id for j in await store.recent_for_key(key.id, 5)] == ["a"]

    asyncio.run(run())


def test_version_5_counts_its_jobs_on_upgrade_and_the_hot_queries_use_indexes(tmp_path: Path) -> None:
    """Version 6 keeps each status's count (filled from the jobs already stored) and finds
    queue positions and expired jobs through indexes, not by reading every job."""
    path = tmp_path / "t.db"
    store = SqliteStore.open(path)
    key = asyncio.run(store.create(10)).key.id
    for n in range(3):
        asyncio.run(store.submit(Job(id=f"j{n}", key_id=key, task=VideoTask(kind="t2v", prompt="p"),
                                     price=1.0, status=JobStatus.QUEUED, created_at=1000.0 + n, dialect="segmind"),
                                 SubmitLimits(None, 10)))
    store.close()
    old = sqlite3.connect(path)  # back to version 5, with a status changed behind the counts' back
    old.executescript("DROP TRIGGER job_counts_insert; DROP TRIGGER job_counts_delete;"
                      " DROP TRIGGER job_counts_update; DROP TABLE job_counts; DROP INDEX jobs_finished;"
                      " UPDATE jobs SET status = 'COMPLETED', finished_at = 1 WHERE id = 'j2';"
                      " PRAGMA user_version = 5;")
    old.close()
    store = SqliteStore.open(path)
    assert asyncio.run(store.counts()) == {"COMPLETED": 1, "QUEUED": 2}
    store.close()
    conn = sqlite3.connect(path)
    plans = {name: " ".join(str(r[3]) for r in conn.execute("EXPLAIN QUERY PLAN " + sql, args))
             for name, sql, args in (
                 ("position", "SELECT COUNT(*) FROM jobs j WHERE j.status = 'QUEUED' AND j.created_at < ?"
                              " UNION ALL SELECT COUNT(*) FROM jobs j WHERE j.status = 'QUEUED'"
                              " AND j.created_at = ? AND j.id < ?", (1.0, 1.0, "j")),
                 ("expired", "SELECT * FROM jobs INDEXED BY jobs_finished WHERE status IN ('COMPLETED', 'FAILED')"
                             " AND finished_at < ?"
                             " ORDER BY finished_at LIMIT 10", (1.0,)))}
    conn.close()
    assert "jobs_status" in plans["position"] and "SCAN j" not in plans["position"], plans
    assert "jobs_finished" in plans["expired"] and "TEMP B-TREE" not in plans["expired"], plans
