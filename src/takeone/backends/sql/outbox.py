"""The webhook outbox's senders' side (see :mod:`takeone.core.webhooks`); rows are written by
:func:`takeone.backends.sql.status.record` with the status change that causes them.

Senders in any process claim due rows under a short lease (rows another transaction holds
are skipped), so two processes never send the same row at once.

Example::

    due = store.claim_deliveries("host/123", lease_s=60, limit=16)
"""

from __future__ import annotations

from collections.abc import Callable

from takeone.backends.sql.driver import Driver
from takeone.backends.sql.rows import to_delivery
from takeone.core.webhooks import Delivery

RELEASED = "lease_owner = NULL, lease_until = NULL"


class SqlOutbox:
    db: Driver
    clock: Callable[[], float]

    def claim_deliveries(self, owner: str, lease_s: float, limit: int) -> list[Delivery]:
        now = self.clock()
        with self.db.write() as tx:
            rows = tx.all("SELECT * FROM webhook_outbox o WHERE done_at IS NULL AND next_at <= ?"
                          " AND (lease_until IS NULL OR lease_until < ?)"
                          " AND NOT EXISTS (SELECT 1 FROM webhook_outbox p WHERE p.job_id = o.job_id"
                          " AND p.done_at IS NULL AND p.id < o.id)"
                          f" ORDER BY next_at, id LIMIT ?{self.db.skip_locked('o')}", (now, now, limit))
            for row in rows:
                tx.execute("UPDATE webhook_outbox SET lease_owner = ?, lease_until = ? WHERE id = ?",
                           (owner, now + lease_s, row["id"]))
        return [to_delivery(r) for r in rows]

    def _update(self, delivery_id: int, assignments: str, values: tuple[object, ...]) -> None:
        with self.db.write() as tx:
            tx.execute(f"UPDATE webhook_outbox SET {assignments}, {RELEASED} WHERE id = ?", (*values, delivery_id))

    def delivery_done(self, delivery_id: int, outcome: str) -> None:
        self._update(delivery_id, "done_at = ?, attempts = attempts + 1, last_error = ?", (self.clock(), outcome))

    def delivery_retry(self, delivery_id: int, at: float, error: str) -> None:
        self._update(delivery_id, "next_at = ?, attempts = attempts + 1, last_error = ?", (at, error))

    def delivery_defer(self, delivery_id: int, at: float) -> None:
        self._update(delivery_id, "next_at = ?", (at,))

    def next_delivery_at(self) -> float | None:
        with self.db.read() as tx:
            row = tx.one("SELECT MIN(CASE WHEN next_at > COALESCE(lease_until, 0) THEN next_at"
                         " ELSE COALESCE(lease_until, 0) END) AS at FROM webhook_outbox WHERE done_at IS NULL")
        return None if row is None or row["at"] is None else float(row["at"])
