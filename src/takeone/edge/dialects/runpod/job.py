"""RunPod's job object: ``{"id", "status", "delayTime", "executionTime", "output" | "error"}``.

Statuses: ``IN_QUEUE``, ``IN_PROGRESS``, ``COMPLETED``, ``FAILED``, ``CANCELLED`` and
``TIMED_OUT`` (a job that ran past the server's job timeout). Times are milliseconds. A
completed job's ``output`` is ``{"video": <link to the MP4>, "seed", "width", "height",
"seconds", "has_audio"}``.

Example::

    job_object(job, services, "https://api.example.com")["status"]   # "IN_PROGRESS"
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from takeone.core.jobs import Job, JobStatus
from takeone.edge.dialects.hosted import is_cancelled, logs_of, progress_pct
from takeone.edge.services import Services

RunpodStatus = Literal["IN_QUEUE", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT"]


class JobAnswer(BaseModel):
    id: str
    status: RunpodStatus
    delayTime: int | None = None
    executionTime: int | None = None
    output: dict[str, Any] | None = None
    error: str | None = None


class StreamAnswer(BaseModel):
    status: RunpodStatus
    stream: list[dict[str, Any]]


class HealthAnswer(BaseModel):
    jobs: dict[str, int]
    workers: dict[str, int]


def status_of(job: Job) -> RunpodStatus:
    if job.status is JobStatus.QUEUED:
        return "IN_QUEUE"
    if job.status is JobStatus.PROCESSING:
        return "IN_PROGRESS"
    if job.status is JobStatus.COMPLETED:
        return "COMPLETED"
    if is_cancelled(job):
        return "CANCELLED"
    return "TIMED_OUT" if "deadline" in (job.error or "") else "FAILED"


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def job_object(job: Job, services: Services, base: str) -> dict[str, Any]:
    body: dict[str, Any] = {"id": job.id, "status": status_of(job)}
    if job.started_at is not None:
        body["delayTime"] = _ms(job.started_at - job.created_at)
        if job.finished_at is not None:
            body["executionTime"] = _ms(job.finished_at - job.started_at)
    if job.status is JobStatus.COMPLETED and job.output is not None:
        m = job.metrics
        body["output"] = {
            "video": services.blobs.url(job.output, base, services.clock() + services.settings.link_ttl_s),
            "seed": m.get("seed", job.task.seed), "width": m.get("width"), "height": m.get("height"),
            "seconds": job.task.seconds, "has_audio": m.get("has_audio", job.task.audio)}
    elif job.status is JobStatus.FAILED:
        body["error"] = job.error or "failed"
    return body


def stream_chunks(job: Job) -> list[dict[str, Any]]:
    """While the job runs, one chunk with its progress; none once it has ended (the SDK's
    ``Job.stream()`` stops on an empty stream of a finished job)."""
    if job.status.is_terminal():
        return []
    lines = logs_of(job).splitlines()
    return [{"output": {"progress": progress_pct(job), "message": lines[-1] if lines else "in queue"}}]
