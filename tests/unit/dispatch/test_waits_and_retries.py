"""Waits that read the store, store calls retried through an outage, process identities."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from takeone.backends.sqlite.store import SqliteStore
from takeone.core.errors import StoreUnavailable
from takeone.core.jobs import Job, JobStatus, SubmitLimits
from takeone.core.task import VideoTask
from takeone.dispatch.identity import is_dead, process_identity
from takeone.dispatch.retry import StoreRetry
from takeone.dispatch.waits import JobWaiter


async def _queued(store: SqliteStore) -> str:
    key = (await store.create(10)).key
    job = Job(id="j", key_id=key.id, task=VideoTask(kind="t2v"), price=1, status=JobStatus.QUEUED,
              created_at=time.time(), dialect="segmind")
    await store.submit(job, SubmitLimits(None, 10))
    return job.id


def test_a_wait_sees_a_job_finished_by_another_store_handle(tmp_path: Path) -> None:
    """No notification at all: another process's store handle finishes the job."""
    async def run() -> None:
        mine, theirs = SqliteStore.open(tmp_path / "t.db"), SqliteStore.open(tmp_path / "t.db")
        job_id = await _queued(mine)

        async def elsewhere() -> None:
            await asyncio.sleep(0.3)
            await theirs.claim("other/1/0", 30)
            await theirs.complete(job_id, "outputs/j.mp4", {})

        task = asyncio.create_task(elsewhere())
        started = time.monotonic()
        job = await JobWaiter(mine).wait(job_id, timeout=10)
        await task
        assert job is not None and job.status is JobStatus.COMPLETED
        assert time.monotonic() - started < 2

    asyncio.run(run())


def test_a_wait_returns_the_latest_state_at_its_timeout(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteStore.open(tmp_path / "t.db")
        job = await JobWaiter(store).wait(await _queued(store), timeout=0.2)
        assert job is not None and job.status is JobStatus.QUEUED

    asyncio.run(run())


def test_a_notification_wakes_a_waiter_at_once(tmp_path: Path) -> None:
    async def run() -> None:
        store = SqliteStore.open(tmp_path / "t.db")
        job_id = await _queued(store)
        waiter = JobWaiter(store)
        wait = asyncio.create_task(waiter.wait(job_id, timeout=10))
        await asyncio.sleep(1.0)  # the poll interval has grown to its maximum
        await store.fail(job_id, "cancelled")
        started = time.monotonic()
        waiter.finished(job_id)
        job = await wait
        assert job is not None and job.status is JobStatus.FAILED
        assert time.monotonic() - started < 0.2

    asyncio.run(run())


def test_store_calls_are_retried_until_the_store_answers() -> None:
    async def run() -> None:
        calls = StoreRetry("test")
        answers = iter([StoreUnavailable("locked"), StoreUnavailable("locked"), "ok"])
        seen: list[str | None] = []

        async def flaky() -> str:
            seen.append(calls.error)
            answer = next(answers)
            if isinstance(answer, Exception):
                raise answer
            return answer

        assert await calls.run("write", flaky) == "ok"
        assert seen == [None, "locked", "locked"] and calls.error is None

    asyncio.run(run())


def test_identities_of_gone_processes_are_known_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    host = socket.gethostname()
    assert is_dead(f"{host}/{child.pid}/0")
    assert not is_dead(process_identity())
    assert not is_dead(f"{host}/{os.getppid()}")
    assert not is_dead(f"elsewhere/{child.pid}")  # another host: only its lease can tell
