"""HTTP status codes for takeone's errors, assigned here and nowhere else.

Every answer that is not a success has the body ``{"error": "<one clear sentence>"}``
(the segmind SDK reads only that key).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from takeone.core import errors
from takeone.edge.methods import allowed_methods

log = logging.getLogger("takeone.api")

HTTP_STATUS: dict[type[errors.TakeoneError], int] = {
    errors.TakeoneError: 500,
    errors.InvalidRequest: 400,
    errors.ImageError: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.InsufficientCredits: 406,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.RequestTimeout: 408,
    errors.RateLimited: 429,
    errors.GenerationFailed: 500,
    errors.JobCancelled: 500,
    errors.OutOfMemory: 500,
    errors.WorkerUnavailable: 502,
    errors.WeightsMissing: 502,
    errors.InsufficientGpuMemory: 502,
    errors.StoreUnavailable: 503,
    errors.DeadlineExceeded: 504,
}


def status_of(exc: errors.TakeoneError) -> int:
    for cls in type(exc).__mro__:
        if cls in HTTP_STATUS:
            return HTTP_STATUS[cls]
    return 500


def error_response(exc: errors.TakeoneError, credits: float | None = None) -> JSONResponse:
    headers: dict[str, str] = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    if credits is not None:
        headers["x-remaining-credits"] = f"{credits:g}"
    return JSONResponse({"error": exc.message}, status_code=status_of(exc), headers=headers)


async def _remaining_credits(request: Request) -> float | None:
    """The caller's balance for ``x-remaining-credits``, if the key is known and readable."""
    key_id = getattr(request.state, "key_id", None)
    if key_id is None:
        return None
    try:
        balance: float = await request.app.state.services.store.balance(key_id)
    except errors.TakeoneError:
        return None
    return balance


def install(app: FastAPI) -> None:
    """Register the handlers that turn every failure into ``{"error": ...}``."""

    async def on_takeone(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, errors.TakeoneError)
        return error_response(exc, await _remaining_credits(request))

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        message = "not found" if exc.status_code == 404 else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 405:  # every route of the path counts, not only the first
            allowed = allowed_methods(request)
            headers["Allow"] = ", ".join(allowed) if allowed else headers.get("Allow", "")
            if request.method == "OPTIONS" and allowed:
                return Response(status_code=204, headers=headers)
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ())[1:]) or "request"
        message = f"{field}: {first.get('msg', 'invalid')} (got {first.get('input')!r})"
        return JSONResponse({"error": message}, status_code=400)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse({"error": "internal server error"}, status_code=500)

    app.add_exception_handler(errors.TakeoneError, on_takeone)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(Exception, on_unexpected)
