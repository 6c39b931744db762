"""The SQL store's shape: the rules written once, the async face made from the protocol, and
drivers that hold only what differs between databases."""

from __future__ import annotations

import asyncio
import inspect
import re
from pathlib import Path
from typing import Protocol

import pytest

import takeone.backends
from takeone.backends.postgres.driver import PostgresDriver
from takeone.backends.sql.driver import DRIVER_PARTS, REQUIRED_DRIVER_PARTS, Driver
from takeone.backends.sql.store import SqlStore
from takeone.backends.sqlite.driver import SqliteDriver
from takeone.backends.sqlite.store import SqliteStore
from takeone.backends.threaded import ThreadedStore, build_face, store_methods
from takeone.core.jobs import Job, JobStatus, SubmitLimits
from takeone.core.store import ROLES, Store
from takeone.core.task import VideoTask

BACKENDS = Path(takeone.backends.__file__).parent


def test_every_store_method_is_an_async_call_of_the_sql_rules_of_the_same_name() -> None:
    names = store_methods()
    assert len(names) == 44 and {"claim_batch", "pin_secret", "statuses"} <= set(names)
    by_role = [store_methods(role) for role in ROLES]
    assert sorted(name for role in by_role for name in role) == names  # each method in one role
    for name in names:
        face = getattr(ThreadedStore, name)
        assert inspect.iscoroutinefunction(face), name
        wanted = list(inspect.signature(getattr(Store, name)).parameters)
        assert list(inspect.signature(getattr(SqlStore, name)).parameters) == wanted, name


def test_a_rules_class_missing_a_method_or_a_parameter_is_refused() -> None:
    class Small(Protocol):
        async def get(self, job_id: str) -> Job | None: ...

    class Face:
        pass

    class Missing:
        pass

    class OtherParameters:
        def get(self, job: str) -> None: ...

    for rules in (Missing, OtherParameters):
        with pytest.raises(TypeError, match="must take the parameters of Small.get"):
            build_face(Face, rules, Small)
    build_face(Face, SqlStore, Small)
    assert inspect.iscoroutinefunction(vars(Face)["get"])


def test_the_face_runs_each_call_in_a_thread_and_maps_the_drivers_failures(tmp_path: Path) -> None:
    store = SqliteStore.open(tmp_path / "t.db")
    try:
        key = asyncio.run(store.create(5)).key
        job = Job(id="j1", key_id=key.id, task=VideoTask(kind="t2v"), price=1.0, status=JobStatus.QUEUED,
                  created_at=1.0, dialect="segmind")
        asyncio.run(store.submit(job, SubmitLimits(None, 10)))
        assert asyncio.run(store.get("j1")) == store.sync.get("j1")
    finally:
        store.close()
    from takeone.core.errors import StoreUnavailable

    with pytest.raises(StoreUnavailable, match="the job store is unavailable"):
        asyncio.run(store.get("j1"))  # a closed database: sqlite3's error, mapped


def test_drivers_define_only_driver_parts() -> None:
    own = {"pool", "where"}  # the PostgreSQL driver's pool and where it points, for messages
    for driver in (SqliteDriver, PostgresDriver):
        defined = {name for name in vars(driver) if not name.startswith("__")}
        assert defined <= set(DRIVER_PARTS) | own, (driver.__name__, defined - set(DRIVER_PARTS))
    assert REQUIRED_DRIVER_PARTS == ("begin", "connection", "failure", "probe", "close")
    for required in REQUIRED_DRIVER_PARTS:
        assert getattr(SqliteDriver, required) is not getattr(Driver, required)
        assert getattr(PostgresDriver, required) is not getattr(Driver, required)


def test_a_jobs_status_is_written_in_one_place() -> None:
    writes = {path.relative_to(BACKENDS).as_posix(): len(re.findall(r"UPDATE jobs SET status", path.read_text()))
              for path in BACKENDS.rglob("*.py")}
    assert {path: n for path, n in writes.items() if n} == {"sql/status.py": 1}


def test_no_dialect_is_a_default_of_a_new_database_or_a_job(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="dialect"):
        Job(id="j", key_id="k", task=VideoTask(kind="t2v"), price=1.0, status=JobStatus.QUEUED,  # type: ignore[call-arg]
            created_at=1.0)
    db = SqliteDriver(tmp_path / "new.db")
    try:
        with db.connection() as conn:
            column = [r for r in conn.execute("PRAGMA table_info(jobs)") if r["name"] == "dialect"]
        assert [(r["notnull"], r["dflt_value"]) for r in column] == [(1, None)]
    finally:
        db.close()


def test_a_version_6_database_counts_each_keys_queue_on_upgrade(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "v6.db"
    SqliteDriver(path).close()
    with sqlite3.connect(path) as conn:  # what version 6 had: no per-key counts
        for trigger in ("key_queue_insert", "key_queue_delete", "key_queue_update"):
            conn.execute(f"DROP TRIGGER {trigger}")
        conn.execute("DROP TABLE key_queue")
        conn.execute("DROP INDEX jobs_key_queued")
        for n, (key, status) in enumerate((("a", "QUEUED"), ("a", "QUEUED"), ("b", "QUEUED"), ("b", "FAILED"))):
            conn.execute("INSERT INTO jobs (id, key_id, endpoint, request, price, charge, status, created_at,"
                         " dialect) VALUES (?, ?, 'r', '{\"kind\": \"t2v\"}', 0, 'reserved', ?, ?, 'segmind')",
                         (f"j{n}", key, status, 1000.0 + n))
        conn.execute("PRAGMA user_version = 6")
    store = SqlStore(SqliteDriver(path))
    try:
        assert store.queue_counts("a") == (3, 2) and store.queue_counts("b") == (3, 1)
        assert [store.queue_position(f"j{n}") for n in range(4)] == [1, 3, 2, None]  # a, b, then a again
    finally:
        store.close()
