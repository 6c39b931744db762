"""The PostgreSQL store as replicas use it: two store objects on one database (two API
processes), submits and claims racing, notifications across them, a server that restarts or
crashes under them, and schema migrations run twice or at once. The contract both backends
share is in test_store_contract.py."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import psycopg
import pytest

from benchmarks.services.postgres import PostgresServer, free_port
from takeone.backends.postgres.db import SCHEMA_VERSION, upgrade
from takeone.backends.postgres.store import PostgresStore
from takeone.core.errors import InsufficientCredits, RateLimited, StoreUnavailable
from takeone.core.jobs import Job, JobStatus, SubmitLimits
from takeone.core.task import VideoTask

pytestmark = pytest.mark.postgres


def _job(key_id: str, name: str, price: float = 1.0) -> Job:
    return Job(id=name, key_id=key_id, task=VideoTask(kind="t2v", prompt=name), price=price,
               status=JobStatus.QUEUED, created_at=time.time(), dialect="segmind")


@pytest.fixture()
def replicas(pg_url: str) -> Iterator[tuple[PostgresStore, PostgresStore]]:
    one, two = PostgresStore.open(pg_url, max_size=6), PostgresStore.open(pg_url, max_size=6)
    yield one, two
    one.close()
    two.close()


def test_concurrent_submits_on_two_replicas_accept_exactly_what_the_balance_covers(
        replicas: tuple[PostgresStore, PostgresStore]) -> None:
    one, two = replicas

    async def go() -> None:
        key = (await one.create(3.0)).key.id

        async def submit(n: int) -> str:
            store = one if n % 2 else two
            try:
                await store.submit(_job(key, f"j{n}"), SubmitLimits(None, 1000))
                return "accepted"
            except InsufficientCredits:
                return "refused"
        outcomes = await asyncio.gather(*(submit(n) for n in range(12)))
        assert outcomes.count("accepted") == 3 and outcomes.count("refused") == 9
        k = await two.get_key(key)
        assert (k.balance, k.reserved) == (0.0, 3.0)
        assert len(await one.queued_ids()) == 3

    asyncio.run(go())


def test_the_queue_bound_and_concurrency_cap_hold_across_replicas(
        replicas: tuple[PostgresStore, PostgresStore]) -> None:
    one, two = replicas

    async def go() -> None:
        keys = [(await one.create(10.0)).key.id for _ in range(10)]

        async def submit(n: int, key: str, limits: SubmitLimits) -> bool:
            try:
                await (one if n % 2 else two).submit(_job(key, f"q{n}"), limits)
                return True
            except RateLimited:
                return False
        accepted = await asyncio.gather(*(submit(n, keys[n], SubmitLimits(None, 4)) for n in range(10)))
        assert sum(accepted) == 4 and len(await one.queued_ids()) == 4  # exactly the bound
        capped = await asyncio.gather(*(submit(100 + n, keys[9], SubmitLimits(2, 1000)) for n in range(8)))
        assert sum(capped) == 2 - (1 if accepted[9] else 0)

    asyncio.run(go())


def test_two_replicas_claiming_at_once_never_share_a_job(replicas: tuple[PostgresStore, PostgresStore]) -> None:
    one, two = replicas

    async def go() -> None:
        key = (await one.create(100.0)).key.id
        for n in range(30):
            await one.submit(_job(key, f"c{n:02d}"), SubmitLimits(None, 1000))

        async def worker(store: PostgresStore, name: str) -> list[str]:
            got = []
            while (job := await store.claim(name, 30)) is not None:
                assert job.worker == name
                got.append(job.id)
            return got
        claims = await asyncio.gather(*(worker(one if n % 2 else two, f"w/{n}") for n in range(8)))
        every = [job_id for got in claims for job_id in got]
        assert sorted(every) == [f"c{n:02d}" for n in range(30)]  # each exactly once
        for got in claims:
            assert got == sorted(got)  # each worker took them oldest first

    asyncio.run(go())


def test_completions_racing_a_revocation_settle_every_price_once(
        replicas: tuple[PostgresStore, PostgresStore]) -> None:
    """Completion locks key then job, like revocation: no deadlock, and each price is either
    committed (delivered before the revocation) or released (failed by it), never both."""
    one, two = replicas

    async def go() -> None:
        key = (await one.create(20.0)).key.id
        for n in range(10):
            await one.submit(_job(key, f"r{n}"), SubmitLimits(None, 100))
            await one.claim(f"w/{n}", 30)
        done = [two.complete(f"r{n}", "out.mp4", {}) for n in range(10)]
        await asyncio.gather(*done[:5], one.revoke(key), *done[5:])
        states = [(await one.get(f"r{n}")).status for n in range(10)]  # type: ignore[union-attr]
        completed = states.count(JobStatus.COMPLETED)
        assert completed + states.count(JobStatus.FAILED) == 10
        k = await one.get_key(key)
        assert k.revoked and (k.balance, k.reserved) == (20.0 - completed, 0.0)

    asyncio.run(go())


def test_notifications_reach_a_listener_of_another_replica(replicas: tuple[PostgresStore, PostgresStore]) -> None:
    one, two = replicas
    heard: list[tuple[str, str]] = []
    event = threading.Event()

    def listen(job_id: str, status: str) -> None:
        heard.append((job_id, status))
        if status == "COMPLETED":
            event.set()
    two.add_listener(listen)
    assert two.listener.wait_listening(10)

    async def go() -> None:
        key = (await one.create(5.0)).key.id
        await one.submit(_job(key, "n1"), SubmitLimits(None, 10))
        await one.claim("w", 30)
        await one.complete("n1", "out.mp4", {})

    asyncio.run(go())
    assert event.wait(10)
    assert heard == [("n1", "QUEUED"), ("n1", "PROCESSING"), ("n1", "COMPLETED")]
    assert two.listener.alive() and not one.listener.alive()  # started by the first callback
    two.close()
    assert not two.listener.alive()


def _until_available(store: PostgresStore, deadline_s: float = 30.0) -> float:
    """Seconds until the store answers again (the pool reconnecting by itself)."""
    start = time.monotonic()
    while True:
        try:
            asyncio.run(store.ping())
            return time.monotonic() - start
        except StoreUnavailable:
            if time.monotonic() - start > deadline_s:
                raise
            time.sleep(0.2)


def test_a_restarted_or_crashed_server_is_unavailable_then_the_same_store_works_again() -> None:
    with PostgresServer() as server:
        url = server.new_database()
        store = PostgresStore.open(url, pool_timeout_s=1.5)
        heard: list[tuple[str, str]] = []
        store.add_listener(lambda job_id, status: heard.append((job_id, status)))
        key = asyncio.run(store.create(10.0)).key.id
        try:
            for n, stop in enumerate((lambda: server.stop("fast"), server.kill)):
                assert store.listener.wait_listening(10)
                stop()
                with pytest.raises(StoreUnavailable, match=r"PostgreSQL at 127\.0\.0\.1:\d+/t_\w+\) is unavailable"):
                    asyncio.run(store.submit(_job(key, f"down{n}"), SubmitLimits(None, 10)))
                with pytest.raises(StoreUnavailable):
                    asyncio.run(store.ping())
                server.start()
                _until_available(store)
                assert store.listener.wait_listening(10)  # it reconnected by itself
                asyncio.run(store.submit(_job(key, f"up{n}"), SubmitLimits(None, 10)))
                assert asyncio.run(store.get(f"down{n}")) is None  # the refused one left nothing
                assert asyncio.run(store.balance(key)) == 10.0 - (n + 1)
                deadline = time.monotonic() + 10
                while (f"up{n}", "QUEUED") not in heard:
                    assert time.monotonic() < deadline, f"the listener heard nothing after the restart: {heard}"
                    time.sleep(0.05)
        finally:
            store.close()


def test_migrations_twice_or_at_once_are_harmless(pg_url: str) -> None:
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(upgrade(pg_url))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [SCHEMA_VERSION] * 4 and upgrade(pg_url) == SCHEMA_VERSION
    stores = [PostgresStore.open(pg_url), PostgresStore.open(pg_url, check=True)]
    with psycopg.connect(pg_url) as conn:
        versions = conn.execute("SELECT version FROM schema_version ORDER BY version").fetchall()
    assert versions == [(v,) for v in range(1, SCHEMA_VERSION + 1)]
    for store in stores:
        store.close()


def test_a_newer_schema_is_refused(pg_url: str) -> None:
    upgrade(pg_url)
    with psycopg.connect(pg_url) as conn:
        conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreUnavailable, match="newer than this takeone"):
        PostgresStore.open(pg_url)


def test_an_unreachable_server_is_named_without_the_password() -> None:
    port = free_port()
    url = f"postgresql://takeone:s3cretpw@127.0.0.1:{port}/jobs"
    started = time.monotonic()
    with pytest.raises(StoreUnavailable, match=f"cannot reach PostgreSQL at 127.0.0.1:{port}/jobs") as refused:
        PostgresStore.open(url)
    assert "s3cretpw" not in str(refused.value) and time.monotonic() - started < 10
    with pytest.raises(StoreUnavailable):
        upgrade(url)


def test_a_locked_store_fails_the_ping_quickly_and_reads_go_on(pg_url: str) -> None:
    store = PostgresStore.open(pg_url)
    try:
        key = asyncio.run(store.create(10.0)).key.id
        with psycopg.connect(pg_url) as other:
            other.execute("SELECT * FROM meta FOR UPDATE")  # held until the block ends
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="cannot take writes: canceling statement"):
                asyncio.run(store.ping())
            assert time.monotonic() - started < 5
            assert asyncio.run(store.balance(key)) == 10.0
        asyncio.run(store.ping())
    finally:
        store.close()


def test_version_2_counts_its_jobs_on_upgrade(pg_url: str) -> None:
    """Version 3 keeps each status's count; the jobs stored before it are counted once."""
    from takeone.backends.postgres.db import MIGRATIONS

    with psycopg.connect(pg_url, autocommit=True) as conn:
        with conn.transaction():
            for statement in MIGRATIONS[0] + MIGRATIONS[1]:
                conn.execute(statement)
            conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
            conn.execute("INSERT INTO schema_version (version) VALUES (1), (2)")
        for n, status in enumerate(("QUEUED", "QUEUED", "COMPLETED")):
            conn.execute("INSERT INTO jobs (id, key_id, endpoint, request, price, charge, status,"
                         " created_at) VALUES (%s, 'k', 'r', %s, 1, 'reserved', %s, 1)",
                         (f"j{n}", '{"kind": "t2v", "prompt": "p"}', status))
    store = PostgresStore.open(pg_url)
    try:
        assert asyncio.run(store.counts()) == {"COMPLETED": 1, "QUEUED": 2}
        asyncio.run(store.claim("h/1/0", 30))
        assert asyncio.run(store.counts()) == {"COMPLETED": 1, "PROCESSING": 1, "QUEUED": 1}
        assert asyncio.run(store.get("j2")).dialect == "segmind"  # type: ignore[union-attr]
        assert asyncio.run(store.queue_counts("k")) == (1, 1)  # version 4 counted each key's queue
        assert asyncio.run(store.queue_position("j1")) == 1
    finally:
        store.close()
    with psycopg.connect(pg_url) as conn:  # version 4: no dialect is the column's default any more
        row = conn.execute("SELECT column_default FROM information_schema.columns"
                           " WHERE table_name = 'jobs' AND column_name = 'dialect'").fetchone()
    assert row == (None,)
