"""The one place a job's status changes (claims included), inside the caller's transaction.

:func:`transition` checks the change against :class:`~takeone.core.jobs.JobStatus`, writes it
with whatever else the change sets (a lease, an output, an error) in one UPDATE, records the
webhook delivery it causes (the outbox row commits with the change) and notifies listeners.
Rows are locked in one order everywhere: a key's ``api_keys`` row first, then its job's row
(:func:`lock_job`), so a revocation and a completion never deadlock.

Example::

    with driver.write() as tx:
        row = transition(tx, driver, job_id, JobStatus.COMPLETED, now, ", output = ?", (key,))
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import Any

from takeone.backends.sql import ledger
from takeone.backends.sql.driver import Driver, Row, Tx
from takeone.core.jobs import JobStatus
from takeone.core.webhooks import EVENT_STATUSES

ACTIVE = ("QUEUED", "PROCESSING")
ENDED = ", finished_at = ?, lease_owner = NULL, lease_expires_at = NULL"


def lock_key(tx: Tx, db: Driver, key_id: str) -> Row | None:
    return tx.one(f"SELECT * FROM api_keys WHERE id = ?{db.row_lock}", (key_id,))


def lock_job(tx: Tx, db: Driver, job_id: str) -> Row | None:
    """The job's row, locked after its key's row (the one lock order)."""
    row = tx.one("SELECT key_id FROM jobs WHERE id = ?", (job_id,))
    if row is None:
        return None
    lock_key(tx, db, row["key_id"])
    return tx.one(f"SELECT * FROM jobs WHERE id = ?{db.row_lock}", (job_id,))


def transition(tx: Tx, db: Driver, job_id: str, new: JobStatus, now: float, assign: str = "",
               values: Sequence[Any] = (), current: JobStatus | None = None) -> Row | None:
    """Move the job to ``new`` (setting ``assign``'s columns to ``values`` as well) if its
    status may become ``new``; the changed row, or None. ``current``: the caller holds the
    row locked and knows its status (a claim), so it is not read again."""
    if current is None:
        row = lock_job(tx, db, job_id)
        if row is None:
            return None
        current = JobStatus(row["status"])
    if not current.can_become(new):
        return None
    changed = tx.one(f"UPDATE jobs SET status = ?{assign} WHERE id = ? AND status = ? RETURNING *",
                     (new.value, *values, job_id, current.value))
    if changed is not None:
        record(tx, job_id, new, now)
        db.notify(tx, job_id, new.value)
    return changed


def fail_in(tx: Tx, db: Driver, job_id: str, error: str, now: float) -> Row | None:
    """-> FAILED and release the price; None if the job had finished already."""
    row = transition(tx, db, job_id, JobStatus.FAILED, now, ", error = ?" + ENDED, (error, now))
    if row is not None:
        ledger.settle(tx, job_id, "released", now)
    return row


def new_webhook_id() -> str:
    return "msg_" + secrets.token_hex(12)


def record(tx: Tx, job_id: str, status: JobStatus, now: float) -> None:
    """Queue a webhook delivery of ``status`` if the job has a webhook URL (due at once)."""
    if status not in EVENT_STATUSES:
        return
    tx.execute("INSERT INTO webhook_outbox (webhook_id, job_id, event, status, url, next_at, created_at)"
               " SELECT ?, id, ?, ?, webhook_url, 0, ? FROM jobs WHERE id = ? AND webhook_url IS NOT NULL",
               (new_webhook_id(), status.value.lower(), status.value, now, job_id))


def forget_job(tx: Tx, job_id: str) -> None:
    """A deleted job's deliveries go with it (nothing is left to render)."""
    tx.execute("DELETE FROM webhook_outbox WHERE job_id = ?", (job_id,))
