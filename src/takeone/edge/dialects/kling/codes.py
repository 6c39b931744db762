"""Kling's answer envelope and error codes.

Every answer is ``{"code", "message", "request_id", "data"}``: code 0 and message
``SUCCEED`` on success; otherwise a code whose class says what went wrong, and an HTTP
status that follows the class, as Kling's own API does:

    1000-1004  authentication (401)      1102  balance too small for the price (429)
    1103       no permission (403)       1201  invalid parameters (400)
    1203       no such task (404)        1302  requests too fast (429); 1303 too many at once
    5000       server error (500)        5001  unavailable (503); 5002 timed out (504)

Example::

    return kling_error(InvalidRequest("duration", "7", "must be 5 or 10"))   # 400, code 1201
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

from fastapi.responses import JSONResponse, Response

from takeone.core import errors
from takeone.edge.dialects.kling.auth import TokenRefused

P = ParamSpec("P")

# (HTTP status, code) by core error class; the first match along the class's MRO wins.
_CODES: dict[type[errors.TakeoneError], tuple[int, int]] = {
    errors.Unauthorized: (401, 1000),
    errors.Forbidden: (403, 1103),
    errors.InsufficientCredits: (429, 1102),
    errors.InvalidRequest: (400, 1201),
    errors.Conflict: (400, 1201),
    errors.PayloadTooLarge: (400, 1201),
    errors.NotFound: (404, 1203),
    errors.RateLimited: (429, 1302),
    errors.WorkerUnavailable: (503, 5001),
    errors.StoreUnavailable: (503, 5001),
    errors.DeadlineExceeded: (504, 5002),
    errors.TakeoneError: (500, 5000),
}


def status_and_code(exc: errors.TakeoneError) -> tuple[int, int]:
    status, code = next(_CODES[c] for c in type(exc).__mro__ if c in _CODES)
    if isinstance(exc, TokenRefused):
        code = exc.code
    elif isinstance(exc, errors.RateLimited) and "concurrent" in exc.message:
        code = 1303
    return status, code


def request_id() -> str:
    return str(uuid.uuid4())


def envelope(data: Any) -> dict[str, Any]:
    return {"code": 0, "message": "SUCCEED", "request_id": request_id(), "data": data}


def kling_error(exc: errors.TakeoneError) -> JSONResponse:
    status, code = status_and_code(exc)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, errors.RateLimited) else {}
    body = {"code": code, "message": exc.message, "request_id": request_id(), "data": None}
    return JSONResponse(body, status_code=status, headers=headers)


def kling_errors(handler: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Answer every :class:`TakeoneError` the handler raises in Kling's envelope."""

    @functools.wraps(handler)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await handler(*args, **kwargs)
        except errors.TakeoneError as exc:
            return kling_error(exc)

    return wrapped
