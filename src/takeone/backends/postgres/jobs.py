"""Jobs, leases and worker reports in PostgreSQL (synchronous; :mod:`.store` makes it async).

The contract is :class:`takeone.core.jobs.JobStore`, with the embedded store's semantics.
What differs is that many processes write at once, so:

- rows are locked in one order everywhere: the key's ``api_keys`` row first, then the job's
  row (:func:`lock_job`), so a revocation and a completion never deadlock;
- a submit locks its key's row (per-key concurrency cap, balance, idempotency key and
  external id are checked while no other replica can submit for that key) and then the
  queue lock (:data:`~takeone.backends.postgres.db.QUEUE_LOCK`, a transaction advisory
  lock), so the server-wide ``max_queue`` is exact: submits take turns for the few
  milliseconds between counting the queue and committing;
- a claim takes the oldest QUEUED row with ``FOR UPDATE SKIP LOCKED``: replicas claiming at
  once get different jobs and never wait on each other;
- every submit and status change sends ``NOTIFY takeone_jobs, '<job id> <STATUS>'`` in its
  own transaction (delivered on commit only).

Example::

    jobs = PostgresJobs(pool, clock=time.time)
    job = jobs.submit(job, SubmitLimits(max_concurrent=None, max_queue=100))
    running = jobs.claim("host/123/0", lease_s=30)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from psycopg.rows import DictRow
from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

from takeone.backends.postgres import credits, outbox
from takeone.backends.postgres.db import NOTIFY_CHANNEL, QUEUE_LOCK, Conn, query, query_one, transaction
from takeone.backends.queue_order import FAIR_ORDER
from takeone.backends.sql import listing_query
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

ACTIVE = ["QUEUED", "PROCESSING"]


def row_to_job(row: DictRow) -> Job:
    return Job(
        id=row["id"], key_id=row["key_id"], task=VideoTask.from_dict(row["request"]),
        route=row["endpoint"], price=from_micro(row["price"]), status=JobStatus(row["status"]),
        created_at=row["created_at"], blocking=bool(row["blocking"]), progress=row["progress"],
        attempts=row["attempts"], error=row["error"], output=row["output"], metrics=row["metrics"],
        started_at=row["started_at"], finished_at=row["finished_at"], caller=row["caller"],
        worker=row["lease_owner"], request_hash=row["request_hash"], dialect=row["dialect"],
        webhook_url=row["webhook_url"], external_id=row["external_id"], meta=row["meta"],
    )


def notify(conn: Conn, job_id: str, status: JobStatus) -> None:
    """Tell every listening process that ``job_id`` is now ``status`` (sent at commit)."""
    conn.execute("SELECT pg_notify(%s, %s)", (NOTIFY_CHANNEL, f"{job_id} {status.value}"))


def lock_key(conn: Conn, key_id: str) -> DictRow | None:
    return conn.execute("SELECT * FROM api_keys WHERE id = %s FOR UPDATE", (key_id,)).fetchone()


def lock_job(conn: Conn, job_id: str) -> DictRow | None:
    """The job's row, locked after its key's row (the one lock order)."""
    row = conn.execute("SELECT key_id FROM jobs WHERE id = %s", (job_id,)).fetchone()
    if row is None:
        return None
    lock_key(conn, row["key_id"])
    return conn.execute("SELECT * FROM jobs WHERE id = %s FOR UPDATE", (job_id,)).fetchone()


def transition(conn: Conn, job_id: str, new: JobStatus, now: float) -> bool:
    """The one place a job's status changes: only along :class:`JobStatus`'s transitions,
    with its webhook delivery and its notification in the same transaction."""
    row = lock_job(conn, job_id)
    if row is None or not JobStatus(row["status"]).can_become(new):
        return False
    conn.execute("UPDATE jobs SET status = %s WHERE id = %s", (new.value, job_id))
    outbox.record(conn, job_id, new, now)
    notify(conn, job_id, new)
    return True


def fail_in(conn: Conn, job_id: str, error: str, now: float) -> bool:
    """-> FAILED and release the price, inside the caller's transaction; False if finished."""
    if not transition(conn, job_id, JobStatus.FAILED, now):
        return False
    conn.execute("UPDATE jobs SET error = %s, finished_at = %s, lease_owner = NULL,"
                 " lease_expires_at = NULL WHERE id = %s", (error, now, job_id))
    credits.settle(conn, job_id, "released", now)
    return True


def _get_in(conn: Conn, job_id: str) -> Job | None:
    row = conn.execute("SELECT * FROM jobs WHERE id = %s", (job_id,)).fetchone()
    return row_to_job(row) if row else None


