"""The queue's writes: submit, claims, leases and endings (synchronous; the async face runs
them in a thread).

What differs between databases comes from the :class:`~takeone.backends.sql.driver.Driver`:

- a submit locks its key's row (per-key concurrency, balance, idempotency key and external id
  are checked while no other process can submit for that key), then the queue lock, so the
  server-wide ``max_queue`` is exact;
- a claim takes the QUEUED rows served next that no other transaction holds (``SKIP LOCKED``
  on PostgreSQL; SQLite's writers take turns), so processes claiming at once get different jobs;
- every submit and status change notifies listeners at commit (PostgreSQL's NOTIFY).

Example::

    job = store.submit(job, SubmitLimits(max_concurrent=None, max_queue=100))
    running = store.claim("host/123/0", lease_s=30)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from takeone.backends.sql import ledger
from takeone.backends.sql.driver import Driver, Tx
from takeone.backends.sql.queue_order import FAIR_ORDER
from takeone.backends.sql.rows import to_job
from takeone.backends.sql.status import ACTIVE, ENDED, fail_in, lock_job, lock_key, transition
from takeone.core.accounts import to_micro
from takeone.core.errors import InvalidRequest, RateLimited
from takeone.core.jobs import (
    BATCH_SCAN,
    LOST_WORKER,
    BatchKey,
    Job,
    JobStatus,
    SubmitLimits,
    check_queue,
    lease_lost,
    pick_batch,
    replays,
)

CLAIMED = ", started_at = ?, progress = 0, attempts = attempts + 1, lease_owner = ?, lease_expires_at = ?"


class SqlQueue:
    db: Driver
    clock: Callable[[], float]

    # -- submit ------------------------------------------------------------------------------

    def submit(self, job: Job, limits: SubmitLimits, idempotency_key: str | None = None) -> Job:
        with self.db.write() as tx:
            lock_key(tx, self.db, job.key_id)
            if idempotency_key is not None:
                row = tx.one("SELECT * FROM jobs WHERE key_id = ? AND idempotency_key = ?",
                             (job.key_id, idempotency_key))
                if row is not None and self._replay(tx, to_job(row, self.db), job, idempotency_key):
                    return to_job(row, self.db)
            self._check_capacity(tx, job.key_id, limits)
            self._check_external_id(tx, job)
            self._insert(tx, job, idempotency_key)
            ledger.reserve(tx, job.key_id, job.id, to_micro(job.price), job.created_at)
            self.db.notify(tx, job.id, job.status.value)
        return job

    @staticmethod
    def _replay(tx: Tx, existing: Job, new: Job, idem: str) -> bool:
        """True: answer with ``existing`` (see :func:`replays`); False after freeing the key."""
        if replays(existing, new, idem):
            return True
        tx.execute("UPDATE jobs SET idempotency_key = NULL WHERE id = ?", (existing.id,))
        return False

    def _check_capacity(self, tx: Tx, key_id: str, limits: SubmitLimits) -> None:
        self.db.lock_queue(tx)
        queued = tx.one("SELECT COALESCE(SUM(n), 0) AS n FROM job_counts WHERE status = 'QUEUED'")
        mine = tx.one("SELECT COALESCE(SUM(n), 0) AS n FROM key_queue WHERE key_id = ?", (key_id,))
        check_queue(limits, int(queued["n"]) if queued else 0, int(mine["n"]) if mine else 0)
        if limits.max_concurrent is None:
            return
        active = tx.one("SELECT COUNT(*) AS n FROM jobs WHERE key_id = ? AND status IN (?, ?)", (key_id, *ACTIVE))
        if active is not None and active["n"] >= limits.max_concurrent:
            raise RateLimited(f"concurrent-request limit reached: this key may have {limits.max_concurrent} jobs"
                              " queued or running at once", 5)

    @staticmethod
    def _check_external_id(tx: Tx, job: Job) -> None:
        """A client's own id names one job of its key in one dialect, for as long as it is kept."""
        if job.external_id is None:
            return
        row = tx.one("SELECT id FROM jobs WHERE key_id = ? AND dialect = ? AND external_id = ?",
                     (job.key_id, job.dialect, job.external_id))
        if row is not None:
            raise InvalidRequest("external_id", job.external_id, f"is already the id of task {row['id']}")

    def _insert(self, tx: Tx, job: Job, idem: str | None) -> None:
        tx.execute(
            "INSERT INTO jobs (id, key_id, endpoint, request, price, charge, status, blocking,"
            " idempotency_key, created_at, caller, request_hash, dialect, webhook_url, external_id,"
            " meta) VALUES (?, ?, ?, ?, ?, 'reserved', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (job.id, job.key_id, job.route, self.db.to_json(job.task.to_dict()), to_micro(job.price),
             job.status.value, job.blocking, idem, job.created_at, job.caller, job.request_hash, job.dialect,
             job.webhook_url, job.external_id, self.db.to_json(job.meta)))

    # -- leases ------------------------------------------------------------------------------

    def claim(self, owner: str, lease_s: float) -> Job | None:
        with self.db.write() as tx:
            row = tx.one(f"SELECT id FROM jobs j WHERE status = 'QUEUED' {FAIR_ORDER}"
                         f" LIMIT 1{self.db.skip_locked('j')}")
            if row is None:
                return None
            claimed = self._claim_one(tx, row["id"], owner, lease_s)
        return claimed

    def claim_batch(self, owner: str, lease_s: float, limit: int, key: BatchKey) -> list[Job]:
        """The job served next and its compatible company, claimed in one transaction; the
        rows looked at stay locked until it commits, so another worker skips them."""
        with self.db.write() as tx:
            rows = tx.all(f"SELECT * FROM jobs j WHERE status = 'QUEUED' {FAIR_ORDER}"
                          f" LIMIT ?{self.db.skip_locked('j')}", (BATCH_SCAN,))
            chosen = pick_batch([to_job(r, self.db) for r in rows], key, limit)
            claimed = [self._claim_one(tx, job.id, owner, lease_s) for job in chosen]
        return [job for job in claimed if job is not None]

    def _claim_one(self, tx: Tx, job_id: str, owner: str, lease_s: float) -> Job | None:
        now = self.clock()
        row = transition(tx, self.db, job_id, JobStatus.PROCESSING, now, CLAIMED, (now, owner, now + lease_s),
                         current=JobStatus.QUEUED)
        return to_job(row, self.db) if row is not None else None

    def renew(self, job_id: str, owner: str, lease_s: float, progress: float | None = None) -> bool:
        with self.db.write() as tx:
            changed = tx.execute("UPDATE jobs SET lease_expires_at = ?, progress = COALESCE(?, progress)"
                                 " WHERE id = ? AND status = 'PROCESSING' AND lease_owner = ?",
                                 (self.clock() + lease_s, progress, job_id, owner))
        return changed == 1

    def expire_leases(self, max_attempts: int, is_dead: Callable[[str], bool],
                      keep: frozenset[str] = frozenset()) -> list[Job]:
        with self.db.read() as tx:
            rows = tx.all("SELECT id, lease_owner, lease_expires_at FROM jobs WHERE status = 'PROCESSING'")
        now = self.clock()
        lost = [(r["id"], r["lease_owner"]) for r in rows
                if lease_lost(r["lease_owner"], r["lease_expires_at"], now, is_dead, keep)]
        return [job for job_id, owner in lost
                if (job := self._requeue(job_id, max_attempts, LOST_WORKER, owner)) is not None]

    def fail_lost_callers(self, is_dead: Callable[[str], bool], reason: str) -> list[Job]:
        with self.db.read() as tx:
            rows = tx.all("SELECT id, caller FROM jobs WHERE blocking = ? AND status IN (?, ?)", (True, *ACTIVE))
        lost = [r["id"] for r in rows if r["caller"] is not None and is_dead(r["caller"])]
        return [job for job_id in lost if (job := self.fail(job_id, reason)) is not None]

    # -- endings -----------------------------------------------------------------------------

    def complete(self, job_id: str, output: str, metrics: dict[str, Any]) -> Job | None:
        with self.db.write() as tx:
            now = self.clock()
            row = transition(tx, self.db, job_id, JobStatus.COMPLETED, now, ", output = ?, metrics = ?, progress = 1"
                             + ENDED, (output, self.db.to_json(metrics), now))
            if row is None:
                return None
            ledger.settle(tx, job_id, "committed", now)
        return to_job(row, self.db)

    def fail(self, job_id: str, error: str) -> Job | None:
        with self.db.write() as tx:
            row = fail_in(tx, self.db, job_id, error, self.clock())
        return to_job(row, self.db) if row is not None else None

    def requeue(self, job_id: str, max_attempts: int, error: str) -> Job | None:
        return self._requeue(job_id, max_attempts, error, None)

    def _requeue(self, job_id: str, max_attempts: int, error: str, owner: str | None) -> Job | None:
        """PROCESSING -> QUEUED (or FAILED once attempts are spent, or for a blocking job), in
        one transaction; ``owner`` given: only if the lease is still that owner's."""
        with self.db.write() as tx:
            row = lock_job(tx, self.db, job_id)
            if row is None or row["status"] != JobStatus.PROCESSING.value:
                return None
            if owner is not None and row["lease_owner"] != owner:
                return None
            now = self.clock()
            if row["blocking"] or row["attempts"] >= max_attempts:
                changed = fail_in(tx, self.db, job_id, error, now)
            else:
                changed = transition(tx, self.db, job_id, JobStatus.QUEUED, now,
                                     ", progress = 0, lease_owner = NULL, lease_expires_at = NULL",
                                     current=JobStatus.PROCESSING)
        return to_job(changed, self.db) if changed is not None else None
