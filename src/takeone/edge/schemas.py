"""Answer bodies every dialect's server shares, for the OpenAPI document and for tests: the
``{"error": ...}`` body of the server's own routes and what each status code means there, and
the ``/healthz`` answer. A dialect's own answers live in its folder."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    error: str = Field(description="One sentence naming the parameter and the value.")


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
