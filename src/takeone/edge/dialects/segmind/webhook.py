"""The Segmind dialect's webhook events: ``video.completed`` and ``video.failed``.

Queued requests ask for one with ``POST /v2/{slug}?webhook=URL`` (as fal does) or through
the key's webhook URL. The envelope is Standard Webhooks' ``{type, timestamp, data}``, and
``data`` is exactly what ``GET /v2/requests/{id}`` answers for the request.
"""

from __future__ import annotations

import datetime
from typing import Any

from takeone.core.jobs import Job, JobStatus
from takeone.edge.background.webhooks.sender import Event
from takeone.edge.services import Services

TYPES = {JobStatus.COMPLETED: "video.completed", JobStatus.FAILED: "video.failed"}


async def render(services: Services, job: Job, status: JobStatus) -> Event | None:
    kind = TYPES.get(status)
    if kind is None:
        return None
    data: dict[str, Any] = {"request_id": job.id, "status": status.value,
                            "metrics": {**job.metrics, "progress": round(job.progress, 4)}}
    if status is JobStatus.COMPLETED and job.output is not None:
        base = (services.settings.public_url or str(job.meta.get("base_url", ""))).rstrip("/")
        data["output"] = services.blobs.url(job.output, base, services.clock() + services.settings.link_ttl_s)
    if status is JobStatus.FAILED:
        data["error"] = job.error
    when = datetime.datetime.fromtimestamp(job.finished_at or services.clock(), datetime.UTC)
    return Event(kind, {"type": kind, "timestamp": when.isoformat().replace("+00:00", "Z"), "data": data})
