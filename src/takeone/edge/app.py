"""The FastAPI application: ``create_app(settings)`` wires everything for one process.

Example::

    app = create_app(Settings(data_dir=Path("data"), profile="tiny"))
    uvicorn.run(app, port=8000)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from takeone import __version__
from takeone.core.errors import TakeoneError
from takeone.core.settings import Settings
from takeone.edge import docs, loras, metrics, openapi, playground, schemas
from takeone.edge import errors as api_errors
from takeone.edge.auth import authenticate, sends_a_key
from takeone.edge.background.presence import Presence
from takeone.edge.background.sweeper import Sweeper
from takeone.edge.background.webhooks.sender import WebhookSender
from takeone.edge.dialects.registry import dialects, renderers
from takeone.edge.files import blob_response
from takeone.edge.headers import SecurityHeaders
from takeone.edge.health import HEALTH_SCOPE, health
from takeone.edge.limits import BodyDeadline
from takeone.edge.services import Services

log = logging.getLogger("takeone.api")


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    services = services or Services.build(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if services.settings.run_workers:
            services.dispatcher = services.make_dispatcher()
            await services.dispatcher.start()
        services.follow_changes()
        presence = Presence(services)
        tasks = [asyncio.create_task(Sweeper(services).run_forever()),
                 asyncio.create_task(WebhookSender(services, renderers()).run_forever()),
                 asyncio.create_task(presence.run_forever())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await presence.leave()
            if services.dispatcher is not None:
                await services.dispatcher.stop()

    app = FastAPI(title="takeone", version=__version__, lifespan=lifespan,
                  description="Segmind-compatible video generation on open-weight models.",
                  docs_url=None, redoc_url=None)  # docs.install serves them without a CDN
    app.state.services = services
    app.add_middleware(BodyDeadline, seconds=settings.body_timeout_s)
    app.add_middleware(SecurityHeaders)
    api_errors.install(app)
    loras.install(app)  # before the dialects: /v1/{model} must not take it
    for dialect in dialects():  # a dialect with a catch-all route comes last
        dialect.install(app)
    playground.install(app)
    metrics.install(app)
    docs.install(app)
    app.add_api_route("/healthz", healthz, methods=["GET"], response_model=schemas.HealthBody,
                      summary="200 once a worker is ready to generate, else 503")
    app.add_api_route("/files/{key:path}", download, methods=["GET"], include_in_schema=True,
                      summary="Download an output through its signed link (Range supported)",
                      responses={200: {"content": {"video/mp4": {}}}, 400: schemas.ERRORS[400],
                                 404: schemas.ERRORS[404]})
    app.openapi = lambda: openapi.build(app, dialects())  # type: ignore[method-assign]
    return app


async def healthz(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    status, body = await health(services, detailed=await _sees_details(services, request))
    return JSONResponse(body, status_code=status)


async def _sees_details(services: Services, request: Request) -> bool:
    """``--health-details``, or a key with the ``health`` scope (anything else: the public
    answer, never a 401: a load balancer asks without a key)."""
    if services.settings.health_details:
        return True
    if not sends_a_key(request):
        return False
    try:
        key = await authenticate(services, request)
    except TakeoneError:
        return False
    return key.scopes is not None and HEALTH_SCOPE in key.scopes


async def download(request: Request, key: str, expires: int = 0, sig: str = "") -> Response:
    services: Services = request.app.state.services
    services.blobs.check_link(key, expires, sig, services.clock())
    return await blob_response(services.blobs, key, request.headers.get("range"),
                               filename=key.rsplit("/", 1)[-1])
