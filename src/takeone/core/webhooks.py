"""The webhook outbox: deliveries recorded with the job state change that caused them.

Whenever a job with a webhook URL becomes PROCESSING, COMPLETED or FAILED, one outbox row is
written in the same transaction as the change, so a delivery is never lost to a crash
between the two, and never invented for a change that rolled back. A row holds the job id,
the event (the status at the event), the URL, a ``webhook-id`` that every retry repeats,
the attempts made and when the next is due. What is sent is rendered at send time by the
job's dialect. Any API process may send: it claims due rows under a short lease, so two
processes do not send the same row at once, and a process that dies mid-send leaves the row
to be claimed again when its lease runs out (at-least-once, always with the same id).

Example::

    for delivery in await outbox.claim_deliveries("host/123", lease_s=60, limit=16):
        ...  # render, sign, POST
        await outbox.delivery_done(delivery.id, "delivered (HTTP 200)")
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from takeone.core.jobs import JobStatus

EVENT_STATUSES = (JobStatus.PROCESSING, JobStatus.COMPLETED, JobStatus.FAILED)


@dataclass(frozen=True)
class Delivery:
    """One outbox row, as claimed by a sender; ``attempts`` counts the tries made before."""

    id: int
    webhook_id: str
    job_id: str
    status: JobStatus  # the job's status at the event
    url: str
    attempts: int
    created_at: float


class Outbox(Protocol):
    async def claim_deliveries(self, owner: str, lease_s: float, limit: int) -> list[Delivery]:
        """Due, unleased rows, at most one per job (the oldest: events keep their order),
        leased to ``owner`` for ``lease_s``."""

    async def delivery_done(self, delivery_id: int, outcome: str) -> None:
        """The row is finished: delivered, refused for good, or out of attempts."""

    async def delivery_retry(self, delivery_id: int, at: float, error: str) -> None:
        """One more attempt failed; the next is due at ``at`` (the lease is released)."""

    async def delivery_defer(self, delivery_id: int, at: float) -> None:
        """Put a claimed row back unattempted, due again at ``at`` (its receiver is busy)."""

    async def next_delivery_at(self) -> float | None:
        """When the earliest unfinished row can next be claimed (None: nothing to send)."""
