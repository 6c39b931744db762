"""The embedded job store on SQLite (see :mod:`takeone.core.jobs` for the contract)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from takeone.accounts import credits
from takeone.backends.sqlite.db import Database
from takeone.core.errors import RateLimited
from takeone.core.task import VideoTask
from takeone.core.jobs import Job, JobStatus

ACTIVE = ("QUEUED", "PROCESSING")


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        key_id=row["key_id"],
        task=VideoTask.from_dict(json.loads(row["request"])),
        route=row["endpoint"],
        price=credits.from_micro(row["price"]),
        status=JobStatus(row["status"]),
        created_at=row["created_at"],
        blocking=bool(row["blocking"]),
        progress=row["progress"],
        attempts=row["attempts"],
        error=row["error"],
        output=row["output"],
        metrics=json.loads(row["metrics"]),
        started_at=row["started_at"],
        finished_at=row["finished_at"],
    )


class SqliteJobStore:
    """Jobs and their reservations in the embedded database.

    Example::

        store = SqliteJobStore(Database(path), clock=time.time)
        job = store.submit(job, max_concurrent=None, max_queue=100)
    """

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    def submit(self, job: Job, max_concurrent: int | None, max_queue: int,
               idempotency_key: str | None = None) -> Job:
        with self.db.transaction() as conn:
            if idempotency_key is not None:
                existing = self._by_idempotency(conn, job.key_id, idempotency_key)
                if existing is not None:
                    return existing
            self._check_capacity(conn, job.key_id, max_concurrent, max_queue)
            self._insert(conn, job, idempotency_key)
            credits.reserve(conn, job.key_id, job.id, credits.to_micro(job.price), job.created_at)
        return job

    def _by_idempotency(self, conn: sqlite3.Connection, key_id: str, idem: str) -> Job | None:
        row = conn.execute(
            "SELECT * FROM jobs WHERE key_id = ? AND idempotency_key = ?", (key_id, idem)
        ).fetchone()
        return _row_to_job(row) if row else None

    def _check_capacity(self, conn: sqlite3.Connection, key_id: str,
                        max_concurrent: int | None, max_queue: int) -> None:
        queued = conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'QUEUED'").fetchone()[0]
        if queued >= max_queue:
            raise RateLimited(f"the queue is full ({max_queue} jobs waiting); retry later", 30)
        if max_concurrent is None:
            return
        active = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE key_id = ? AND status IN (?, ?)", (key_id, *ACTIVE)
        ).fetchone()[0]
        if active >= max_concurrent:
            raise RateLimited(
                f"concurrent-request limit reached: this key may have {max_concurrent} jobs"
                " queued or running at once", 5)

    def _insert(self, conn: sqlite3.Connection, job: Job, idem: str | None) -> None:
        conn.execute(
            "INSERT INTO jobs (id, key_id, endpoint, request, price, charge, status, blocking,"
            " idempotency_key, created_at) VALUES (?, ?, ?, ?, ?, 'reserved', ?, ?, ?, ?)",
            (job.id, job.key_id, job.route, json.dumps(job.task.to_dict()),
             credits.to_micro(job.price), job.status.value, int(job.blocking), idem,
             job.created_at),
        )

    def get(self, job_id: str) -> Job | None:
        row = self.db.query_one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _row_to_job(row) if row else None

    def claim_next(self) -> Job | None:
        with self.db.transaction() as conn:
            row = conn.execute(
                "SELECT id FROM jobs WHERE status = 'QUEUED' ORDER BY created_at, id LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET status = 'PROCESSING', started_at = ?, progress = 0,"
                " attempts = attempts + 1 WHERE id = ?",
                (self.clock(), row["id"]),
            )
        return self.get(row["id"])

    def set_progress(self, job_id: str, progress: float) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE jobs SET progress = ? WHERE id = ? AND status = 'PROCESSING'",
                (progress, job_id),
            )

    def complete(self, job_id: str, output: str, metrics: dict[str, Any]) -> Job | None:
        with self.db.transaction() as conn:
            if not self._transition(conn, job_id, JobStatus.COMPLETED):
                return None
            conn.execute(
                "UPDATE jobs SET output = ?, metrics = ?, progress = 1, finished_at = ? WHERE id = ?",
                (output, json.dumps(metrics), self.clock(), job_id),
            )
            credits.settle(conn, job_id, "committed", self.clock())
        return self.get(job_id)

    def fail(self, job_id: str, error: str) -> Job | None:
        with self.db.transaction() as conn:
            if not self._transition(conn, job_id, JobStatus.FAILED):
                return None
            conn.execute(
                "UPDATE jobs SET error = ?, finished_at = ? WHERE id = ?",
                (error, self.clock(), job_id),
            )
            credits.settle(conn, job_id, "released", self.clock())
        return self.get(job_id)

    def requeue(self, job_id: str, max_attempts: int, error: str) -> Job | None:
        job = self.get(job_id)
        if job is None or job.status is not JobStatus.PROCESSING:
            return None
        if job.blocking or job.attempts >= max_attempts:
            return self.fail(job_id, error)
        with self.db.transaction() as conn:
            if not self._transition(conn, job_id, JobStatus.QUEUED):
                return None
            conn.execute("UPDATE jobs SET progress = 0 WHERE id = ?", (job_id,))
        return self.get(job_id)

    def _transition(self, conn: sqlite3.Connection, job_id: str, new: JobStatus) -> bool:
        row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
        if row is None or not JobStatus(row["status"]).can_become(new):
            return False
        conn.execute("UPDATE jobs SET status = ? WHERE id = ?", (new.value, job_id))
        return True

    def recover(self, max_attempts: int) -> list[Job]:
        """Blocking jobs lost their caller with the old process: fail them (credits back);
        queued-API jobs left running are retried while attempts remain."""
        touched: list[Job] = []
        for row in self.db.query("SELECT id, blocking, status FROM jobs WHERE status IN (?, ?)", ACTIVE):
            if row["blocking"]:
                job = self.fail(row["id"], "the server restarted before this blocking request finished")
            elif row["status"] == "PROCESSING":
                job = self.requeue(row["id"], max_attempts, "the server restarted while this job ran")
            else:
                continue
            if job is not None:
                touched.append(job)
        return touched

    def queue_position(self, job_id: str) -> int | None:
        """1 for the next job to run; None unless the job is QUEUED (one query: polls are hot)."""
        row = self.db.query_one(
            "SELECT 1 + (SELECT COUNT(*) FROM jobs j WHERE j.status = 'QUEUED' AND"
            " (j.created_at < me.created_at OR (j.created_at = me.created_at AND j.id < me.id)))"
            " AS position FROM jobs me WHERE me.id = ? AND me.status = 'QUEUED'",
            (job_id,),
        )
        return int(row["position"]) if row else None

    def queued_ids(self) -> list[str]:
        rows = self.db.query("SELECT id FROM jobs WHERE status = 'QUEUED' ORDER BY created_at, id")
        return [r["id"] for r in rows]

    def expired(self, before: float) -> list[Job]:
        rows = self.db.query(
            "SELECT * FROM jobs WHERE status IN ('COMPLETED', 'FAILED') AND finished_at < ?",
            (before,),
        )
        return [_row_to_job(r) for r in rows]

    def delete(self, job_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
