"""fal's queue answers: the submit answer, the status object (``IN_QUEUE`` with a 0-based
``queue_position``, ``IN_PROGRESS``, ``COMPLETED``, with ``logs`` when asked), and the result
``{"video": {"url", "content_type", "file_name", "file_size"}, "seed"}``.

A request that failed or was cancelled is ``COMPLETED`` with ``error`` and ``error_type``, as
fal's are; its result is that error.

Example::

    await status_object(services, job, base, with_logs=True)["status"]   # "IN_PROGRESS"
"""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel

from takeone.core.jobs import Job, JobStatus
from takeone.edge.dialects.fal import PREFIX
from takeone.edge.dialects.hosted import is_cancelled, iso, logs_of
from takeone.edge.services import Services

FalStatus = Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED"]


class QueueAnswer(BaseModel):
    request_id: str
    response_url: str
    status_url: str
    cancel_url: str
    queue_position: int | None = None


class StatusAnswer(QueueAnswer):
    status: FalStatus
    logs: list[dict[str, Any]] | None = None
    metrics: dict[str, Any] | None = None
    error: str | None = None
    error_type: str | None = None


class File(BaseModel):
    url: str
    content_type: str
    file_name: str
    file_size: int | None = None


class VideoResult(BaseModel):
    video: File
    seed: int | None = None


def urls(job: Job, base: str) -> dict[str, str]:
    root = f"{base}{PREFIX}/{job.meta.get('app', '')}/requests/{job.id}"
    return {"request_id": job.id, "response_url": root, "status_url": root + "/status",
            "cancel_url": root + "/cancel"}


def fal_status(job: Job) -> FalStatus:
    if job.status is JobStatus.QUEUED:
        return "IN_QUEUE"
    return "IN_PROGRESS" if job.status is JobStatus.PROCESSING else "COMPLETED"


def error_type(job: Job) -> str | None:
    if job.status is not JobStatus.FAILED:
        return None
    return "request_cancelled" if is_cancelled(job) else "generation_failed"


async def status_object(services: Services, job: Job, base: str, with_logs: bool) -> dict[str, Any]:
    body: dict[str, Any] = {"status": fal_status(job), **urls(job, base)}
    if job.status is JobStatus.QUEUED:
        position = await services.store.queue_position(job.id)
        body["queue_position"] = max(0, (position or 1) - 1)
    body["logs"] = log_entries(job) if with_logs else None
    if job.status.is_terminal():
        body["metrics"] = {"inference_time": job.metrics.get("inference_time")}
        if job.status is JobStatus.FAILED:
            body["error"], body["error_type"] = job.error or "failed", error_type(job)
    return body


def log_entries(job: Job) -> list[dict[str, Any]]:
    when = iso(job.started_at or job.created_at)
    return [{"message": line, "level": "INFO", "source": "user", "timestamp": when}
            for line in logs_of(job).splitlines()]


async def result_object(services: Services, job: Job, base: str) -> dict[str, Any]:
    assert job.output is not None
    info = await asyncio.to_thread(services.blobs.stat, job.output)
    url = services.blobs.url(job.output, base, services.clock() + services.settings.link_ttl_s)
    seed = job.metrics.get("seed", job.task.seed)
    return {"video": {"url": url, "content_type": "video/mp4", "file_name": f"{job.id}.mp4",
                      "file_size": info.size if info is not None else None},
            "seed": seed}
