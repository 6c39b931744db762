"""Response bodies of the Segmind dialect, for the OpenAPI document and for tests."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Status = Literal["QUEUED", "PROCESSING", "COMPLETED", "FAILED"]


class ErrorBody(BaseModel):
    error: str = Field(description="One sentence naming the parameter and the value.")


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


class HealthBody(BaseModel):
    status: Literal["ready", "starting", "unavailable"]
    profile: str
    workers: list[dict[str, Any]]
    error: str | None = None
    notes: list[str] = []


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in [
        (400, "Invalid parameters or request format"),
        (401, "Missing or invalid API key"),
        (403, "The key may not call this model"),
        (404, "Model or request not found"),
        (406, "Not enough credits"),
        (409, "Idempotency-Key reused for another request, or nothing left to cancel"),
        (413, "Request body too large"),
        (429, "Too many requests (see Retry-After)"),
        (500, "Server error"),
        (502, "No worker can serve the request"),
        (503, "The job store cannot take writes right now (see /healthz)"),
        (504, "The blocking call's deadline passed"),
    ]
}
