"""The Replicate dialect's routes.

    POST /v1/predictions                          create (the body's version names the model)
    POST /v1/models/{owner}/{name}/predictions    create for a model
    GET  /v1/predictions                          this key's predictions, newest first (cursor)
    GET  /v1/predictions/{id}                     one prediction
    POST /v1/predictions/{id}/cancel              cancel it: nothing is charged
    GET  /v1/webhooks/default/secret              the key's webhook signing secret

Keys are sent as ``Authorization: Bearer <key>`` (the client's ``api_token``); scopes,
credits, rate limits and ``Idempotency-Key`` work as for every dialect. ``Prefer: wait`` (or
``wait=N``, 1 to 60 s) holds the create call until the prediction ends or the time runs out;
a prediction still running then is shown as ``starting``, as Replicate's is. Only
predictions made through this dialect are visible here; another dialect's id is a 404.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from takeone.core.errors import InvalidRequest, NotFound
from takeone.core.jobs import Job
from takeone.edge.auth import authenticate
from takeone.edge.background.webhooks.delivery import check_webhook_url
from takeone.edge.dialects.actions import base_url, cancel_job, owned
from takeone.edge.dialects.hosted import job_id_of_short, short_id, watch_progress, webhook_secret
from takeone.edge.dialects.replicate import DIALECT, ROUTE
from takeone.edge.dialects.replicate.body import PredictionRequest, parse_create, rename
from takeone.edge.dialects.replicate.errors import MEDIA_TYPE, Problem, replicate_errors
from takeone.edge.dialects.replicate.prediction import (
    Prediction,
    PredictionPage,
    PredictionStatus,
    WebhookSecret,
    prediction_object,
)
from takeone.edge.dialects.replicate.webhook import render_progress
from takeone.edge.dialects.tier_prices import TierPrices
from takeone.edge.services import Services
from takeone.edge.submit import Submission, accept, admit, read_body
from takeone.models.registry import get_profile

PAGE = 100
MAX_WAIT_S = 60


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _base(services: Services, request: Request) -> str:
    return base_url(services, str(request.base_url))


def prefer_wait(request: Request) -> int | None:
    """Seconds of ``Prefer: wait`` / ``wait=N`` (None: answer at once)."""
    prefer = request.headers.get("prefer")
    if prefer is None:
        return None
    value = prefer.strip().lower()
    if value == "wait":
        return MAX_WAIT_S
    seconds = value.removeprefix("wait=")
    if value.startswith("wait=") and seconds.isdigit() and 1 <= int(seconds) <= MAX_WAIT_S:
        return int(seconds)
    raise InvalidRequest("Prefer", prefer, f"must be wait or wait=N with N from 1 to {MAX_WAIT_S}")


async def create(request: Request, model_ref: str | None) -> Response:
    services = services_of(request)
    key = await authenticate(services, request)
    await admit(services, request, key, ROUTE)
    wait = prefer_wait(request)
    profile = get_profile(services.settings.profile)
    made = parse_create(await read_body(request, services.settings.max_body_bytes), model_ref, profile)
    images = made.images()
    task = made.task("pending:first_frame" if "first_frame" in images else None,
                     "pending:last_frame" if "last_frame" in images else None, profile)
    if made.webhook is not None:
        await check_webhook_url(made.webhook, "webhook", services.fetch_policy)
    base = _base(services, request)
    meta = {"model": made.model.name, "version": made.model.version, "input": made.echo(),
            "events": list(made.events), "base_url": base}
    submission = Submission(route=ROUTE, task=task, images=images, price=services.prices(TierPrices).price(task),
                            rename=rename, fingerprint=made.fingerprint(), dialect=DIALECT,
                            webhook_url=made.webhook, meta=meta,
                            aspect_from="first_frame" if "first_frame" in images else None)
    job = await accept(services, request, key, submission, blocking=False)
    if job.webhook_url and "logs" in job.meta.get("events", []) and not job.status.is_terminal():
        watch_progress(services, job, render_progress, job.webhook_url)
    shown: PredictionStatus | None = None
    if wait is not None:
        job = await services.waiter.wait(job.id, wait) or job
        shown = None if job.status.is_terminal() else "starting"
    return JSONResponse(prediction_object(job, services, base, shown), status_code=201)


@replicate_errors
async def create_prediction(request: Request) -> Response:
    return await create(request, None)


@replicate_errors
async def create_model_prediction(request: Request, owner: str, name: str) -> Response:
    return await create(request, f"{owner}/{name}")


async def _own(services: Services, request: Request, prediction_id: str) -> Job:
    key = await authenticate(services, request)
    job_id = job_id_of_short(prediction_id)
    job = owned(await services.store.get(job_id), key, DIALECT) if job_id else None
    if job is None:
        raise NotFound(f"prediction {prediction_id!r} not found")
    return job


@replicate_errors
async def get_prediction(request: Request, prediction_id: str) -> Response:
    services = services_of(request)
    job = await _own(services, request, prediction_id)
    return JSONResponse(prediction_object(job, services, _base(services, request)))


@replicate_errors
async def cancel_prediction(request: Request, prediction_id: str) -> Response:
    """A prediction that already ended is answered as it is."""
    services = services_of(request)
    job = await _own(services, request, prediction_id)
    if not job.status.is_terminal():
        job = await cancel_job(services, job.id, "cancelled") or job
    return JSONResponse(prediction_object(job, services, _base(services, request)))


@replicate_errors
async def list_predictions(request: Request) -> Response:
    services = services_of(request)
    key = await authenticate(services, request)
    cursor = request.query_params.get("cursor")
    after = None
    if cursor is not None:
        after = job_id_of_short(cursor)
        found = owned(await services.store.get(after), key, DIALECT) if after else None
        if found is None:
            raise InvalidRequest("cursor", cursor, "is not a page of your predictions")
    jobs = await services.store.jobs_for_key(key.id, DIALECT, PAGE + 1, after=after)
    base = _base(services, request)
    page = jobs[:PAGE]
    following = f"{base}/v1/predictions?cursor={short_id(page[-1].id)}" if len(jobs) > PAGE else None
    return JSONResponse({"previous": None, "next": following,
                         "results": [prediction_object(j, services, base) for j in page]})


@replicate_errors
async def default_secret(request: Request) -> Response:
    services = services_of(request)
    key = await authenticate(services, request)
    secret = await webhook_secret(services, key.id)
    if secret is None:
        raise NotFound("this key has no webhook secret; make one with `takeone keys webhook-secret`")
    return JSONResponse({"key": secret})


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    ref = {"$ref": f"#/components/schemas/{Problem.__name__}"}
    return {code: {"model": Problem, "description": "Problem details, as Replicate answers",
                   "content": {MEDIA_TYPE: {"schema": ref}}} for code in codes}


def _create_doc() -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{PredictionRequest.__name__}"}
    prefer = {"name": "Prefer", "in": "header", "required": False, "schema": {"type": "string"},
              "description": "wait, or wait=N (1 to 60 s): answer when the prediction ends."}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}},
            "parameters": [prefer]}


def router() -> APIRouter:
    api = APIRouter(tags=["Replicate predictions API"])
    common = _errors(400, 401, 404, 422, 429, 500)
    creating = _errors(400, 401, 402, 403, 409, 413, 422, 429, 500, 502, 503)
    api.add_api_route("/v1/predictions", create_prediction, methods=["POST"], status_code=201,
                      response_model=Prediction, responses=creating, openapi_extra=_create_doc(),
                      summary="Create a prediction; version names the model (Replicate API)")
    api.add_api_route("/v1/models/{owner}/{name}/predictions", create_model_prediction, methods=["POST"],
                      status_code=201, response_model=Prediction, responses=creating,
                      openapi_extra=_create_doc(), summary="Create a prediction of a model (Replicate API)")
    api.add_api_route("/v1/predictions", list_predictions, methods=["GET"], response_model=PredictionPage,
                      responses=common, summary="List this key's predictions, newest first (Replicate API)",
                      openapi_extra={"parameters": [{"name": "cursor", "in": "query", "required": False,
                                                     "schema": {"type": "string"},
                                                     "description": "From the previous page's next."}]})
    api.add_api_route("/v1/predictions/{prediction_id}", get_prediction, methods=["GET"],
                      response_model=Prediction, responses=common, summary="Get a prediction (Replicate API)")
    api.add_api_route("/v1/predictions/{prediction_id}/cancel", cancel_prediction, methods=["POST"],
                      response_model=Prediction, responses=common,
                      summary="Cancel a prediction; nothing is charged (Replicate API)")
    api.add_api_route("/v1/webhooks/default/secret", default_secret, methods=["GET"],
                      response_model=WebhookSecret, responses=common,
                      summary="The key's webhook signing secret (Replicate API)")
    return api


def install(app: FastAPI) -> None:
    app.include_router(router())


SCHEMAS = (PredictionRequest,)
