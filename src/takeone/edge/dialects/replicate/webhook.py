"""What ``webhook`` receives: the prediction object, on the events ``webhook_events_filter``
chose (all four by default), signed with Standard Webhooks headers when the key has a
``whsec_`` secret, as Replicate signs its own.

- ``start``: the prediction began processing (from the outbox, retried);
- ``logs``: its logs changed, at most every 500 ms while it runs (see
  :mod:`takeone.edge.dialects.hosted`; not retried);
- ``output``: its output appeared, which for a video is when it succeeded (from the outbox);
- ``completed``: it succeeded, failed or was canceled (from the outbox, retried).
"""

from __future__ import annotations

from typing import Any

from takeone.core.jobs import Job, JobStatus
from takeone.edge.background.webhooks.sender import Event
from takeone.edge.dialects.replicate.prediction import prediction_object
from takeone.edge.services import Services


def _base(services: Services, job: Job) -> str:
    return (services.settings.public_url or str(job.meta.get("base_url", ""))).rstrip("/")


def event_of(job: Job, status: JobStatus) -> str | None:
    """The event a status change is, if the prediction's filter wants it."""
    events = job.meta.get("events", [])
    if status is JobStatus.PROCESSING:
        return "start" if "start" in events else None
    if status is JobStatus.COMPLETED and "completed" not in events:
        return "output" if "output" in events else None
    return "completed" if "completed" in events else None


async def render(services: Services, job: Job, status: JobStatus) -> Event | None:
    kind = event_of(job, status)
    if kind is None:
        return None
    return Event(kind, prediction_object(job, services, _base(services, job)))


def render_progress(services: Services, job: Job) -> dict[str, Any]:
    """A ``logs`` event's body."""
    return prediction_object(job, services, _base(services, job))
