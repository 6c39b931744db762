"""What ``fal_webhook`` receives when a request ends, as fal sends it:
``{"request_id", "gateway_request_id", "status": "OK", "payload": <the result>}``, or
``"status": "ERROR"`` with ``error`` and a ``payload`` of ``{"detail": ...}``. Nothing is sent
when a request starts. Deliveries are signed with Standard Webhooks headers when the key has
a ``whsec_`` secret (fal's own are signed with its ED25519 keys instead).
"""

from __future__ import annotations

from takeone.core.jobs import Job, JobStatus
from takeone.edge.background.webhooks.sender import Event
from takeone.edge.dialects.fal.queue import error_type, result_object
from takeone.edge.services import Services


async def render(services: Services, job: Job, status: JobStatus) -> Event | None:
    if not status.is_terminal():
        return None
    base = (services.settings.public_url or str(job.meta.get("base_url", ""))).rstrip("/")
    head = {"request_id": job.id, "gateway_request_id": job.id}
    if status is JobStatus.COMPLETED and job.output is not None:
        return Event("request.completed", {**head, "status": "OK",
                                           "payload": await result_object(services, job, base)})
    message = job.error or "failed"
    return Event("request.failed", {**head, "status": "ERROR", "error": message,
                                    "error_type": error_type(job), "payload": {"detail": message}})
