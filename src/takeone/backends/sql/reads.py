"""The queue's reads, retention and worker reports (synchronous; the async face runs them
in a thread). Reads that answer every poll touch an index and at most a page of rows; the
counts by status are kept by triggers in the transaction of each change (no scan).

Example::

    job = store.get("req_1")
    page = store.jobs_for_key("key_1a2b", "openai", limit=20)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from takeone.backends.sql.driver import Driver, Row
from takeone.backends.sql.listing import listing_query
from takeone.backends.sql.queue_order import WaitingKey, round_robin_position
from takeone.backends.sql.rows import to_job, to_worker
from takeone.backends.sql.status import forget_job
from takeone.core.jobs import EXPIRY_PAGE, Job, JobStatus, WorkerStatus

WAITING_KEYS = (
    "SELECT c.key_id, c.n,"
    " (SELECT MAX(s.started_at) FROM jobs s WHERE s.key_id = c.key_id) AS last_started,"
    " (SELECT h.created_at FROM jobs h WHERE h.status = 'QUEUED' AND h.key_id = c.key_id"
    " ORDER BY h.created_at, h.id LIMIT 1) AS head_at,"
    " (SELECT h.id FROM jobs h WHERE h.status = 'QUEUED' AND h.key_id = c.key_id"
    " ORDER BY h.created_at, h.id LIMIT 1) AS head_id"
    " FROM (SELECT key_id, SUM(n) AS n FROM key_queue GROUP BY key_id HAVING SUM(n) > 0) c")
"""Each key with queued jobs: its kept count, its last start and its oldest queued job (index
lookups per key: the cost grows with the keys waiting, not with the jobs queued)."""

STATUS_CHUNK = 500
"""Job ids per statement of :meth:`SqlReads.statuses` (SQLite builds before 3.32 take 999
parameters at most)."""


def _waiting(row: Row) -> WaitingKey:
    return WaitingKey(row["key_id"], row["last_started"], (row["head_at"], row["head_id"]), int(row["n"]))


class SqlReads:
    db: Driver
    clock: Callable[[], float]

    def _jobs(self, sql: str, params: tuple[object, ...] = ()) -> list[Job]:
        with self.db.read() as tx:
            return [to_job(r, self.db) for r in tx.all(sql, params)]

    def _job(self, sql: str, params: tuple[object, ...]) -> Job | None:
        jobs = self._jobs(sql, params)
        return jobs[0] if jobs else None

    def get(self, job_id: str) -> Job | None:
        return self._job("SELECT * FROM jobs WHERE id = ?", (job_id,))

    def statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """One read transaction (its ids a chunk per statement, within every database's
        limit on parameters), each row found by the primary key."""
        found: dict[str, JobStatus] = {}
        with self.db.read() as tx:
            for start in range(0, len(job_ids), STATUS_CHUNK):
                chunk = list(job_ids[start:start + STATUS_CHUNK])
                marks = ", ".join("?" * len(chunk))
                for row in tx.all(f"SELECT id, status FROM jobs WHERE id IN ({marks})", chunk):
                    found[row["id"]] = JobStatus(row["status"])
        return found

    def job_exists(self, job_id: str) -> bool:
        with self.db.read() as tx:
            return tx.one("SELECT 1 AS one FROM jobs WHERE id = ?", (job_id,)) is not None

    def queue_position(self, job_id: str) -> int | None:
        """1 for the job served next; None unless the job is QUEUED. Where it stands under
        round-robin claims (:func:`round_robin_position`) as the queue is now: read from its
        key's own queue ahead of it and each waiting key's kept count, never the whole queue."""
        with self.db.read() as tx:
            me = tx.one(
                # Two ranges of the key's queue index (an OR would read the key's whole queue).
                "SELECT me.key_id, 1 + (SELECT COUNT(*) FROM jobs j WHERE j.status = 'QUEUED'"
                " AND j.key_id = me.key_id AND j.created_at < me.created_at)"
                " + (SELECT COUNT(*) FROM jobs j WHERE j.status = 'QUEUED' AND j.key_id = me.key_id"
                " AND j.created_at = me.created_at AND j.id < me.id) AS rank"
                " FROM jobs me WHERE me.id = ? AND me.status = 'QUEUED'", (job_id,))
            if me is None:
                return None
            keys = [_waiting(row) for row in tx.all(WAITING_KEYS)]
        mine = next((key for key in keys if key.key_id == me["key_id"]), None)
        if mine is None:  # the job left the queue between the reads
            return None
        return round_robin_position(int(me["rank"]), mine, (key for key in keys if key is not mine))

    def queued_ids(self) -> list[str]:
        with self.db.read() as tx:
            return [r["id"] for r in tx.all("SELECT id FROM jobs WHERE status = 'QUEUED' ORDER BY created_at, id")]

    def counts(self) -> dict[str, int]:
        """Kept by triggers in each status change's transaction: no scan of the jobs table."""
        with self.db.read() as tx:
            rows = tx.all("SELECT status, SUM(n) AS n FROM job_counts GROUP BY status HAVING SUM(n) > 0")
        return {r["status"]: int(r["n"]) for r in rows}

    def recent_for_key(self, key_id: str, limit: int) -> list[Job]:
        return self._jobs("SELECT * FROM jobs WHERE key_id = ? ORDER BY created_at DESC, id DESC LIMIT ?",
                          (key_id, limit))

    def jobs_for_key(self, key_id: str, dialect: str, limit: int, offset: int = 0,
                     after: str | None = None, ascending: bool = False,
                     route: str | None = None) -> list[Job]:
        return self._jobs(*listing_query("?", key_id, dialect, limit, offset, after, ascending, route))

    def queue_counts(self, key_id: str) -> tuple[int, int]:
        with self.db.read() as tx:
            row = tx.one("SELECT (SELECT COALESCE(SUM(n), 0) FROM job_counts WHERE status = 'QUEUED') AS n,"
                         " (SELECT COALESCE(SUM(n), 0) FROM key_queue WHERE key_id = ?) AS mine", (key_id,))
        return (int(row["n"]), int(row["mine"])) if row else (0, 0)

    def find_idempotent(self, key_id: str, idempotency_key: str) -> Job | None:
        return self._job("SELECT * FROM jobs WHERE key_id = ? AND idempotency_key = ?", (key_id, idempotency_key))

    def find_external(self, key_id: str, dialect: str, external_id: str) -> Job | None:
        return self._job("SELECT * FROM jobs WHERE key_id = ? AND dialect = ? AND external_id = ?",
                         (key_id, dialect, external_id))

    # -- retention ---------------------------------------------------------------------------

    def expired(self, before: float, limit: int = EXPIRY_PAGE) -> list[Job]:
        """A page of finished jobs by finish time (their index walked in order, left after a page)."""
        return self._jobs(
            f"SELECT * FROM jobs j{self.db.index_hint('jobs_finished')} WHERE status IN ('COMPLETED', 'FAILED')"
            " AND finished_at < ? AND NOT EXISTS (SELECT 1 FROM webhook_outbox o WHERE o.job_id = j.id"
            " AND o.done_at IS NULL) ORDER BY finished_at LIMIT ?", (before, limit))

    def delete(self, job_id: str) -> None:
        with self.db.write() as tx:
            tx.execute("DELETE FROM jobs WHERE id = ?", (job_id,))
            forget_job(tx, job_id)

    # -- workers -----------------------------------------------------------------------------

    def report_worker(self, status: WorkerStatus) -> None:
        with self.db.write() as tx:
            tx.execute(
                "INSERT INTO workers (id, profile, state, device, job_id, error, pid, seen_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET"
                " profile = excluded.profile, state = excluded.state, device = excluded.device,"
                " job_id = excluded.job_id, error = excluded.error, pid = excluded.pid,"
                " seen_at = excluded.seen_at",
                (status.id, status.profile, status.state, status.device, status.job_id,
                 status.error, status.pid, status.seen_at))

    def workers(self) -> list[WorkerStatus]:
        with self.db.read() as tx:
            return [to_worker(r) for r in tx.all("SELECT * FROM workers ORDER BY id")]
