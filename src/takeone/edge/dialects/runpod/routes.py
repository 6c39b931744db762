"""The RunPod dialect's routes, at ``/runpod/v2`` (RunPod's ``https://api.runpod.ai/v2``):

    POST /runpod/v2/{endpoint_id}/run                 queue a job
    POST /runpod/v2/{endpoint_id}/runsync?wait=ms     the same, answered when it ends (or at wait)
    GET  /runpod/v2/{endpoint_id}/status/{id}         its job object
    GET  /runpod/v2/{endpoint_id}/stream/{id}         its progress, as stream chunks
    POST /runpod/v2/{endpoint_id}/cancel/{id}         cancel it: nothing is charged
    POST /runpod/v2/{endpoint_id}/purge-queue         cancel this key's queued jobs there
    GET  /runpod/v2/{endpoint_id}/health              this key's jobs there, and the workers

The endpoint id picks the tier (``fast``, ``standard``, ``quality``, or the profile's name).
Keys come as ``Authorization: Bearer <key>`` (the SDK's ``runpod.api_key``); scopes,
credits, rate limits and ``Idempotency-Key`` work as for every dialect. Only jobs made
through this dialect at the same endpoint id are visible here; anything else is a 404.
Finished jobs are kept for the server's retention time (``--retention``), whichever route
made them.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from takeone.core.errors import InvalidRequest, NotFound
from takeone.core.jobs import Job, JobStatus
from takeone.edge.auth import authenticate
from takeone.edge.background.webhooks.delivery import check_webhook_url
from takeone.edge.dialects.actions import base_url, cancel_job, owned
from takeone.edge.dialects.runpod import DIALECT, PREFIX, ROUTE
from takeone.edge.dialects.runpod.body import RunRequest, parse_run, rename, tier_of
from takeone.edge.dialects.runpod.errors import RunpodError, runpod_errors
from takeone.edge.dialects.runpod.job import (
    HealthAnswer,
    JobAnswer,
    StreamAnswer,
    job_object,
    status_of,
    stream_chunks,
)
from takeone.edge.dialects.tier_prices import TierPrices
from takeone.edge.services import Services
from takeone.edge.submit import Submission, accept, admit, read_body
from takeone.models.registry import get_profile

DEFAULT_WAIT_MS, MAX_WAIT_MS = 90_000, 300_000
HEALTH_WINDOW = 1000  # the key's most recent jobs counted by /health


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _base(services: Services, request: Request) -> str:
    return base_url(services, str(request.base_url))


async def _submit(request: Request, endpoint_id: str) -> Job:
    services = services_of(request)
    key = await authenticate(services, request)
    await admit(services, request, key, ROUTE)
    profile = get_profile(services.settings.profile)
    tier = tier_of(endpoint_id, profile)
    run = parse_run(await read_body(request, services.settings.max_body_bytes))
    images = run.images()
    task = run.task("pending:first_frame" if "first_frame" in images else None,
                    "pending:last_frame" if "last_frame" in images else None, tier, profile.has_audio)
    if run.webhook is not None:
        await check_webhook_url(run.webhook, "webhook", services.fetch_policy)
    submission = Submission(route=ROUTE, task=task, images=images, price=services.prices(TierPrices).price(task),
                            rename=rename, fingerprint=run.fingerprint(endpoint_id), dialect=DIALECT,
                            webhook_url=run.webhook,
                            meta={"endpoint": endpoint_id, "base_url": _base(services, request)},
                            aspect_from="first_frame" if "first_frame" in images else None)
    return await accept(services, request, key, submission, blocking=False)


@runpod_errors
async def run_job(request: Request, endpoint_id: str) -> Response:
    job = await _submit(request, endpoint_id)
    return JSONResponse({"id": job.id, "status": status_of(job)})


@runpod_errors
async def run_sync(request: Request, endpoint_id: str) -> Response:
    raw = request.query_params.get("wait", str(DEFAULT_WAIT_MS))
    if not raw.isdigit() or not 1000 <= int(raw) <= MAX_WAIT_MS:
        raise InvalidRequest("wait", raw, f"must be milliseconds from 1000 to {MAX_WAIT_MS}")
    services = services_of(request)
    job = await _submit(request, endpoint_id)
    job = await services.waiter.wait(job.id, int(raw) / 1000) or job
    return JSONResponse(job_object(job, services, _base(services, request)))


async def _own(services: Services, request: Request, endpoint_id: str, job_id: str) -> Job:
    key = await authenticate(services, request)
    job = owned(await services.store.get(job_id), key, DIALECT)
    if job is None or job.meta.get("endpoint") != endpoint_id:
        raise NotFound(f"request {job_id!r} does not exist")
    return job


@runpod_errors
async def job_status(request: Request, endpoint_id: str, job_id: str) -> Response:
    services = services_of(request)
    job = await _own(services, request, endpoint_id, job_id)
    return JSONResponse(job_object(job, services, _base(services, request)))


@runpod_errors
async def job_stream(request: Request, endpoint_id: str, job_id: str) -> Response:
    services = services_of(request)
    job = await _own(services, request, endpoint_id, job_id)
    return JSONResponse({"status": status_of(job), "stream": stream_chunks(job)})


@runpod_errors
async def cancel(request: Request, endpoint_id: str, job_id: str) -> Response:
    """A job that already ended is answered as it is."""
    services = services_of(request)
    job = await _own(services, request, endpoint_id, job_id)
    if not job.status.is_terminal():
        job = await cancel_job(services, job.id, "cancelled") or job
    return JSONResponse({"id": job.id, "status": status_of(job)})


async def _recent(services: Services, request: Request, endpoint_id: str) -> list[Job]:
    key = await authenticate(services, request)
    tier_of(endpoint_id, get_profile(services.settings.profile))
    jobs = await services.store.jobs_for_key(key.id, DIALECT, HEALTH_WINDOW)
    return [j for j in jobs if j.meta.get("endpoint") == endpoint_id]


@runpod_errors
async def purge_queue(request: Request, endpoint_id: str) -> Response:
    services = services_of(request)
    removed = 0
    for job in await _recent(services, request, endpoint_id):
        if job.status is JobStatus.QUEUED and await cancel_job(services, job.id, "cancelled: the queue was purged"):
            removed += 1
    return JSONResponse({"removed": removed, "status": "completed"})


@runpod_errors
async def health(request: Request, endpoint_id: str) -> Response:
    services = services_of(request)
    counts = Counter(status_of(j) for j in await _recent(services, request, endpoint_id))
    workers = Counter(_worker_state(w.state, w.job_id) for w in await services.store.workers())
    return JSONResponse({
        "jobs": {"completed": counts["COMPLETED"], "failed": counts["FAILED"] + counts["TIMED_OUT"],
                 "inProgress": counts["IN_PROGRESS"], "inQueue": counts["IN_QUEUE"], "retried": 0},
        "workers": {"idle": workers["idle"], "initializing": workers["initializing"],
                    "ready": workers["idle"] + workers["running"], "running": workers["running"],
                    "throttled": 0, "unhealthy": workers["unhealthy"]}})


def _worker_state(state: str, job_id: str | None) -> str:
    if state == "ready":
        return "running" if job_id else "idle"
    return {"starting": "initializing", "failed": "unhealthy"}.get(state, "stopped")


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": RunpodError, "description": "An error in RunPod's shape"} for code in codes}


def _run_doc(sync: bool) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{RunRequest.__name__}"}
    doc: dict[str, Any] = {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}
    if sync:
        doc["parameters"] = [{"name": "wait", "in": "query", "required": False,
                              "schema": {"type": "integer", "minimum": 1000, "maximum": MAX_WAIT_MS},
                              "description": "How long to wait for the job, in milliseconds (default 90000)."}]
    return doc


def router() -> APIRouter:
    api = APIRouter(prefix=PREFIX, tags=["RunPod serverless API"])
    common = _errors(400, 401, 404, 429, 500)
    creating = _errors(400, 401, 402, 403, 404, 409, 413, 429, 500, 502, 503)
    one = "/{endpoint_id}"
    api.add_api_route(one + "/run", run_job, methods=["POST"], response_model=JobAnswer, responses=creating,
                      openapi_extra=_run_doc(False), summary="Queue a job (RunPod serverless)")
    api.add_api_route(one + "/runsync", run_sync, methods=["POST"], response_model=JobAnswer,
                      responses=creating, openapi_extra=_run_doc(True),
                      summary="Run a job and answer when it ends, or at wait (RunPod serverless)")
    api.add_api_route(one + "/status/{job_id}", job_status, methods=["GET"], response_model=JobAnswer,
                      responses=common, summary="A job's status and output (RunPod serverless)")
    api.add_api_route(one + "/stream/{job_id}", job_stream, methods=["GET"], response_model=StreamAnswer,
                      responses=common, summary="A job's progress as stream chunks (RunPod serverless)")
    api.add_api_route(one + "/cancel/{job_id}", cancel, methods=["POST"], response_model=JobAnswer,
                      responses=common, summary="Cancel a job; nothing is charged (RunPod serverless)")
    api.add_api_route(one + "/purge-queue", purge_queue, methods=["POST"], responses=common,
                      summary="Cancel this key's queued jobs at the endpoint (RunPod serverless)")
    api.add_api_route(one + "/health", health, methods=["GET"], response_model=HealthAnswer,
                      responses=common, summary="This key's jobs at the endpoint, and the workers (RunPod)")
    return api


def install(app: FastAPI) -> None:
    app.include_router(router())


SCHEMAS = (RunRequest,)