def _replay(conn: Conn, existing: Job, new: Job, idem: str) -> bool:
    """True: answer with ``existing`` (see :func:`replays`); False after freeing the key."""
    if replays(existing, new, idem):
        return True
    conn.execute("UPDATE jobs SET idempotency_key = NULL WHERE id = %s", (existing.id,))
    return False


def _check_external_id(conn: Conn, job: Job) -> None:
    """A client's own id names one job of its key in one dialect, for as long as it is kept."""
    if job.external_id is None:
        return
    row = conn.execute("SELECT id FROM jobs WHERE key_id = %s AND dialect = %s AND external_id = %s",
                       (job.key_id, job.dialect, job.external_id)).fetchone()
    if row is not None:
        raise InvalidRequest("external_id", job.external_id, f"is already the id of task {row['id']}")


def _check_capacity(conn: Conn, key_id: str, limits: SubmitLimits) -> None:
    conn.execute("SELECT pg_advisory_xact_lock(%s)", (QUEUE_LOCK,))
    queued = conn.execute("SELECT COALESCE(SUM(n), 0) AS n FROM job_counts WHERE status = 'QUEUED'").fetchone()
    mine = conn.execute("SELECT COUNT(*) AS n FROM jobs WHERE status = 'QUEUED' AND key_id = %s",
                        (key_id,)).fetchone()
    check_queue(limits, int(queued["n"]) if queued else 0, int(mine["n"]) if mine else 0)
    if limits.max_concurrent is None:
        return
    active = conn.execute("SELECT COUNT(*) AS n FROM jobs WHERE key_id = %s AND status = ANY(%s)",
                          (key_id, ACTIVE)).fetchone()
    if active is not None and active["n"] >= limits.max_concurrent:
        raise RateLimited(f"concurrent-request limit reached: this key may have {limits.max_concurrent} jobs"
                          " queued or running at once", 5)


def _insert(conn: Conn, job: Job, idem: str | None) -> None:
    conn.execute(
        "INSERT INTO jobs (id, key_id, endpoint, request, price, charge, status, blocking,"
        " idempotency_key, created_at, caller, request_hash, dialect, webhook_url, external_id,"
        " meta) VALUES (%s, %s, %s, %s, %s, 'reserved', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (job.id, job.key_id, job.route, Jsonb(job.task.to_dict()), to_micro(job.price), job.status.value,
         job.blocking, idem, job.created_at, job.caller, job.request_hash, job.dialect, job.webhook_url,
         job.external_id, Jsonb(job.meta)))


