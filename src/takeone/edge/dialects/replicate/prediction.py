"""Replicate's prediction object (what every call answers and what webhooks carry), and the
schemas of its answers for the OpenAPI document.

Statuses: ``starting`` (queued), ``processing``, ``succeeded``, ``failed``, ``canceled``.
``output`` is a link to the MP4 once it succeeded; ``logs`` shows progress in tqdm's form.

Example::

    prediction_object(job, services, "https://api.example.com")["status"]   # "processing"
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel

from takeone.core.jobs import Job, JobStatus
from takeone.edge.dialects.hosted import is_cancelled, iso, logs_of, short_id
from takeone.edge.services import Services

PredictionStatus = Literal["starting", "processing", "succeeded", "failed", "canceled"]


class Prediction(BaseModel):
    id: str
    model: str
    version: str
    input: dict[str, Any]
    logs: str
    output: str | None = None
    data_removed: bool = False
    error: str | None = None
    status: PredictionStatus
    created_at: str
    started_at: str | None = None
    completed_at: str | None = None
    urls: dict[str, str]
    metrics: dict[str, float] | None = None


class PredictionPage(BaseModel):
    previous: str | None = None
    next: str | None = None
    results: list[Prediction]


class WebhookSecret(BaseModel):
    key: str


def status_of(job: Job) -> PredictionStatus:
    if job.status is JobStatus.QUEUED:
        return "starting"
    if job.status is JobStatus.PROCESSING:
        return "processing"
    if job.status is JobStatus.COMPLETED:
        return "succeeded"
    return "canceled" if is_cancelled(job) else "failed"


def prediction_object(job: Job, services: Services, base: str,
                      status: PredictionStatus | None = None) -> dict[str, Any]:
    """The prediction; ``status`` overrides the shown status (a wait that ran out shows
    ``starting``, as Replicate's does)."""
    public = short_id(job.id)
    shown = status or status_of(job)
    output = None
    if job.status is JobStatus.COMPLETED and job.output is not None:
        output = services.blobs.url(job.output, base, services.clock() + services.settings.link_ttl_s)
    metrics = None
    if job.started_at is not None and job.finished_at is not None:
        metrics = {"predict_time": round(job.finished_at - job.started_at, 3),
                   "total_time": round(job.finished_at - job.created_at, 3)}
    return {
        "id": public,
        "model": job.meta.get("model", ""),
        "version": job.meta.get("version", ""),
        "input": job.meta.get("input", {}),
        "logs": logs_of(job),
        "output": output,
        "data_removed": False,
        "error": job.error if shown == "failed" else None,
        "status": shown,
        "created_at": iso(job.created_at),
        "started_at": iso(job.started_at),
        "completed_at": iso(job.finished_at) if job.status.is_terminal() else None,
        "urls": {"get": f"{base}/v1/predictions/{public}", "cancel": f"{base}/v1/predictions/{public}/cancel"},
        "metrics": metrics,
    }
