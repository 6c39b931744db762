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
from typing import Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse

from takeone import __version__
from takeone.edge import errors as api_errors
from takeone.edge import schemas
from takeone.edge.dialects.segmind import routes as segmind
from takeone.edge.services import Services
from takeone.edge.sweeper import Sweeper
from takeone.edge.dialects.segmind.registry import ENDPOINTS
from takeone.core.settings import Settings

log = logging.getLogger("takeone.api")


def create_app(settings: Settings, services: Services | None = None) -> FastAPI:
    services = services or Services.build(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        dispatcher = services.make_dispatcher()
        services.dispatcher = dispatcher
        await dispatcher.start()
        sweeper = Sweeper(services)
        task = asyncio.create_task(sweeper.run_forever())
        try:
            yield
        finally:
            task.cancel()
            await dispatcher.stop()

    app = FastAPI(title="takeone", version=__version__, lifespan=lifespan,
                  description="Segmind-compatible video generation on open-weight models.")
    app.state.services = services
    api_errors.install(app)
    segmind.install(app)
    app.add_api_route("/healthz", healthz, methods=["GET"], response_model=schemas.HealthBody,
                      summary="200 once a worker is ready to generate, else 503")
    app.add_api_route("/files/{name}", download, methods=["GET"], include_in_schema=True,
                      summary="Download an output through its signed link (Range supported)",
                      responses={200: {"content": {"video/mp4": {}}}, 404: schemas.ERRORS[404]})
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def healthz(request: Request) -> JSONResponse:
    services: Services = request.app.state.services
    health = services.require_dispatcher().health()
    status = "ready" if health.ready else ("unavailable" if health.error else "starting")
    body = {"status": status, "profile": services.settings.profile,
            "workers": health.workers, "error": health.error}
    return JSONResponse(body, status_code=200 if health.ready else 503)


async def download(request: Request, name: str, expires: int = 0, sig: str = "") -> FileResponse:
    services: Services = request.app.state.services
    path = services.storage.verify(name, expires, sig, services.clock())
    return FileResponse(path, media_type="video/mp4", filename=name)


def _openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema is None:
        doc = get_openapi(title=app.title, version=app.version, description=app.description,
                          routes=app.routes)
        components = doc.setdefault("components", {}).setdefault("schemas", {})
        for spec in ENDPOINTS.values():
            schema = spec.schema.model_json_schema(ref_template="#/components/schemas/{model}")
            components.update(schema.pop("$defs", {}))
            components[spec.schema.__name__] = schema
        app.openapi_schema = doc
    return app.openapi_schema
