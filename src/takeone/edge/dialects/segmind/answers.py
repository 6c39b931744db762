"""The Segmind dialect's answer bodies (submit, status, result, credits), for the OpenAPI
document and for tests."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["QUEUED", "PROCESSING", "COMPLETED", "FAILED"]


class SubmitBody(BaseModel):
    request_id: str
    status: Status
    poll_url: str
    status_url: str
    response_url: str


class StatusBody(BaseModel):
    request_id: str
    status: Status
    status_url: str
    response_url: str
    metrics: dict[str, Any] = Field(
        description="progress (0..1), queue_position while QUEUED; when done inference_time (seconds in "
        "the worker), generate_seconds (denoising), deliver_seconds (decode + MP4 encode), seed, size.")
    error: str | None = None


class ResultBody(BaseModel):
    request_id: str
    status: Status
    output: str | None = Field(None, description="Signed, expiring link to the MP4.")
    metrics: dict[str, Any]
    error: str | None = None


class CreditsBody(BaseModel):
    credits: float
    free_credits: float = Field(alias="free-credits")
