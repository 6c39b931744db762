"""What ``callback_url`` receives: Kling's task object, on each status change.

Kling sends the bare task object (no envelope) when a task starts processing and when it
ends; takeone does the same, signed with Standard Webhooks headers when the key has a
webhook secret (Kling's own callbacks carry no signature).
"""

from __future__ import annotations

from takeone.core.jobs import Job, JobStatus
from takeone.edge.background.webhooks.sender import Event
from takeone.edge.dialects.kling.task import STATUS, task_object
from takeone.edge.services import Services


async def render(services: Services, job: Job, status: JobStatus) -> Event | None:
    base = services.settings.public_url or str(job.meta.get("base_url", ""))
    return Event(f"task.{STATUS[status]}", task_object(job, services, base.rstrip("/"), status))
