"""Errors in Replicate's shape: RFC 7807 problem details, ``application/problem+json``.

``{"type", "title", "detail", "status"}``, and for a bad input ``invalid_fields`` naming the
field, as Replicate answers (422). A balance too small for the price is Replicate's 402
(``Insufficient credit``); the other codes are the core's (:mod:`takeone.edge.errors`).

Example::

    return replicate_error(InvalidRequest("duration", 7, "must be 5 or 10"))   # 422
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from takeone.core import errors
from takeone.edge.dialects.hosted import answer_errors
from takeone.edge.errors import status_of

MEDIA_TYPE = "application/problem+json"
_TITLES: dict[type[errors.TakeoneError], tuple[int | None, str]] = {
    errors.InvalidRequest: (422, "Input validation failed"),
    errors.Unauthorized: (401, "Unauthenticated"),
    errors.Forbidden: (403, "Forbidden"),
    errors.NotFound: (404, "Not found"),
    errors.Conflict: (409, "Conflict"),
    errors.PayloadTooLarge: (413, "Request too large"),
    errors.InsufficientCredits: (402, "Insufficient credit"),
    errors.RateLimited: (429, "Request was throttled"),
    errors.TakeoneError: (None, "Server error"),
}


class InvalidField(BaseModel):
    type: str
    field: str
    description: str


class Problem(BaseModel):
    """An error, as Replicate's API answers one."""

    type: str | None = None
    title: str
    detail: str
    status: int
    invalid_fields: list[InvalidField] | None = None


def status_for(exc: errors.TakeoneError) -> int:
    status, _ = next(_TITLES[c] for c in type(exc).__mro__ if c in _TITLES)
    if isinstance(exc, errors.InvalidRequest) and exc.field == "body":
        return 400
    return status or status_of(exc)


def problem(exc: errors.TakeoneError) -> dict[str, Any]:
    status = status_for(exc)
    _, title = next(_TITLES[c] for c in type(exc).__mro__ if c in _TITLES)
    body: dict[str, Any] = {"type": None, "title": title, "detail": exc.message, "status": status}
    if isinstance(exc, errors.InvalidRequest):
        kind = "required" if exc.value is errors.MISSING else "invalid"
        body["invalid_fields"] = [{"type": kind, "field": exc.field, "description": exc.reason}]
    return body


def replicate_error(exc: errors.TakeoneError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, errors.RateLimited) else {}
    return JSONResponse(problem(exc), status_code=status_for(exc), headers=headers, media_type=MEDIA_TYPE)


replicate_errors = answer_errors(replicate_error)