class PostgresJobs:
    """Jobs and their reservations in the shared database.

    Example::

        jobs = PostgresJobs(pool, clock=time.time)
        jobs.complete("req_1", "outputs/req_1.mp4", {"seconds": 41.0})
    """

    def __init__(self, pool: ConnectionPool[Conn], clock: Callable[[], float]) -> None:
        self.pool = pool
        self.clock = clock

    # -- submit ------------------------------------------------------------------------------

    def submit(self, job: Job, limits: SubmitLimits, idempotency_key: str | None = None) -> Job:
        with transaction(self.pool) as conn:
            lock_key(conn, job.key_id)
            if idempotency_key is not None:
                row = conn.execute("SELECT * FROM jobs WHERE key_id = %s AND idempotency_key = %s",
                                   (job.key_id, idempotency_key)).fetchone()
                existing = row_to_job(row) if row else None
                if existing is not None and _replay(conn, existing, job, idempotency_key):
                    return existing
            _check_capacity(conn, job.key_id, limits)
            _check_external_id(conn, job)
            _insert(conn, job, idempotency_key)
            credits.reserve(conn, job.key_id, job.id, to_micro(job.price), job.created_at)
            notify(conn, job.id, job.status)
        return job

    # -- reads -------------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        row = query_one(self.pool, "SELECT * FROM jobs WHERE id = %s", (job_id,))
        return row_to_job(row) if row else None

    def job_exists(self, job_id: str) -> bool:
        return query_one(self.pool, "SELECT 1 FROM jobs WHERE id = %s", (job_id,)) is not None

    def queue_position(self, job_id: str) -> int | None:
        """1 for the next job to run; None unless the job is QUEUED (one query: polls are hot)."""
        row = query_one(
            self.pool,
            "SELECT 1 + (SELECT COUNT(*) FROM jobs j WHERE j.status = 'QUEUED' AND"
            " (j.created_at, j.id) < (me.created_at, me.id)) AS position"
            " FROM jobs me WHERE me.id = %s AND me.status = 'QUEUED'", (job_id,))
        return int(row["position"]) if row else None

    def queued_ids(self) -> list[str]:
        rows = query(self.pool, "SELECT id FROM jobs WHERE status = 'QUEUED' ORDER BY created_at, id")
        return [r["id"] for r in rows]

    def counts(self) -> dict[str, int]:
        """Kept by triggers in each status change's transaction: no scan of the jobs table."""
        rows = query(self.pool, "SELECT status, SUM(n) AS n FROM job_counts GROUP BY status HAVING SUM(n) > 0")
        return {r["status"]: int(r["n"]) for r in rows}

    def recent_for_key(self, key_id: str, limit: int) -> list[Job]:
        rows = query(self.pool, "SELECT * FROM jobs WHERE key_id = %s ORDER BY created_at DESC, id DESC"
                                " LIMIT %s", (key_id, limit))
        return [row_to_job(r) for r in rows]

    def jobs_for_key(self, key_id: str, dialect: str, limit: int, offset: int = 0,
                     after: str | None = None, ascending: bool = False,
                     route: str | None = None) -> list[Job]:
        rows = query(self.pool, *listing_query("%s", key_id, dialect, limit, offset, after, ascending, route))
        return [row_to_job(r) for r in rows]

    def queue_counts(self, key_id: str) -> tuple[int, int]:
        row = query_one(self.pool, "SELECT COUNT(*) AS n, COUNT(*) FILTER (WHERE key_id = %s) AS mine"
                                   " FROM jobs WHERE status = 'QUEUED'", (key_id,))
        return (int(row["n"]), int(row["mine"])) if row else (0, 0)

    def find_idempotent(self, key_id: str, idempotency_key: str) -> Job | None:
        row = query_one(self.pool, "SELECT * FROM jobs WHERE key_id = %s AND idempotency_key = %s",
                        (key_id, idempotency_key))
        return row_to_job(row) if row else None

    def find_external(self, key_id: str, dialect: str, external_id: str) -> Job | None:
        row = query_one(self.pool, "SELECT * FROM jobs WHERE key_id = %s AND dialect = %s AND external_id = %s",
                        (key_id, dialect, external_id))
        return row_to_job(row) if row else None

    def expired(self, before: float, limit: int) -> list[Job]:
        rows = query(self.pool,
                     "SELECT * FROM jobs j WHERE status IN ('COMPLETED', 'FAILED') AND finished_at < %s"
                     " AND NOT EXISTS (SELECT 1 FROM webhook_outbox o WHERE o.job_id = j.id"
                     " AND o.done_at IS NULL) ORDER BY finished_at LIMIT %s", (before, limit))
        return [row_to_job(r) for r in rows]

    # -- leases ------------------------------------------------------------------------------

    def claim(self, owner: str, lease_s: float) -> Job | None:
        with transaction(self.pool) as conn:
            row = conn.execute(f"SELECT id FROM jobs j WHERE status = 'QUEUED' {FAIR_ORDER}"
                               " LIMIT 1 FOR UPDATE SKIP LOCKED").fetchone()
            if row is None:
                return None
            now = self.clock()
            claimed = conn.execute(
                "UPDATE jobs SET status = 'PROCESSING', started_at = %s, progress = 0,"
                " attempts = attempts + 1, lease_owner = %s, lease_expires_at = %s WHERE id = %s"
                " RETURNING *", (now, owner, now + lease_s, row["id"])).fetchone()
            outbox.record(conn, row["id"], JobStatus.PROCESSING, now)
            notify(conn, row["id"], JobStatus.PROCESSING)
        return row_to_job(claimed) if claimed else None

    def claim_batch(self, owner: str, lease_s: float, limit: int, key: BatchKey) -> list[Job]:
        """The job served next and its compatible company, claimed in one transaction; the
        rows looked at stay locked until it commits, so another worker skips them."""
        with transaction(self.pool) as conn:
            rows = conn.execute(f"SELECT * FROM jobs j WHERE status = 'QUEUED' {FAIR_ORDER}"
                                " LIMIT %s FOR UPDATE SKIP LOCKED", (BATCH_SCAN,)).fetchall()
            chosen = pick_batch([row_to_job(r) for r in rows], key, limit)
            now = self.clock()
            claimed = []
            for job in chosen:
                row = conn.execute(
                    "UPDATE jobs SET status = 'PROCESSING', started_at = %s, progress = 0,"
                    " attempts = attempts + 1, lease_owner = %s, lease_expires_at = %s WHERE id = %s"
                    " RETURNING *", (now, owner, now + lease_s, job.id)).fetchone()
                outbox.record(conn, job.id, JobStatus.PROCESSING, now)
                notify(conn, job.id, JobStatus.PROCESSING)
                if row is not None:
                    claimed.append(row_to_job(row))
        return claimed

    def renew(self, job_id: str, owner: str, lease_s: float, progress: float | None = None) -> bool:
        with transaction(self.pool) as conn:
            cur = conn.execute(
                "UPDATE jobs SET lease_expires_at = %s, progress = COALESCE(%s, progress)"
                " WHERE id = %s AND status = 'PROCESSING' AND lease_owner = %s",
                (self.clock() + lease_s, progress, job_id, owner))
        return cur.rowcount == 1

    def expire_leases(self, max_attempts: int, is_dead: Callable[[str], bool],
                      keep: frozenset[str] = frozenset()) -> list[Job]:
        rows = query(self.pool, "SELECT id, lease_owner, lease_expires_at FROM jobs WHERE status = 'PROCESSING'")
        now = self.clock()
        lost = [(r["id"], r["lease_owner"]) for r in rows
                if lease_lost(r["lease_owner"], r["lease_expires_at"], now, is_dead, keep)]
        return [job for job_id, owner in lost
                if (job := self.requeue(job_id, max_attempts, LOST_WORKER, owner=owner)) is not None]

    def fail_lost_callers(self, is_dead: Callable[[str], bool], reason: str) -> list[Job]:
        rows = query(self.pool, "SELECT id, caller FROM jobs WHERE blocking AND status = ANY(%s)", (ACTIVE,))
        lost = [r["id"] for r in rows if r["caller"] is not None and is_dead(r["caller"])]
        return [job for job_id in lost if (job := self.fail(job_id, reason)) is not None]

    # -- endings -----------------------------------------------------------------------------

    def complete(self, job_id: str, output: str, metrics: dict[str, Any]) -> Job | None:
        with transaction(self.pool) as conn:
            now = self.clock()
            if not transition(conn, job_id, JobStatus.COMPLETED, now):
                return None
            conn.execute("UPDATE jobs SET output = %s, metrics = %s, progress = 1, finished_at = %s,"
                         " lease_owner = NULL, lease_expires_at = NULL WHERE id = %s",
                         (output, Jsonb(metrics), now, job_id))
            credits.settle(conn, job_id, "committed", now)
            return _get_in(conn, job_id)

    def fail(self, job_id: str, error: str) -> Job | None:
        with transaction(self.pool) as conn:
            if not fail_in(conn, job_id, error, self.clock()):
                return None
            return _get_in(conn, job_id)

    def requeue(self, job_id: str, max_attempts: int, error: str, owner: str | None = None) -> Job | None:
        """PROCESSING -> QUEUED (or FAILED once attempts are spent, or for a blocking job), in
        one transaction; ``owner`` given: only if the lease is still that owner's."""
        with transaction(self.pool) as conn:
            row = lock_job(conn, job_id)
            if row is None or row["status"] != JobStatus.PROCESSING.value:
                return None
            if owner is not None and row["lease_owner"] != owner:
                return None
            now = self.clock()
            if row["blocking"] or row["attempts"] >= max_attempts:
                fail_in(conn, job_id, error, now)
            elif transition(conn, job_id, JobStatus.QUEUED, now):
                conn.execute("UPDATE jobs SET progress = 0, lease_owner = NULL, lease_expires_at = NULL"
                             " WHERE id = %s", (job_id,))
            return _get_in(conn, job_id)

    def delete(self, job_id: str) -> None:
        with transaction(self.pool) as conn:
            conn.execute("DELETE FROM jobs WHERE id = %s", (job_id,))
            outbox.forget_job(conn, job_id)

    # -- workers -----------------------------------------------------------------------------

    def report_worker(self, status: WorkerStatus) -> None:
        with transaction(self.pool) as conn:
            conn.execute(
                "INSERT INTO workers (id, profile, state, device, job_id, error, pid, seen_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET"
                " profile = EXCLUDED.profile, state = EXCLUDED.state, device = EXCLUDED.device,"
                " job_id = EXCLUDED.job_id, error = EXCLUDED.error, pid = EXCLUDED.pid,"
                " seen_at = EXCLUDED.seen_at",
                (status.id, status.profile, status.state, status.device, status.job_id,
                 status.error, status.pid, status.seen_at))

    def workers(self) -> list[WorkerStatus]:
        rows = query(self.pool, "SELECT * FROM workers ORDER BY id")
        return [WorkerStatus(id=r["id"], profile=r["profile"], state=r["state"], seen_at=r["seen_at"],
                             device=r["device"], job_id=r["job_id"], error=r["error"], pid=r["pid"])
                for r in rows]
