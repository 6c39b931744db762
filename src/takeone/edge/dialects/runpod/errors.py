"""Errors in RunPod's shape: ``{"error": message}``.

The status codes are the core's (:mod:`takeone.edge.errors`), except that a balance too small
for the price is a 402 (payment required), as RunPod's API answers an account out of funds.

Example::

    return runpod_error(InvalidRequest("input.duration", 7, "must be 5 or 10"))   # 400
"""

from __future__ import annotations

from fastapi.responses import JSONResponse
from pydantic import BaseModel

from takeone.core import errors
from takeone.edge.dialects.hosted import answer_errors
from takeone.edge.errors import status_of


class RunpodError(BaseModel):
    error: str


def status_for(exc: errors.TakeoneError) -> int:
    return 402 if isinstance(exc, errors.InsufficientCredits) else status_of(exc)


def runpod_error(exc: errors.TakeoneError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, errors.RateLimited) else {}
    return JSONResponse({"error": exc.message}, status_code=status_for(exc), headers=headers)


runpod_errors = answer_errors(runpod_error)
