"""The Segmind dialect: blocking and queued generation, status, results, credits.

See contracts.md sections 1-4: URLs in answers are absolute, a FAILED request answers 422,
``x-remaining-credits`` is on every authenticated answer.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response

from takeone.edge import schemas
from takeone.edge.services import Services
from takeone.edge.submit import accept, authenticate
from takeone.edge.dialects.segmind.registry import ENDPOINTS, EndpointSpec
from takeone.core.errors import (
    DeadlineExceeded,
    GenerationFailed,
    NotFound,
    TakeoneError,
    WorkerUnavailable,
)
from takeone.core.jobs import Job, JobStatus

DISCONNECT_CHECK_S = 1.0


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
                      response_model=schemas.StatusBody, responses=_failed(schemas.StatusBody),
                      summary="Status of a queued request")
    api.add_api_route("/v2/requests/{request_id}", get_result, methods=["GET"],
                      response_model=schemas.ResultBody, responses=_failed(schemas.ResultBody),
                      summary="Result of a queued request")
    api.add_api_route("/v1/requests/{request_id}", get_result, methods=["GET"],
                      response_model=schemas.ResultBody, responses=_failed(schemas.ResultBody),
                      summary="Result of a queued request (legacy poll_url)")
    api.add_api_route("/v2/requests/{request_id}/cancel", cancel, methods=["POST"],
                      response_model=schemas.StatusBody, responses=_failed(schemas.StatusBody),
                      summary="Cancel a queued or running request (it ends FAILED, nothing charged)")
    api.add_api_route("/v1/get-user-credits", get_credits, methods=["GET"],
                      response_model=schemas.CreditsBody, responses=_errors(401),
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
                      response_model=schemas.SubmitBody, responses=schemas.ERRORS,
                      openapi_extra=_body_doc(spec))


async def unknown_model(request: Request, slug: str) -> Response:
    services = services_of(request)
    authenticate(services, request)
    raise NotFound(f"unknown model {slug!r}: this server serves {', '.join(ENDPOINTS)}")


async def run_blocking(request: Request, slug: str) -> Response:
    services = services_of(request)
    started = time.monotonic()
    job = await accept(services, request, slug, blocking=True)
    dispatcher = services.require_dispatcher()
    timeout = services.settings.sync_timeout_s
    done = await _wait_while_connected(request, services, job.id, timeout)
    if done is None:
        return Response(status_code=499)  # nobody is listening any more
    if not done.status.is_terminal():
        await dispatcher.cancel(job.id, f"the blocking call's deadline of {timeout:g} s passed")
        raise DeadlineExceeded(
            f"the video was not ready within {timeout:g} s; the request was cancelled and"
            f" nothing was charged (use POST /v2/{slug} for long jobs)")
    if done.status is JobStatus.FAILED:
        raise _failure(services, done)
    return _video_response(services, done, time.monotonic() - started)


async def _wait_while_connected(request: Request, services: Services, job_id: str,
                                timeout: float) -> Job | None:
    """Wait for the job; if the caller hangs up first, cancel it (None): a video nobody can
    receive must not be charged (the segmind SDK's default read timeout is 30 s)."""
    dispatcher = services.require_dispatcher()
    deadline = time.monotonic() + timeout
    while True:
        slice_s = min(DISCONNECT_CHECK_S, max(deadline - time.monotonic(), 0.0))
        job = await dispatcher.wait(job_id, slice_s)
        if job is None or job.status.is_terminal() or time.monotonic() >= deadline:
            return job
        if await request.is_disconnected():
            await dispatcher.cancel(job_id, "the client disconnected before the video was ready")
            return None


def _failure(services: Services, job: Job) -> TakeoneError:
    try:
        services.require_dispatcher().check_available()
    except WorkerUnavailable as exc:
        return exc
    return GenerationFailed(job.error or "generation failed")


def _video_response(services: Services, job: Job, elapsed: float) -> Response:
    assert job.output is not None
    path = services.storage.path_for(job.output)
    return FileResponse(path, media_type="video/mp4", headers={
        "x-request-id": job.id,
        "x-generation-time": f"{elapsed:.3f}",
        "x-remaining-credits": f"{services.keys.balance(job.key_id):g}",
    })


async def submit_queued(request: Request, slug: str) -> JSONResponse:
    services = services_of(request)
    job = await accept(services, request, slug, blocking=False)
    base = base_url(services, request)
    body = {
        "request_id": job.id,
        "status": job.status.value,
        "poll_url": f"{base}/v1/requests/{job.id}",
        "status_url": f"{base}/v2/requests/{job.id}/status",
        "response_url": f"{base}/v2/requests/{job.id}",
    }
    return _json(services, job, body)


def _own_job(services: Services, request: Request, request_id: str) -> Job:
    key = authenticate(services, request)
    job = services.jobs.get(request_id)
    if job is None or job.key_id != key.id:  # another key's request looks like no request
        raise NotFound(f"no request {request_id!r}")
    return job


def _metrics(services: Services, job: Job) -> dict[str, Any]:
    metrics = dict(job.metrics)
    metrics["progress"] = round(job.progress, 4)
    if job.status is JobStatus.QUEUED:
        metrics["queue_position"] = services.jobs.queue_position(job.id)
    return metrics


def _json(services: Services, job: Job, body: dict[str, Any]) -> JSONResponse:
    code = 422 if job.status is JobStatus.FAILED else 200
    return JSONResponse(body, status_code=code, headers={
        "x-request-id": job.id,
        "x-remaining-credits": f"{services.keys.balance(job.key_id):g}",
    })


def _status_body(services: Services, request: Request, job: Job) -> dict[str, Any]:
    base = base_url(services, request)
    body: dict[str, Any] = {
        "request_id": job.id,
        "status": job.status.value,
        "status_url": f"{base}/v2/requests/{job.id}/status",
        "response_url": f"{base}/v2/requests/{job.id}",
        "metrics": _metrics(services, job),
    }
    if job.status is JobStatus.FAILED:
        body["error"] = job.error
    return body


async def get_status(request: Request, request_id: str) -> JSONResponse:
    services = services_of(request)
    job = _own_job(services, request, request_id)
    return _json(services, job, _status_body(services, request, job))


async def get_result(request: Request, request_id: str) -> JSONResponse:
    services = services_of(request)
    job = _own_job(services, request, request_id)
    body: dict[str, Any] = {"request_id": job.id, "status": job.status.value,
                            "metrics": _metrics(services, job)}
    if job.status is JobStatus.COMPLETED and job.output is not None:
        expires = services.clock() + services.settings.link_ttl_s
        body["output"] = services.storage.signed_url(base_url(services, request), job.output, expires)
    if job.status is JobStatus.FAILED:
        body["error"] = job.error
    return _json(services, job, body)


async def cancel(request: Request, request_id: str) -> JSONResponse:
    services = services_of(request)
    job = _own_job(services, request, request_id)
    if not job.status.is_terminal():
        job = await services.require_dispatcher().cancel(job.id) or job
    return _json(services, job, _status_body(services, request, job))


async def get_credits(request: Request) -> JSONResponse:
    services = services_of(request)
    key = authenticate(services, request)
    balance = services.keys.balance(key.id)
    return JSONResponse({"credits": balance, "free-credits": 0.0},
                        headers={"x-remaining-credits": f"{balance:g}"})


def install(app: FastAPI) -> None:
    app.include_router(router())
