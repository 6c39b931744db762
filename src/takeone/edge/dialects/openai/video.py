"""The Video object, list and deletion answers of OpenAI's Videos API (and their schemas).

Example::

    video_object(job, retention_s=86400)["status"]   # "queued" | "in_progress" | ...
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

from pydantic import BaseModel, Field

from takeone.core.jobs import Job, JobStatus

ID_PREFIX = "video_"
STATUS = {JobStatus.QUEUED: "queued", JobStatus.PROCESSING: "in_progress",
          JobStatus.COMPLETED: "completed", JobStatus.FAILED: "failed"}
VideoStatus = Literal["queued", "in_progress", "completed", "failed"]


class VideoError(BaseModel):
    code: str
    message: str


class Video(BaseModel):
    """A video job, as OpenAI's API describes one."""

    id: str
    object: Literal["video"] = "video"
    model: str
    status: VideoStatus
    progress: int = Field(ge=0, le=100)
    created_at: int
    completed_at: int | None = None
    expires_at: int | None = Field(None, description="When the video and its record are deleted.")
    seconds: str = Field(description="The delivered clip's length.")
    size: str = Field(description="The delivered clip's WIDTHxHEIGHT.")
    prompt: str | None = None
    remixed_from_video_id: str | None = None
    error: VideoError | None = None


class VideoList(BaseModel):
    object: Literal["list"] = "list"
    data: list[Video]
    first_id: str | None = None
    last_id: str | None = None
    has_more: bool


class VideoDeleted(BaseModel):
    id: str
    object: Literal["video.deleted"] = "video.deleted"
    deleted: bool


class ErrorDetail(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class OpenAIError(BaseModel):
    error: ErrorDetail


def public_id(job_id: str) -> str:
    return ID_PREFIX + job_id


def job_id_of(video_id: str) -> str | None:
    return video_id[len(ID_PREFIX):] if video_id.startswith(ID_PREFIX) else None


def video_object(job: Job, retention_s: float) -> dict[str, Any]:
    meta = job.meta
    done = job.status is JobStatus.COMPLETED
    finished = job.finished_at if job.status.is_terminal() else None
    return {
        "id": public_id(job.id),
        "object": "video",
        "model": meta.get("model", ""),
        "status": STATUS[job.status],
        "progress": 100 if done else int(round(job.progress * 100)),
        "created_at": int(job.created_at),
        "completed_at": int(finished) if done and finished is not None else None,
        "expires_at": int(finished + retention_s) if finished is not None else None,
        "seconds": str(meta.get("seconds", job.task.seconds)),
        "size": meta.get("size", ""),
        "prompt": meta.get("prompt"),
        "remixed_from_video_id": None,
        "error": _error(job),
        **({"loras": [dataclasses.asdict(u) for u in job.task.loras]} if job.task.loras else {}),
    }


def _error(job: Job) -> dict[str, str] | None:
    if job.status is not JobStatus.FAILED:
        return None
    message = job.error or "generation failed"
    code = "cancelled" if message.startswith("cancelled") else "video_generation_failed"
    return {"code": code, "message": message}
