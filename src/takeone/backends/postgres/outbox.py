"""The webhook outbox in PostgreSQL (see :mod:`takeone.core.webhooks`).

:func:`record` runs inside the transaction that changes a job's status, so the delivery and
the change commit together. Senders on any replica claim due rows with ``FOR UPDATE SKIP
LOCKED`` and a short lease, so two replicas never send the same row at once.

Example::

    outbox = PostgresOutbox(pool, clock=time.time)
    due = outbox.claim("host/123", lease_s=60, limit=16)
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from psycopg.rows import DictRow
from psycopg_pool import ConnectionPool

from takeone.backends.postgres.db import Conn, query_one, transaction
from takeone.core.jobs import JobStatus
from takeone.core.webhooks import EVENT_STATUSES, Delivery


def new_webhook_id() -> str:
    return "msg_" + secrets.token_hex(12)


def record(conn: Conn, job_id: str, status: JobStatus, now: float) -> None:
    """Queue a delivery of ``status`` if the job has a webhook URL (due at once)."""
    if status not in EVENT_STATUSES:
        return
    conn.execute(
        "INSERT INTO webhook_outbox (webhook_id, job_id, event, status, url, next_at, created_at)"
        " SELECT %s, id, %s, %s, webhook_url, 0, %s FROM jobs WHERE id = %s AND webhook_url IS NOT NULL",
        (new_webhook_id(), status.value.lower(), status.value, now, job_id))


def forget_job(conn: Conn, job_id: str) -> None:
    """A deleted job's deliveries go with it (nothing is left to render)."""
    conn.execute("DELETE FROM webhook_outbox WHERE job_id = %s", (job_id,))


def _row_to_delivery(row: DictRow) -> Delivery:
    return Delivery(id=row["id"], webhook_id=row["webhook_id"], job_id=row["job_id"],
                    status=JobStatus(row["status"]), url=row["url"], attempts=row["attempts"],
                    created_at=row["created_at"])


class PostgresOutbox:
    def __init__(self, pool: ConnectionPool[Conn], clock: Callable[[], float]) -> None:
        self.pool = pool
        self.clock = clock

    def claim(self, owner: str, lease_s: float, limit: int) -> list[Delivery]:
        now = self.clock()
        with transaction(self.pool) as conn:
            rows = conn.execute(
                "SELECT * FROM webhook_outbox o WHERE done_at IS NULL AND next_at <= %s"
                " AND (lease_until IS NULL OR lease_until < %s)"
                " AND NOT EXISTS (SELECT 1 FROM webhook_outbox p WHERE p.job_id = o.job_id"
                " AND p.done_at IS NULL AND p.id < o.id)"
                " ORDER BY next_at, id LIMIT %s FOR UPDATE OF o SKIP LOCKED",
                (now, now, limit)).fetchall()
            if rows:
                conn.execute("UPDATE webhook_outbox SET lease_owner = %s, lease_until = %s WHERE id = ANY(%s)",
                             (owner, now + lease_s, [r["id"] for r in rows]))
        return [_row_to_delivery(r) for r in rows]

    def done(self, delivery_id: int, outcome: str) -> None:
        with transaction(self.pool) as conn:
            conn.execute("UPDATE webhook_outbox SET done_at = %s, attempts = attempts + 1, last_error = %s,"
                         " lease_owner = NULL, lease_until = NULL WHERE id = %s",
                         (self.clock(), outcome, delivery_id))

    def retry(self, delivery_id: int, at: float, error: str) -> None:
        with transaction(self.pool) as conn:
            conn.execute("UPDATE webhook_outbox SET next_at = %s, attempts = attempts + 1, last_error = %s,"
                         " lease_owner = NULL, lease_until = NULL WHERE id = %s", (at, error, delivery_id))

    def defer(self, delivery_id: int, at: float) -> None:
        with transaction(self.pool) as conn:
            conn.execute("UPDATE webhook_outbox SET next_at = %s, lease_owner = NULL, lease_until = NULL"
                         " WHERE id = %s", (at, delivery_id))

    def next_at(self) -> float | None:
        row = query_one(self.pool, "SELECT MIN(GREATEST(next_at, COALESCE(lease_until, 0))) AS at"
                                   " FROM webhook_outbox WHERE done_at IS NULL")
        return None if row is None or row["at"] is None else float(row["at"])
