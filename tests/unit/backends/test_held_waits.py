"""Blocking calls held by one :class:`JobWaiter` over a real store (SQLite and PostgreSQL):
many answered as their jobs finish, lost notifications caught by the interval read, and one
status read per interval whatever the number of calls held."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from takeone.backends.postgres.store import PostgresStore
from takeone.backends.sqlite.store import SqliteStore
from takeone.core.jobs import Job, JobStatus, SubmitLimits
from takeone.core.store import Store
from takeone.core.task import VideoTask
from takeone.dispatch.waits import JobWaiter

LIMITS = SubmitLimits(None, 10_000)
POLL_S = 0.1


class CountingSqliteStore(SqliteStore):
    """The real SQLite store, counting the reads a waiter makes."""

    gets = 0
    status_reads = 0

    async def get(self, job_id: str) -> Job | None:
        self.gets += 1
        return await super().get(job_id)

    async def statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        self.status_reads += 1
        return await super().statuses(job_ids)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def handles(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """Opens handles on one store, as separate processes would."""
    opened: list[Store] = []
    if request.param == "sqlite":
        def reopen() -> Store:
            opened.append(SqliteStore.open(tmp_path / "t.db"))
            return opened[-1]
    else:
        url = request.getfixturevalue("pg_url")

        def reopen() -> Store:
            opened.append(PostgresStore.open(url))
            return opened[-1]
    yield reopen
    for store in opened:
        store.close()


async def _submit(store: Store, n: int) -> list[str]:
    key = (await store.create(10 * n)).key
    ids = [f"j{i:04d}" for i in range(n)]
    for i, job_id in enumerate(ids):
        await store.submit(Job(id=job_id, key_id=key.id, task=VideoTask(kind="t2v"), price=1,
                               status=JobStatus.QUEUED, created_at=1000.0 + i, dialect="segmind"), LIMITS)
    return ids


async def _finish_all(store: Store, n: int) -> list[str]:
    """Claim and complete ``n`` jobs through ``store``; their ids, in finish order."""
    done = []
    for _ in range(n):
        job = await store.claim("other/1/0", 30)
        assert job is not None
        await store.complete(job.id, f"outputs/{job.id}.mp4", {})
        done.append(job.id)
    return done


def test_many_held_calls_are_answered_as_their_jobs_finish(handles: Callable[[], Store]) -> None:
    """200 calls on one waiter; another handle finishes the jobs; half the finishes are
    announced, the other half's notifications lost (the interval read answers those)."""
    async def run() -> None:
        mine, theirs = handles(), handles()
        ids = await _submit(mine, 200)
        waiter = JobWaiter(mine, poll_s=POLL_S)
        waits = [asyncio.create_task(waiter.wait(job_id, timeout=30)) for job_id in ids]
        await asyncio.sleep(0.3)
        assert not any(w.done() for w in waits)
        started = time.monotonic()
        for n, job_id in enumerate(await _finish_all(theirs, len(ids))):
            if n % 2 == 0:
                waiter.finished(job_id)
        jobs = await asyncio.gather(*waits)
        assert [j.status if j else None for j in jobs] == [JobStatus.COMPLETED] * len(ids)
        assert [j.id for j in jobs if j] == ids
        assert time.monotonic() - started < 10

    asyncio.run(run())


def test_a_lost_notification_is_caught_by_the_interval_read(handles: Callable[[], Store]) -> None:
    """Nothing calls ``finished``: the one status read per interval sees the job done."""
    async def run() -> None:
        mine, theirs = handles(), handles()
        [job_id] = await _submit(mine, 1)
        waiter = JobWaiter(mine, poll_s=POLL_S)
        wait = asyncio.create_task(waiter.wait(job_id, timeout=30))
        await asyncio.sleep(0.5)
        await _finish_all(theirs, 1)
        started = time.monotonic()
        job = await wait
        assert job is not None and job.status is JobStatus.COMPLETED
        assert time.monotonic() - started < POLL_S + 1.0

    asyncio.run(run())


def test_reads_per_interval_do_not_grow_with_the_calls_held(tmp_path: Path) -> None:
    """1 and 300 calls held for the same time: the same number of status reads, and each
    call reads its whole job twice (when it starts and at its deadline), not once a poll."""
    async def held(calls: int) -> tuple[int, int]:
        store = CountingSqliteStore.open(tmp_path / f"{calls}.db")
        try:
            ids = await _submit(store, calls)
            store.gets = store.status_reads = 0
            waiter = JobWaiter(store, poll_s=POLL_S)
            jobs = await asyncio.gather(*(waiter.wait(job_id, timeout=1.0) for job_id in ids))
            assert {j.status if j else None for j in jobs} == {JobStatus.QUEUED}
            return store.gets, store.status_reads
        finally:
            store.close()

    async def run() -> None:
        one_gets, one_reads = await held(1)
        many_gets, many_reads = await held(300)
        assert (one_gets, many_gets) == (2, 600)
        assert 5 <= one_reads <= 11 and 5 <= many_reads <= 11  # about 1.0 s / POLL_S each

    asyncio.run(run())


def test_a_gone_job_ends_its_wait(tmp_path: Path) -> None:
    """A job deleted while held (retention) is seen absent by the interval read: None."""
    async def run() -> None:
        store = SqliteStore.open(tmp_path / "t.db")
        try:
            [job_id] = await _submit(store, 1)
            wait = asyncio.create_task(JobWaiter(store, poll_s=POLL_S).wait(job_id, timeout=30))
            await asyncio.sleep(0.3)
            await store.delete(job_id)
            started = time.monotonic()
            assert await wait is None
            assert time.monotonic() - started < POLL_S + 1.0
        finally:
            store.close()

    asyncio.run(run())


def test_a_held_segmind_call_reads_its_job_only_at_start_and_deadline(tmp_path: Path) -> None:
    """The segmind route checks its caller's connection every second beside one wait, not by
    ending the wait each second (each wait reads the job when it starts and when it ends)."""
    from types import SimpleNamespace
    from typing import Any

    from starlette.requests import Request

    from takeone.edge.dialects.segmind.routes import DISCONNECT_CHECK_S, _wait_while_connected

    async def connected() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def run() -> None:
        store = CountingSqliteStore.open(tmp_path / "t.db")
        try:
            [job_id] = await _submit(store, 1)
            store.gets = 0
            services = SimpleNamespace(waiter=JobWaiter(store, poll_s=POLL_S))
            request = Request({"type": "http", "method": "POST", "path": "/v1/kling-2.6", "headers": []}, connected)
            job = await _wait_while_connected(request, services, job_id, 2.5 * DISCONNECT_CHECK_S)  # type: ignore[arg-type]
            assert job is not None and job.status is JobStatus.QUEUED
            assert store.gets == 2
        finally:
            store.close()

    asyncio.run(run())
