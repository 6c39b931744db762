"""The Segmind dialect: blocking and queued generation, status, results, credits.

See contracts.md sections 1-4: URLs in answers are absolute, a FAILED request answers 422,
``x-remaining-credits`` is on every authenticated answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from takeone.core.errors import (
    Conflict,
    DeadlineExceeded,
    GenerationFailed,
    NotFound,
    TakeoneError,
    WorkerUnavailable,
)
from takeone.core.jobs import Job, JobStatus
from takeone.dispatch.joblog import log_finished
from takeone.edge import schemas
from takeone.edge.auth import authenticate
from takeone.edge.background.webhooks.delivery import check_webhook_url
from takeone.edge.dialects.actions import owned
from takeone.edge.dialects.segmind import answers
from takeone.edge.dialects.segmind.endpoint_input import EndpointInput
from takeone.edge.dialects.segmind.pricing import PriceTable
from takeone.edge.dialects.segmind.registry import ENDPOINTS, EndpointSpec, get_endpoint
from takeone.edge.files import blob_response
from takeone.edge.health import check_available
from takeone.edge.methods import catch_all, refuse_if_served
from takeone.edge.services import Services
from takeone.edge.submit import Submission, accept, admit, read_body

DISCONNECT_CHECK_S = 1.0
DIALECT = "segmind"
WEBHOOK_PARAM = {"name": "webhook", "in": "query", "required": False, "schema": {"type": "string"},
                 "description": "A URL that receives video.completed or video.failed (Standard"
                 " Webhooks); default: the key's webhook URL, if set"}


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def base_url(services: Services, request: Request) -> str:
    return (services.settings.public_url or str(request.base_url)).rstrip("/")


def router() -> APIRouter:
    api = APIRouter()
    for spec in ENDPOINTS.values():
        _add_generation_routes(api, spec)
    api.add_api_route("/v1/{slug}", unknown_model, methods=["POST"], include_in_schema=False)
    api.add_api_route("/v2/{slug}", unknown_model, methods=["POST"], include_in_schema=False)
    api.add_api_route("/v2/requests/{request_id}/status", get_status, methods=["GET"],
                      response_model=answers.StatusBody, responses=_failed(answers.StatusBody),
                      summary="Status of a queued request")
    api.add_api_route("/v2/requests/{request_id}", get_result, methods=["GET"],
                      response_model=answers.ResultBody, responses=_failed(answers.ResultBody),
                      summary="Result of a queued request")
    api.add_api_route("/v1/requests/{request_id}", get_result, methods=["GET"],
                      response_model=answers.ResultBody, responses=_failed(answers.ResultBody),
                      summary="Result of a queued request (legacy poll_url)")
    api.add_api_route("/v2/requests/{request_id}/cancel", cancel, methods=["POST"],
                      response_model=answers.StatusBody, responses=_errors(401, 404, 409),
                      summary="Cancel a queued or running request (it ends FAILED, nothing charged)")
    api.add_api_route("/v1/get-user-credits", get_credits, methods=["GET"],
                      response_model=answers.CreditsBody, responses=_errors(401),
                      summary="The key's remaining credits")
    return api


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {c: schemas.ERRORS[c] for c in codes}


def _failed(model: type[object]) -> dict[int | str, dict[str, Any]]:
    """FAILED requests answer 422 with the same body shape (Segmind's convention)."""
    return {**_errors(401, 404), 422: {"model": model, "description": "The request FAILED"}}


def _body_doc(spec: EndpointSpec) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{spec.schema.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def _add_generation_routes(api: APIRouter, spec: EndpointSpec) -> None:
    async def blocking(request: Request) -> Response:
        return await run_blocking(request, spec.slug)

    async def queued(request: Request) -> JSONResponse:
        return await submit_queued(request, spec.slug)

    video: dict[int | str, dict[str, Any]] = {
        200: {"content": {"video/mp4": {}}, "description": "The MP4 file."}}
    api.add_api_route(f"/v1/{spec.slug}", blocking, methods=["POST"], summary=spec.summary,
                      operation_id=f"run_{spec.slug.replace('-', '_').replace('.', '_')}",
                      responses={**video, **schemas.ERRORS}, openapi_extra=_body_doc(spec),
                      response_class=Response)
    api.add_api_route(f"/v2/{spec.slug}", queued, methods=["POST"], summary=f"{spec.summary} (queued)",
                      operation_id=f"submit_{spec.slug.replace('-', '_').replace('.', '_')}",
                      response_model=answers.SubmitBody, responses=schemas.ERRORS,
                      openapi_extra={**_body_doc(spec), "parameters": [WEBHOOK_PARAM]})


@catch_all
async def unknown_model(request: Request, slug: str) -> Response:
    refuse_if_served(request)  # POST /v1/get-user-credits: a 405, not an unknown model
    services = services_of(request)
    await authenticate(services, request)
    raise NotFound(f"unknown model {slug!r}: this server serves {', '.join(ENDPOINTS)}")


async def _accept(request: Request, slug: str, blocking: bool) -> Job:
    services = services_of(request)
    key = await authenticate(services, request)
    spec = get_endpoint(slug)
    await admit(services, request, key, slug)
    body = spec.parse(await read_body(request, services.settings.max_body_bytes))
    submission = _submission(services, spec, body)
    webhook = None if blocking else request.query_params.get("webhook")
    if webhook is not None:  # asked for as fal does: POST /v2/{slug}?webhook=URL
        await check_webhook_url(webhook, "webhook", services.fetch_policy)
    submission = dataclasses.replace(submission, webhook_url=webhook,
                                     meta={"base_url": base_url(services, request)})
    return await accept(services, request, key, submission, blocking)


def _submission(services: Services, spec: EndpointSpec, body: EndpointInput) -> Submission:
    fields = spec.roles()
    images = {fields[name]: (name, value) for name, value in spec.image_inputs(body).items()}
    task = spec.to_task(body, {name: f"pending:{name}" for name in spec.image_inputs(body)})
    fields = body.model_dump(exclude={"loras"} if body.loras is None else None)  # as before LoRAs
    fingerprint = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
    return Submission(route=spec.slug, task=task, images=images,
                      price=services.prices(PriceTable).price(spec.slug, task), rename=spec.rename,
                      dialect=DIALECT, fingerprint=fingerprint)


async def cancel_job(services: Services, job_id: str, reason: str) -> Job | None:
    """Fail the job now (releasing its credits); a running one stops at its next step."""
    failed = await services.store.fail(job_id, reason)
    services.cancel_running(job_id)
    if failed is not None:
        log_finished(failed)
    return await services.store.get(job_id)


async def run_blocking(request: Request, slug: str) -> Response:
    services = services_of(request)
    started = time.monotonic()
    job = await _accept(request, slug, blocking=True)
    timeout = services.settings.sync_timeout_s
    done = await _wait_while_connected(request, services, job.id, timeout)
    if done is None:
        return Response(status_code=499)  # nobody is listening any more
    if not done.status.is_terminal():
        await cancel_job(services, job.id, f"the blocking call's deadline of {timeout:g} s passed")
        raise DeadlineExceeded(
            f"the video was not ready within {timeout:g} s; the request was cancelled and"
            f" nothing was charged (use POST /v2/{slug} for long jobs)")
    if done.status is JobStatus.FAILED:
        raise await _failure(services, done)
    return await _video_response(services, done, time.monotonic() - started)


async def _wait_while_connected(request: Request, services: Services, job_id: str,
                                timeout: float) -> Job | None:
    """Wait for the job; if the caller hangs up first, cancel it (None): a video nobody can
    receive must not be charged (the segmind SDK's default read timeout is 30 s)."""
    waiting = asyncio.ensure_future(services.waiter.wait(job_id, timeout))
    try:
        # One wait for the whole timeout (it reads the job when woken and at the end, not on
        # each connection check); the connection is checked beside it.
        while not (await asyncio.wait({waiting}, timeout=DISCONNECT_CHECK_S))[0]:
            if await request.is_disconnected():
                waiting.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await waiting
                await cancel_job(services, job_id, "the client disconnected before the video was ready")
                return None
        return waiting.result()
    finally:
        waiting.cancel()


async def _failure(services: Services, job: Job) -> TakeoneError:
    try:
        await check_available(services)
    except WorkerUnavailable as exc:
        return exc
    return GenerationFailed(job.error or "generation failed")


async def _video_response(services: Services, job: Job, elapsed: float) -> Response:
    assert job.output is not None
    return await blob_response(services.blobs, job.output, headers={
        "x-request-id": job.id,
        "x-generation-time": f"{elapsed:.3f}",
        "x-remaining-credits": f"{await services.store.balance(job.key_id):g}",
    })


async def submit_queued(request: Request, slug: str) -> JSONResponse:
    services = services_of(request)
    job = await _accept(request, slug, blocking=False)
    base = base_url(services, request)
    body = {
        "request_id": job.id,
        "status": job.status.value,
        "poll_url": f"{base}/v1/requests/{job.id}",
        "status_url": f"{base}/v2/requests/{job.id}/status",
        "response_url": f"{base}/v2/requests/{job.id}",
    }
    return await _json(services, job, body)


async def _own_job(services: Services, request: Request, request_id: str) -> Job:
    key = await authenticate(services, request)
    job = owned(await services.store.get(request_id), key, DIALECT)
    if job is None:  # as no request at all
        raise NotFound(f"no request {request_id!r}")
    return job


async def _metrics(services: Services, job: Job) -> dict[str, Any]:
    metrics = dict(job.metrics)
    metrics["progress"] = round(job.progress, 4)
    if job.task.loras:  # takeone extension: the LoRAs the job runs with
        metrics["loras"] = [{"name": u.name, "scale": u.scale} for u in job.task.loras]
    if job.status is JobStatus.QUEUED:
        metrics["queue_position"] = await services.store.queue_position(job.id)
    return metrics


async def _json(services: Services, job: Job, body: dict[str, Any]) -> JSONResponse:
    code = 422 if job.status is JobStatus.FAILED else 200
    return JSONResponse(body, status_code=code, headers={
        "x-request-id": job.id,
        "x-remaining-credits": f"{await services.store.balance(job.key_id):g}",
    })


async def _status_body(services: Services, request: Request, job: Job) -> dict[str, Any]:
    base = base_url(services, request)
    body: dict[str, Any] = {
        "request_id": job.id,
        "status": job.status.value,
        "status_url": f"{base}/v2/requests/{job.id}/status",
        "response_url": f"{base}/v2/requests/{job.id}",
        "metrics": await _metrics(services, job),
    }
    if job.status is JobStatus.FAILED:
        body["error"] = job.error
    return body


async def get_status(request: Request, request_id: str) -> JSONResponse:
    services = services_of(request)
    job = await _own_job(services, request, request_id)
    return await _json(services, job, await _status_body(services, request, job))


async def get_result(request: Request, request_id: str) -> JSONResponse:
    services = services_of(request)
    job = await _own_job(services, request, request_id)
    body: dict[str, Any] = {"request_id": job.id, "status": job.status.value,
                            "metrics": await _metrics(services, job)}
    if job.status is JobStatus.COMPLETED and job.output is not None:
        expires = services.clock() + services.settings.link_ttl_s
        body["output"] = services.blobs.url(job.output, base_url(services, request), expires)
    if job.status is JobStatus.FAILED:
        body["error"] = job.error
    return await _json(services, job, body)


async def cancel(request: Request, request_id: str) -> JSONResponse:
    """200 with the cancelled request's status (FAILED, error "cancelled", nothing charged);
    409 if it had already finished, since there is nothing left to cancel."""
    services = services_of(request)
    job = await _own_job(services, request, request_id)
    if job.status.is_terminal():
        raise Conflict(f"request {job.id!r} already finished ({job.status.value}); nothing to cancel")
    job = await cancel_job(services, job.id, "cancelled") or job
    if job.status is JobStatus.COMPLETED:  # it finished a moment before the cancel
        raise Conflict(f"request {job.id!r} already finished (COMPLETED); nothing to cancel")
    response = await _json(services, job, await _status_body(services, request, job))
    response.status_code = 200
    return response


async def get_credits(request: Request) -> JSONResponse:
    services = services_of(request)
    key = await authenticate(services, request)
    balance = await services.store.balance(key.id)
    return JSONResponse({"credits": balance, "free-credits": 0.0},
                        headers={"x-remaining-credits": f"{balance:g}"})


def install(app: FastAPI) -> None:
    app.include_router(router())
