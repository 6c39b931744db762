"""The Kling dialect's routes.

    POST /v1/videos/text2video | image2video              create a task
    GET  /v1/videos/text2video | image2video?pageNum&pageSize   this key's tasks, newest first
    GET  /v1/videos/text2video | image2video/{id}         one task, by task_id or external_task_id
    POST /v1/videos/text2video | image2video/{id}/cancel  takeone extension: cancel it, uncharged

Every call carries a JWT (see ``auth.py``). Only tasks of this dialect and of the path's kind
are visible; anything else is code 1203 (404).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from takeone.core.errors import InvalidRequest, NotFound
from takeone.core.jobs import Job
from takeone.edge.background.webhooks.delivery import check_webhook_url
from takeone.edge.dialects.actions import base_url, cancel_job, owned
from takeone.edge.dialects.kling import DIALECT, IMAGE2VIDEO, ROUTES, TEXT2VIDEO
from takeone.edge.dialects.kling.auth import authenticate_jwt
from takeone.edge.dialects.kling.body import (
    Image2VideoBody,
    KlingBody,
    Text2VideoBody,
    fingerprint,
    parse,
    rename,
    to_task,
)
from takeone.edge.dialects.kling.codes import envelope, kling_errors
from takeone.edge.dialects.kling.task import ErrorAnswer, TaskAnswer, TaskListAnswer, task_object
from takeone.edge.dialects.tier_prices import TierPrices
from takeone.edge.services import Services
from takeone.edge.submit import Submission, accept, admit, read_body

MAX_PAGE_SIZE = 500
BODIES: dict[str, type[KlingBody]] = {TEXT2VIDEO: Text2VideoBody, IMAGE2VIDEO: Image2VideoBody}


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _base(services: Services, request: Request) -> str:
    return base_url(services, str(request.base_url))


async def create_task(request: Request, kind: str) -> Response:
    services = services_of(request)
    key = await authenticate_jwt(services, request)
    await admit(services, request, key, kind)
    body = parse(BODIES[kind], await read_body(request, services.settings.max_body_bytes))
    images = _images(body)
    task = to_task(body, "pending:first_frame" if "first_frame" in images else None,
                   "pending:last_frame" if "last_frame" in images else None)
    if body.callback_url is not None:
        await check_webhook_url(body.callback_url, "callback_url", services.fetch_policy)
    submission = Submission(
        route=kind, task=task, images=images, price=services.prices(TierPrices).price(task), rename=rename,
        fingerprint=fingerprint(body), dialect=DIALECT, webhook_url=body.callback_url,
        external_id=body.external_task_id, meta={"base_url": _base(services, request)},
        aspect_from="first_frame" if kind == IMAGE2VIDEO else None)
    try:
        job = await accept(services, request, key, submission, blocking=False)
    except InvalidRequest as exc:
        if exc.field != "external_id":
            raise
        raise InvalidRequest("external_task_id", exc.value, exc.reason) from None
    return JSONResponse(envelope(task_object(job, services, _base(services, request))))


def _images(body: KlingBody) -> dict[str, tuple[str, str]]:
    if not isinstance(body, Image2VideoBody):
        return {}
    found = {"first_frame": ("image", body.image), "last_frame": ("image_tail", body.image_tail)}
    return {role: (name, value) for role, (name, value) in found.items() if value is not None}


async def _own_task(services: Services, request: Request, kind: str, task_id: str) -> Job:
    key = await authenticate_jwt(services, request)
    job = owned(await services.store.get(task_id), key, DIALECT)
    if job is None:
        job = owned(await services.store.find_external(key.id, DIALECT, task_id), key, DIALECT)
    if job is None or job.route != kind:
        raise NotFound(f"no {kind} task {task_id!r}")
    return job


async def get_task(request: Request, kind: str, task_id: str) -> Response:
    services = services_of(request)
    job = await _own_task(services, request, kind, task_id)
    return JSONResponse(envelope(task_object(job, services, _base(services, request))))


async def cancel_task(request: Request, kind: str, task_id: str) -> Response:
    services = services_of(request)
    job = await _own_task(services, request, kind, task_id)
    if not job.status.is_terminal():
        job = await cancel_job(services, job.id, "cancelled") or job
    return JSONResponse(envelope(task_object(job, services, _base(services, request))))


async def list_tasks(request: Request, kind: str) -> Response:
    services = services_of(request)
    key = await authenticate_jwt(services, request)
    page, size = _page(request, "pageNum", 1, 10**6), _page(request, "pageSize", 30, MAX_PAGE_SIZE)
    chosen = await services.store.jobs_for_key(key.id, DIALECT, size, offset=(page - 1) * size,
                                               route=kind)
    base = _base(services, request)
    return JSONResponse(envelope([task_object(j, services, base) for j in chosen]))


def _page(request: Request, name: str, default: int, most: int) -> int:
    raw = request.query_params.get(name, str(default))
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise InvalidRequest(name, raw, f"must be a whole number from 1 to {most}")
    return int(raw)


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": ErrorAnswer, "description": "Kling's envelope with an error code"}
            for code in codes}


def _body_doc(model: type[KlingBody]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def _query(name: str, most: int) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False,
            "schema": {"type": "integer", "minimum": 1, "maximum": most}}


def _bind(kind: str, handler: Callable[..., Awaitable[Response]]) -> Callable[..., Awaitable[Response]]:
    """``handler`` with the task kind fixed, answering errors in Kling's envelope."""

    @kling_errors
    async def create(request: Request) -> Response:
        return await handler(request, kind)

    @kling_errors
    async def one(request: Request, task_id: str) -> Response:
        return await handler(request, kind, task_id)

    return one if handler in (get_task, cancel_task) else create


def router() -> APIRouter:
    api = APIRouter(tags=["Kling API"])
    errors = _errors(400, 401, 403, 404, 429, 500, 503, 504)
    for kind in ROUTES:
        path = f"/v1/videos/{kind}"
        api.add_api_route(path, _bind(kind, create_task), methods=["POST"], response_model=TaskAnswer,
                          responses=errors, openapi_extra=_body_doc(BODIES[kind]),
                          summary=f"Create a {kind} task (Kling API)")
        api.add_api_route(path, _bind(kind, list_tasks), methods=["GET"], response_model=TaskListAnswer,
                          responses=errors, summary=f"List this key's {kind} tasks (Kling API)",
                          openapi_extra={"parameters": [_query("pageNum", 10**6),
                                                        _query("pageSize", MAX_PAGE_SIZE)]})
        api.add_api_route(path + "/{task_id}", _bind(kind, get_task), methods=["GET"],
                          response_model=TaskAnswer, responses=errors,
                          summary=f"One {kind} task, by task_id or external_task_id (Kling API)")
        api.add_api_route(path + "/{task_id}/cancel", _bind(kind, cancel_task), methods=["POST"],
                          response_model=TaskAnswer, responses=errors,
                          summary=f"Cancel a {kind} task, nothing charged (takeone extension)")
    return api


def install(app: FastAPI) -> None:
    app.include_router(router())


SCHEMAS: tuple[type[KlingBody], ...] = tuple(BODIES.values())
