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
                  status=JobStatus.QUEUED, created_at=time.time())
        await store.submit(job, SubmitLimits(None, 10))
        assert await store.balance(key.id) == 0.5
        claimed = await store.claim("h/1/0", 30)
        assert claimed is not None and claimed.worker == "h/1/0"
        done = await store.complete("a", "outputs/a.mp4", {"seed": 1})
        assert done is not None and done.output == "outputs/a.mp4"
        assert [j.id for j in await store.recent_for_key(key.id, 5)] == ["a"]

    asyncio.run(run())
