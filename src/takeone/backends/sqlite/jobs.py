"""Jobs, leases and worker reports in SQLite (synchronous; :mod:`.store` makes it async).

See :class:`takeone.core.jobs.JobStore` for the contract. Every state change goes through
:meth:`SqliteJobs._transition`, which checks it against :class:`JobStatus`; settling the
price happens in the same transaction as the change that decides it.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from takeone.backends.queue_order import FAIR_ORDER
from takeone.backends.sql import listing_query
from takeone.backends.sqlite import credits, outbox
from takeone.backends.sqlite.db import Database
from takeone.core.accounts import from_micro, to_micro
from takeone.core.errors import InvalidRequest, RateLimited
from takeone.core.jobs import (
    BATCH_SCAN,
    LOST_WORKER,
    BatchKey,
    Job,
    JobStatus,
    SubmitLimits,
    WorkerStatus,
    check_queue,
    lease_lost,
    pick_batch,
    replays,
)
from takeone.core.task import VideoTask

ACTIVE = ("QUEUED", "PROCESSING")


def _row_to_job(row: sqlite3.Row) -> Job:
    return Job(
        id=row["id"],
        key_id=row["key_id"],
        task=VideoTask.from_dict(json.loads(row["request"])),
        route=row["endpoint"],
        price=from_micro(row["price"]),
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
        caller=row["caller"],
        worker=row["lease_owner"],
        request_hash=row["request_hash"],
        dialect=row["dialect"],
        webhook_url=row["webhook_url"],
        external_id=row["external_id"],
        meta=json.loads(row["meta"]),
    )


def transition(conn: sqlite3.Connection, job_id: str, new: JobStatus) -> bool:
    """The one place a job's status changes: only along :class:`JobStatus`'s transitions."""
    row = conn.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()
    if row is None or not JobStatus(row["status"]).can_become(new):
        return False
    conn.execute("UPDATE jobs SET status = ? WHERE id = ?", (new.value, job_id))
    outbox.record(conn, job_id, new)  # the webhook delivery commits with the change
    return True


def fail_in(conn: sqlite3.Connection, job_id: str, error: str, now: float) -> bool:
    """-> FAILED and release the price, inside the caller's transaction; False if finished."""
    if not transition(conn, job_id, JobStatus.FAILED):
        return False
    conn.execute("UPDATE jobs SET error = ?, finished_at = ?, lease_owner = NULL,"
                 " lease_expires_at = NULL WHERE id = ?", (error, now, job_id))
    credits.settle(conn, job_id, "released", now)
    return True


def _replay(conn: sqlite3.Connection, existing: Job, new: Job, idem: str) -> bool:
    """True: answer with ``existing`` (see :func:`replays`); False after freeing the key."""
    if replays(existing, new, idem):
        return True
    conn.execute("UPDATE jobs SET idempotency_key = NULL WHERE id = ?", (existing.id,))
    return False


def check_external_id(conn: sqlite3.Connection, job: Job) -> None:
    """A client's own id names one job of its key in one dialect, for as long as it is kept."""
    if job.external_id is None:
        return
    row = conn.execute("SELECT id FROM jobs WHERE key_id = ? AND dialect = ? AND external_id = ?",
                       (job.key_id, job.dialect, job.external_id)).fetchone()
    if row is not None:
        raise InvalidRequest("external_id", job.external_id, f"is already the id of task {row['id']}")


