"""Errors in fal's shape: ``{"detail": ...}``, with ``x-fal-error-type``.

A bad input is a 422 whose ``detail`` is a list of ``{"loc": ["body", field], "msg", "type"}``,
as fal's validation answers; everything else is ``{"detail": message}`` with the core's
status (:mod:`takeone.edge.errors`), except that a balance too small for the price is fal's
403 ("exhausted balance").

Example::

    return fal_error(InvalidRequest("duration", "7", "must be 5 or 10"))   # 422
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from takeone.core import errors
from takeone.edge.dialects.hosted import answer_errors
from takeone.edge.errors import status_of

_TYPES: dict[type[errors.TakeoneError], str] = {
    errors.InvalidRequest: "validation_error",
    errors.Unauthorized: "unauthorized",
    errors.Forbidden: "forbidden",
    errors.InsufficientCredits: "exhausted_balance",
    errors.NotFound: "not_found",
    errors.RateLimited: "rate_limited",
    errors.TakeoneError: "internal_error",
}


class FalError(BaseModel):
    detail: Any


def status_for(exc: errors.TakeoneError) -> int:
    if isinstance(exc, errors.InsufficientCredits):
        return 403
    if isinstance(exc, errors.InvalidRequest):
        return 422
    return status_of(exc)


def error_body(exc: errors.TakeoneError) -> dict[str, Any]:
    if isinstance(exc, errors.InvalidRequest):
        value = None if exc.value is errors.MISSING else exc.value
        return {"detail": [{"loc": ["body", exc.field], "msg": exc.message, "type": "value_error",
                            "input": value if isinstance(value, (str, int, float, bool)) else None}]}
    return {"detail": exc.message}


def fal_error(exc: errors.TakeoneError) -> JSONResponse:
    kind = next(_TYPES[c] for c in type(exc).__mro__ if c in _TYPES)
    headers = {"x-fal-error-type": kind}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(error_body(exc), status_code=status_for(exc), headers=headers)


fal_errors = answer_errors(fal_error)
