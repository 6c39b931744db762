"""Kling's task object (what the GETs answer in ``data`` and what ``callback_url`` receives),
and the schemas of its answers for the OpenAPI document. Times are Unix milliseconds.

Example::

    task_object(job, services, base="https://api.example.com")["task_status"]   # "succeed"
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from takeone.core.jobs import Job, JobStatus
from takeone.edge.services import Services

STATUS = {JobStatus.QUEUED: "submitted", JobStatus.PROCESSING: "processing",
          JobStatus.COMPLETED: "succeed", JobStatus.FAILED: "failed"}
TaskStatus = Literal["submitted", "processing", "succeed", "failed"]


class TaskVideo(BaseModel):
    id: str
    url: str
    duration: str


class TaskResult(BaseModel):
    videos: list[TaskVideo]


class TaskInfo(BaseModel):
    external_task_id: str | None = None


class TaskObject(BaseModel):
    task_id: str
    task_status: TaskStatus
    task_status_msg: str
    task_info: TaskInfo
    task_result: TaskResult | None = None
    created_at: int
    updated_at: int


class TaskAnswer(BaseModel):
    code: int
    message: str
    request_id: str
    data: TaskObject


class TaskListAnswer(BaseModel):
    code: int
    message: str
    request_id: str
    data: list[TaskObject]


class ErrorAnswer(BaseModel):
    code: int
    message: str
    request_id: str
    data: None = None


def _ms(seconds: float) -> int:
    return int(round(seconds * 1000))


def task_object(job: Job, services: Services, base: str, status: JobStatus | None = None) -> dict[str, Any]:
    """The task as Kling shows it; ``status`` renders an earlier state (a queued callback)."""
    status = status or job.status
    updated = job.finished_at if status.is_terminal() else job.started_at
    body: dict[str, Any] = {
        "task_id": job.id,
        "task_status": STATUS[status],
        "task_status_msg": (job.error or "failed") if status is JobStatus.FAILED else "",
        "task_info": {"external_task_id": job.external_id},
        "created_at": _ms(job.created_at),
        "updated_at": _ms(updated or job.created_at),
    }
    if status is JobStatus.COMPLETED and job.output is not None:
        expires = services.clock() + services.settings.link_ttl_s
        url = services.blobs.url(job.output, base, expires)
        body["task_result"] = {"videos": [{"id": job.id, "url": url, "duration": str(job.task.seconds)}]}
    return body
