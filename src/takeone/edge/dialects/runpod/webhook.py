"""What ``webhook`` receives when a job ends: the job object, as ``/status`` answers it
(RunPod sends the same), signed with Standard Webhooks headers when the key has a ``whsec_``
secret. Nothing is sent when a job starts.
"""

from __future__ import annotations

from takeone.core.jobs import Job, JobStatus
from takeone.edge.background.webhooks.sender import Event
from takeone.edge.dialects.runpod.job import job_object, status_of
from takeone.edge.services import Services


async def render(services: Services, job: Job, status: JobStatus) -> Event | None:
    if not status.is_terminal():
        return None
    base = (services.settings.public_url or str(job.meta.get("base_url", ""))).rstrip("/")
    return Event(f"job.{status_of(job).lower()}", job_object(job, services, base))
