"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``.

The status codes are the core's (:mod:`takeone.edge.errors`) except where OpenAI's own API
answers otherwise: a balance too small for the price is OpenAI's ``insufficient_quota``, a 429.

Example::

    return openai_error(InvalidRequest("seconds", "7", "must be one of 4, 8, 12"))  # 400
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

from fastapi.responses import JSONResponse, Response

from takeone.core import errors
from takeone.edge.errors import status_of

P = ParamSpec("P")

# (type, code) by core error class; the first match along the class's MRO wins.
_KINDS: dict[type[errors.TakeoneError], tuple[str, str | None]] = {
    errors.InvalidRequest: ("invalid_request_error", "invalid_value"),
    errors.Unauthorized: ("invalid_request_error", "invalid_api_key"),
    errors.Forbidden: ("permission_error", "model_not_allowed"),
    errors.NotFound: ("invalid_request_error", "not_found"),
    errors.Conflict: ("invalid_request_error", "conflict"),
    errors.PayloadTooLarge: ("invalid_request_error", "request_too_large"),
    errors.InsufficientCredits: ("insufficient_quota", "insufficient_quota"),
    errors.RateLimited: ("requests", "rate_limit_exceeded"),
    errors.StoreUnavailable: ("server_error", "service_unavailable"),
    errors.DeadlineExceeded: ("server_error", "timeout"),
    errors.TakeoneError: ("server_error", None),
}


class UnknownParameter(errors.InvalidRequest):
    """A body field OpenAI's API does not have (its own error code)."""

    def __init__(self, name: str) -> None:
        super().__init__(name, errors.MISSING, "unknown parameter")
        self.message = f"Unknown parameter: {name!r}."


def status_for(exc: errors.TakeoneError) -> int:
    return 429 if isinstance(exc, errors.InsufficientCredits) else status_of(exc)


def error_body(exc: errors.TakeoneError) -> dict[str, Any]:
    kind, code = next(_KINDS[c] for c in type(exc).__mro__ if c in _KINDS)
    if isinstance(exc, UnknownParameter):
        code = "unknown_parameter"
    param = exc.field if isinstance(exc, errors.InvalidRequest) else None
    return {"error": {"message": exc.message, "type": kind, "param": param, "code": code}}


def openai_error(exc: errors.TakeoneError) -> JSONResponse:
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, errors.RateLimited) else {}
    return JSONResponse(error_body(exc), status_code=status_for(exc), headers=headers)


def openai_errors(handler: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Answer every :class:`TakeoneError` the handler raises in OpenAI's shape."""

    @functools.wraps(handler)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await handler(*args, **kwargs)
        except errors.TakeoneError as exc:
            return openai_error(exc)

    return wrapped
