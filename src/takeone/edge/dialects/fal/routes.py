"""The fal dialect's routes, at the queue host's root (``/fal``):

    POST /fal/{model_id}                                      submit (?fal_webhook=URL)
    GET  /fal/{owner}/{alias}/requests/{id}/status            status (?logs=1)
    GET  /fal/{owner}/{alias}/requests/{id}/status/stream     the same as server-sent events
    GET  /fal/{owner}/{alias}/requests/{id}                   the result
    PUT  /fal/{owner}/{alias}/requests/{id}/cancel            cancel: nothing is charged

``fal_client`` builds ``https://{FAL_QUEUE_RUN_HOST}/...``, so ``FAL_QUEUE_RUN_HOST=<host>/fal``
points it here (it always speaks HTTPS: put the server behind TLS). Keys come as
``Authorization: Key <key>``; scopes, credits, rate limits and ``Idempotency-Key`` work as for
every dialect. Only requests made through this dialect, under the same ``owner/alias``, are
visible here; anything else is a 404.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from takeone.core.errors import InvalidRequest, NotFound
from takeone.core.jobs import Job, JobStatus
from takeone.edge.background.webhooks.delivery import check_webhook_url
from takeone.edge.dialects.actions import base_url, cancel_job, owned
from takeone.edge.dialects.fal import DIALECT, PREFIX, ROUTE
from takeone.edge.dialects.fal.auth import authenticate_key
from takeone.edge.dialects.fal.body import APPS, MODELS, SCHEMAS, fingerprint, model_of, rename
from takeone.edge.dialects.fal.errors import FalError, fal_errors
from takeone.edge.dialects.fal.queue import (
    QueueAnswer,
    StatusAnswer,
    VideoResult,
    error_type,
    result_object,
    status_object,
    urls,
)
from takeone.edge.dialects.tier_prices import TierPrices
from takeone.edge.services import Services
from takeone.edge.submit import Submission, accept, admit, read_body
from takeone.models.registry import get_profile

STREAM_POLL_S = 0.5


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _base(services: Services, request: Request) -> str:
    return base_url(services, str(request.base_url))


@fal_errors
async def submit(request: Request, model_id: str) -> Response:
    services = services_of(request)
    key = await authenticate_key(services, request)
    await admit(services, request, key, ROUTE)
    model = model_of(model_id.strip("/"))
    body = model.parse(await read_body(request, services.settings.max_body_bytes))
    images = model.images(body)
    profile = get_profile(services.settings.profile)
    task = model.task(body, "pending:first_frame" if "first_frame" in images else None,
                      "pending:last_frame" if "last_frame" in images else None, profile)
    webhook = request.query_params.get("fal_webhook")
    if webhook is not None:
        await check_webhook_url(webhook, "fal_webhook", services.fetch_policy)
    base = _base(services, request)
    submission = Submission(route=ROUTE, task=task, images=images, price=services.prices(TierPrices).price(task),
                            rename=rename, fingerprint=fingerprint(model, body), dialect=DIALECT,
                            webhook_url=webhook, meta={"model": model.id, "app": model.app, "base_url": base},
                            aspect_from="first_frame" if "first_frame" in images else None)
    job = await accept(services, request, key, submission, blocking=False)
    answer: dict[str, Any] = {**urls(job, base)}
    if job.status is JobStatus.QUEUED:
        position = await services.store.queue_position(job.id)
        answer["queue_position"] = max(0, (position or 1) - 1)
    return JSONResponse(answer)


async def _own(services: Services, request: Request, owner: str, alias: str, request_id: str) -> Job:
    key = await authenticate_key(services, request)
    job = owned(await services.store.get(request_id), key, DIALECT)
    if job is None or job.meta.get("app") != f"{owner}/{alias}":
        raise NotFound(f"Request {request_id!r} not found")
    return job


def _with_logs(request: Request) -> bool:
    value = request.query_params.get("logs", "0").lower()
    if value not in ("0", "1", "true", "false"):
        raise InvalidRequest("logs", value, "must be 0 or 1")
    return value in ("1", "true")


@fal_errors
async def status(request: Request, owner: str, alias: str, request_id: str) -> Response:
    services = services_of(request)
    job = await _own(services, request, owner, alias, request_id)
    body = await status_object(services, job, _base(services, request), _with_logs(request))
    return JSONResponse(body, status_code=200 if job.status.is_terminal() else 202)


@fal_errors
async def status_stream(request: Request, owner: str, alias: str, request_id: str) -> Response:
    services = services_of(request)
    job = await _own(services, request, owner, alias, request_id)
    with_logs, base = _with_logs(request), _base(services, request)

    async def events() -> AsyncIterator[str]:
        sent = None
        current: Job | None = job
        while current is not None:
            body = await status_object(services, current, base, with_logs)
            text = json.dumps(body)
            if text != sent:
                sent = text
                yield f"data: {text}\n\n"
            if current.status.is_terminal():
                return
            await asyncio.sleep(STREAM_POLL_S)
            current = await services.store.get(job.id)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"cache-control": "no-store"})


@fal_errors
async def result(request: Request, owner: str, alias: str, request_id: str) -> Response:
    services = services_of(request)
    job = await _own(services, request, owner, alias, request_id)
    if not job.status.is_terminal():
        return JSONResponse({"detail": "Request is still in progress"}, status_code=400,
                            headers={"x-fal-error-type": "request_in_progress"})
    if job.status is JobStatus.FAILED:
        kind = error_type(job) or "generation_failed"
        return JSONResponse({"detail": job.error or "failed"}, headers={"x-fal-error-type": kind},
                            status_code=400 if kind == "request_cancelled" else 500)
    return JSONResponse(await result_object(services, job, _base(services, request)))


@fal_errors
async def cancel(request: Request, owner: str, alias: str, request_id: str) -> Response:
    services = services_of(request)
    job = await _own(services, request, owner, alias, request_id)
    if job.status.is_terminal():
        return JSONResponse({"status": "ALREADY_COMPLETED"}, status_code=400)
    await cancel_job(services, job.id, "cancelled")
    return JSONResponse({"status": "CANCELLATION_REQUESTED"}, status_code=202)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": FalError, "description": "An error in fal's shape"} for code in codes}


def _submit_doc() -> dict[str, Any]:
    schemas = [{"$ref": f"#/components/schemas/{s.__name__}"} for s in SCHEMAS]
    webhook = {"name": "fal_webhook", "in": "query", "required": False, "schema": {"type": "string"},
               "description": "Receives the result when the request ends (POST, JSON, signed)."}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": schemas}}}},
            "parameters": [webhook], "description": "Model ids: " + ", ".join(MODELS) + "."}


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["fal queue API"])
    common = _errors(401, 404, 422, 429, 500)
    requests = "/{owner}/{alias}/requests/{request_id}"
    api.add_api_route("/{model_id:path}", submit, methods=["POST"], response_model=QueueAnswer,
                      responses=_errors(401, 403, 404, 409, 413, 422, 429, 500, 502, 503),
                      openapi_extra=_submit_doc(), summary="Submit a request to a model (fal queue)")
    logs = {"parameters": [{"name": "logs", "in": "query", "required": False,
                            "schema": {"type": "integer", "enum": [0, 1]}, "description": "Include logs."}]}
    api.add_api_route(requests + "/status", status, methods=["GET"], response_model=StatusAnswer,
                      responses=common, openapi_extra=logs, summary="A request's status (fal queue)")
    api.add_api_route(requests + "/status/stream", status_stream, methods=["GET"], response_class=StreamingResponse,
                      responses={200: {"content": {"text/event-stream": {}}, "description": "Status events"},
                                 **common}, openapi_extra=logs,
                      summary="A request's status as server-sent events until it ends (fal queue)")
    api.add_api_route(requests, result, methods=["GET"], response_model=VideoResult, responses=common,
                      summary="A request's result (fal queue)")
    api.add_api_route(requests + "/cancel", cancel, methods=["PUT"], status_code=202, responses=common,
                      summary="Cancel a request; nothing is charged (fal queue)")
    return api


def install(app: FastAPI) -> None:
    app.include_router(router())


__all__ = ["APPS", "SCHEMAS", "install"]