class SqliteJobs:
    """Jobs and their reservations in the embedded database.

    Example::

        jobs = SqliteJobs(Database(path), clock=time.time)
        job = jobs.submit(job, SubmitLimits(max_concurrent=None, max_queue=100))
        running = jobs.claim("host/123/0", lease_s=30)
    """

    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    # -- submit ------------------------------------------------------------------------------

    def submit(self, job: Job, limits: SubmitLimits, idempotency_key: str | None = None) -> Job:
        with self.db.transaction() as conn:
            if idempotency_key is not None:
                existing = self._by_idempotency(conn, job.key_id, idempotency_key)
                if existing is not None and _replay(conn, existing, job, idempotency_key):
                    return existing
            self._check_capacity(conn, job.key_id, limits)
            check_external_id(conn, job)
            self._insert(conn, job, idempotency_key)
            credits.reserve(conn, job.key_id, job.id, to_micro(job.price), job.created_at)
        return job

    def _by_idempotency(self, conn: sqlite3.Connection, key_id: str, idem: str) -> Job | None:
        row = conn.execute(
            "SELECT * FROM jobs WHERE key_id = ? AND idempotency_key = ?", (key_id, idem)
        ).fetchone()
        return _row_to_job(row) if row else None

    def _check_capacity(self, conn: sqlite3.Connection, key_id: str, limits: SubmitLimits) -> None:
        row = conn.execute("SELECT n FROM job_counts WHERE status = 'QUEUED'").fetchone()
        queued = row[0] if row is not None else 0
        mine = conn.execute("SELECT COUNT(*) FROM jobs WHERE status = 'QUEUED' AND key_id = ?",
                            (key_id,)).fetchone()[0]
        check_queue(limits, queued, mine)
        if limits.max_concurrent is None:
            return
        active = conn.execute(
            "SELECT COUNT(*) FROM jobs WHERE key_id = ? AND status IN (?, ?)", (key_id, *ACTIVE)
        ).fetchone()[0]
        if active >= limits.max_concurrent:
            raise RateLimited(
                f"concurrent-request limit reached: this key may have {limits.max_concurrent} jobs"
                " queued or running at once", 5)

    def _insert(self, conn: sqlite3.Connection, job: Job, idem: str | None) -> None:
        conn.execute(
            "INSERT INTO jobs (id, key_id, endpoint, request, price, charge, status, blocking,"
            " idempotency_key, created_at, caller, request_hash, dialect, webhook_url, external_id,"
            " meta) VALUES (?, ?, ?, ?, ?, 'reserved', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job.id, job.key_id, job.route, json.dumps(job.task.to_dict()), to_micro(job.price),
             job.status.value, int(job.blocking), idem, job.created_at, job.caller, job.request_hash,
             job.dialect, job.webhook_url, job.external_id, json.dumps(job.meta)),
        )

    # -- reads -------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        row = self.db.query_one("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _row_to_job(row) if row else None

    def job_exists(self, job_id: str) -> bool:
        return self.db.query_one("SELECT 1 FROM jobs WHERE id = ?", (job_id,)) is not None

    def queue_position(self, job_id: str) -> int | None:
        """1 for the next job to run; None unless the job is QUEUED (one query: polls are hot)."""
        row = self.db.query_one(
            # Two index ranges (no OR: an OR kept SQLite off jobs_status and read every queued job).
            "SELECT 1 + (SELECT COUNT(*) FROM jobs j WHERE j.status = 'QUEUED'"
            " AND j.created_at < me.created_at)"
            " + (SELECT COUNT(*) FROM jobs j WHERE j.status = 'QUEUED'"
            " AND j.created_at = me.created_at AND j.id < me.id)"
            " AS position FROM jobs me WHERE me.id = ? AND me.status = 'QUEUED'",
            (job_id,),
        )
        return int(row["position"]) if row else None

    def queued_ids(self) -> list[str]:
        rows = self.db.query("SELECT id FROM jobs WHERE status = 'QUEUED' ORDER BY created_at, id")
        return [r["id"] for r in rows]

    def counts(self) -> dict[str, int]:
        """Kept by triggers in each status change's transaction: no scan of the jobs table."""
        rows = self.db.query("SELECT status, n FROM job_counts WHERE n > 0")
        return {r["status"]: int(r["n"]) for r in rows}

    def recent_for_key(self, key_id: str, limit: int) -> list[Job]:
        rows = self.db.query(
            "SELECT * FROM jobs WHERE key_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
            (key_id, limit),
        )
        return [_row_to_job(r) for r in rows]

    def jobs_for_key(self, key_id: str, dialect: str, limit: int, offset: int = 0,
                     after: str | None = None, ascending: bool = False,
                     route: str | None = None) -> list[Job]:
        rows = self.db.query(*listing_query("?", key_id, dialect, limit, offset, after, ascending, route))
        return [_row_to_job(r) for r in rows]

    def queue_counts(self, key_id: str) -> tuple[int, int]:
        row = self.db.query_one("SELECT COUNT(*) AS n, COALESCE(SUM(key_id = ?), 0) AS mine FROM jobs"
                                " WHERE status = 'QUEUED'", (key_id,))
        return (int(row["n"]), int(row["mine"])) if row else (0, 0)

    def find_idempotent(self, key_id: str, idempotency_key: str) -> Job | None:
        row = self.db.query_one("SELECT * FROM jobs WHERE key_id = ? AND idempotency_key = ?",
                                (key_id, idempotency_key))
        return _row_to_job(row) if row else None

    def find_external(self, key_id: str, dialect: str, external_id: str) -> Job | None:
        row = self.db.query_one("SELECT * FROM jobs WHERE key_id = ? AND dialect = ? AND external_id = ?",
                                (key_id, dialect, external_id))
        return _row_to_job(row) if row else None

    def expired(self, before: float, limit: int) -> list[Job]:
        rows = self.db.query(
            # The finish-time index, walked in order and left after a page (without statistics the
            # planner would take jobs_status and sort every finished job for each page).
            "SELECT * FROM jobs INDEXED BY jobs_finished WHERE status IN ('COMPLETED', 'FAILED')"
            " AND finished_at < ? AND NOT EXISTS (SELECT 1 FROM webhook_outbox o WHERE o.job_id = jobs.id"
            " AND o.done_at IS NULL) ORDER BY finished_at LIMIT ?",
            (before, limit),
        )
        return [_row_to_job(r) for r in rows]

    # -- leases ------------------------------------------------------------------------------

    def claim(self, owner: str, lease_s: float) -> Job | None:
        with self.db.transaction() as conn:
            row = conn.execute(f"SELECT id FROM jobs j WHERE status = 'QUEUED' {FAIR_ORDER} LIMIT 1").fetchone()
            if row is None:
                return None
            now = self.clock()
            conn.execute(
                "UPDATE jobs SET status = 'PROCESSING', started_at = ?, progress = 0,"
                " attempts = attempts + 1, lease_owner = ?, lease_expires_at = ? WHERE id = ?",
                (now, owner, now + lease_s, row["id"]),
            )
            outbox.record(conn, row["id"], JobStatus.PROCESSING)
        return self.get(row["id"])

    def claim_batch(self, owner: str, lease_s: float, limit: int, key: BatchKey) -> list[Job]:
        """The job served next and its compatible company, claimed in one transaction."""
        with self.db.transaction() as conn:
            rows = conn.execute(f"SELECT * FROM jobs j WHERE status = 'QUEUED' {FAIR_ORDER} LIMIT ?",
                                (BATCH_SCAN,)).fetchall()
            chosen = pick_batch([_row_to_job(r) for r in rows], key, limit)
            now = self.clock()
            for job in chosen:
                conn.execute(
                    "UPDATE jobs SET status = 'PROCESSING', started_at = ?, progress = 0,"
                    " attempts = attempts + 1, lease_owner = ?, lease_expires_at = ? WHERE id = ?",
                    (now, owner, now + lease_s, job.id),
                )
                outbox.record(conn, job.id, JobStatus.PROCESSING)
        return [claimed for job in chosen if (claimed := self.get(job.id)) is not None]

    def renew(self, job_id: str, owner: str, lease_s: float, progress: float | None = None) -> bool:
        with self.db.transaction() as conn:
            cur = conn.execute(
                "UPDATE jobs SET lease_expires_at = ?, progress = COALESCE(?, progress)"
                " WHERE id = ? AND status = 'PROCESSING' AND lease_owner = ?",
                (self.clock() + lease_s, progress, job_id, owner),
            )
        return cur.rowcount == 1

    def expire_leases(self, max_attempts: int, is_dead: Callable[[str], bool],
                      keep: frozenset[str] = frozenset()) -> list[Job]:
        rows = self.db.query(
            "SELECT id, lease_owner, lease_expires_at FROM jobs WHERE status = 'PROCESSING'")
        now = self.clock()
        lost = [(r["id"], r["lease_owner"]) for r in rows
                if lease_lost(r["lease_owner"], r["lease_expires_at"], now, is_dead, keep)]
        return [job for job_id, owner in lost
                if (job := self.requeue(job_id, max_attempts, LOST_WORKER, owner=owner)) is not None]

    def fail_lost_callers(self, is_dead: Callable[[str], bool], reason: str) -> list[Job]:
        rows = self.db.query(
            "SELECT id, caller FROM jobs WHERE blocking = 1 AND status IN (?, ?)", ACTIVE)
        lost = [r["id"] for r in rows if r["caller"] is not None and is_dead(r["caller"])]
        return [job for job_id in lost if (job := self.fail(job_id, reason)) is not None]

    # -- endings -----------------------------------------------------------------------------

    def complete(self, job_id: str, output: str, metrics: dict[str, Any]) -> Job | None:
        with self.db.transaction() as conn:
            if not self._transition(conn, job_id, JobStatus.COMPLETED):
                return None
            conn.execute(
                "UPDATE jobs SET output = ?, metrics = ?, progress = 1, finished_at = ?,"
                " lease_owner = NULL, lease_expires_at = NULL WHERE id = ?",
                (output, json.dumps(metrics), self.clock(), job_id),
            )
            credits.settle(conn, job_id, "committed", self.clock())
        return self.get(job_id)

    def fail(self, job_id: str, error: str) -> Job | None:
        with self.db.transaction() as conn:
            if not fail_in(conn, job_id, error, self.clock()):
                return None
        return self.get(job_id)

    def requeue(self, job_id: str, max_attempts: int, error: str,
                owner: str | None = None) -> Job | None:
        """``owner`` given: only if the lease is still that owner's (no double requeue)."""
        job = self.get(job_id)
        if job is None or job.status is not JobStatus.PROCESSING:
            return None
        if owner is not None and job.worker != owner:
            return None
        if job.blocking or job.attempts >= max_attempts:
            return self.fail(job_id, error)
        with self.db.transaction() as conn:
            if not self._transition(conn, job_id, JobStatus.QUEUED):
                return None
            conn.execute("UPDATE jobs SET progress = 0, lease_owner = NULL, lease_expires_at = NULL"
                         " WHERE id = ?", (job_id,))
        return self.get(job_id)

    def _transition(self, conn: sqlite3.Connection, job_id: str, new: JobStatus) -> bool:
        return transition(conn, job_id, new)

    def delete(self, job_id: str) -> None:
        with self.db.transaction() as conn:
            conn.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            outbox.forget_job(conn, job_id)

    # -- workers -----------------------------------------------------------------------------

    def report_worker(self, status: WorkerStatus) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO workers (id, profile, state, device, job_id, error, pid,"
                " seen_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (status.id, status.profile, status.state, status.device, status.job_id,
                 status.error, status.pid, status.seen_at),
            )

    def workers(self) -> list[WorkerStatus]:
        rows = self.db.query("SELECT * FROM workers ORDER BY id")
        return [WorkerStatus(id=r["id"], profile=r["profile"], state=r["state"],
                             seen_at=r["seen_at"], device=r["device"], job_id=r["job_id"],
                             error=r["error"], pid=r["pid"]) for r in rows]
