"""The webhook outbox in SQLite (see :mod:`takeone.core.webhooks`).

:func:`record` runs inside the transaction that changes a job's status, so the delivery and
the change commit together. Senders claim rows in their own short transactions.

Example::

    with db.transaction() as conn:
        transition(conn, job_id, JobStatus.COMPLETED)   # calls record(conn, job_id, ...)
    outbox = SqliteOutbox(db, clock=time.time)
    due = outbox.claim("host/123", lease_s=60, limit=16)
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Callable

from takeone.backends.sqlite.db import Database
from takeone.core.jobs import JobStatus
from takeone.core.webhooks import EVENT_STATUSES, Delivery

# Unix seconds in SQL, so that recording needs no clock from the caller's transaction.
_NOW_SQL = "(julianday('now') - 2440587.5) * 86400.0"


def new_webhook_id() -> str:
    return "msg_" + secrets.token_hex(12)


def record(conn: sqlite3.Connection, job_id: str, status: JobStatus) -> None:
    """Queue a delivery of ``status`` if the job has a webhook URL (due at once)."""
    if status not in EVENT_STATUSES:
        return
    conn.execute(
        "INSERT INTO webhook_outbox (webhook_id, job_id, event, status, url, next_at, created_at)"
        f" SELECT ?, id, ?, ?, webhook_url, 0, {_NOW_SQL} FROM jobs"
        " WHERE id = ? AND webhook_url IS NOT NULL",
        (new_webhook_id(), status.value.lower(), status.value, job_id),
    )


def forget_job(conn: sqlite3.Connection, job_id: str) -> None:
    """A deleted job's deliveries go with it (nothing is left to render)."""
    conn.execute("DELETE FROM webhook_outbox WHERE job_id = ?", (job_id,))


def _row_to_delivery(row: sqlite3.Row) -> Delivery:
    return Delivery(id=row["id"], webhook_id=row["webhook_id"], job_id=row["job_id"],
                    status=JobStatus(row["status"]), url=row["url"], attempts=row["attempts"],
                    created_at=row["created_at"])


class SqliteOutbox:
    def __init__(self, db: Database, clock: Callable[[], float]) -> None:
        self.db = db
        self.clock = clock

    def claim(self, owner: str, lease_s: float, limit: int) -> list[Delivery]:
        now = self.clock()
        with self.db.transaction() as conn:
            rows = conn.execute(
                "SELECT * FROM webhook_outbox o WHERE done_at IS NULL AND next_at <= ?"
                " AND (lease_until IS NULL OR lease_until < ?)"
                " AND NOT EXISTS (SELECT 1 FROM webhook_outbox p WHERE p.job_id = o.job_id"
                " AND p.done_at IS NULL AND p.id < o.id)"
                " ORDER BY next_at, id LIMIT ?",
                (now, now, limit),
            ).fetchall()
            for row in rows:
                conn.execute("UPDATE webhook_outbox SET lease_owner = ?, lease_until = ? WHERE id = ?",
                             (owner, now + lease_s, row["id"]))
        return [_row_to_delivery(r) for r in rows]

    def done(self, delivery_id: int, outcome: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE webhook_outbox SET done_at = ?, attempts = attempts + 1, last_error = ?,"
                " lease_owner = NULL, lease_until = NULL WHERE id = ?",
                (self.clock(), outcome, delivery_id),
            )

    def retry(self, delivery_id: int, at: float, error: str) -> None:
        with self.db.transaction() as conn:
            conn.execute(
                "UPDATE webhook_outbox SET next_at = ?, attempts = attempts + 1, last_error = ?,"
                " lease_owner = NULL, lease_until = NULL WHERE id = ?",
                (at, error, delivery_id),
            )

    def defer(self, delivery_id: int, at: float) -> None:
        with self.db.transaction() as conn:
            conn.execute("UPDATE webhook_outbox SET next_at = ?, lease_owner = NULL, lease_until = NULL"
                         " WHERE id = ?", (at, delivery_id))

    def next_at(self) -> float | None:
        row = self.db.query_one(
            "SELECT MIN(MAX(next_at, COALESCE(lease_until, 0))) AS at FROM webhook_outbox"
            " WHERE done_at IS NULL")
        return None if row is None or row["at"] is None else float(row["at"])
