"""OpenAI's webhook events for videos: ``video.completed`` and ``video.failed``.

The body is OpenAI's event envelope; its ``data`` holds the video id only, as OpenAI's do (a
receiver retrieves the video for the rest). Nothing is sent when a video starts.

Example::

    {"id": "evt_...", "object": "event", "created_at": 1767225600, "type": "video.completed",
     "data": {"id": "video_..."}}
"""

from __future__ import annotations

import hashlib

from takeone.core.jobs import Job, JobStatus
from takeone.edge.background.webhooks.sender import Event
from takeone.edge.dialects.openai.video import public_id
from takeone.edge.services import Services

TYPES = {JobStatus.COMPLETED: "video.completed", JobStatus.FAILED: "video.failed"}


async def render(services: Services, job: Job, status: JobStatus) -> Event | None:
    kind = TYPES.get(status)
    if kind is None:
        return None
    event_id = "evt_" + hashlib.sha256(f"{job.id}:{status.value}".encode()).hexdigest()[:24]
    when = job.finished_at or services.clock()
    return Event(kind, {"id": event_id, "object": "event", "created_at": int(when), "type": kind,
                        "data": {"id": public_id(job.id)}})
