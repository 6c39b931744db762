"""The web playground: a page that makes a video from the browser, and the key's history.

``install(app)`` adds the page at ``/`` and ``/playground``, its static files under
``/playground/static/`` (plain HTML, CSS and ES modules shipped in this package: no build step,
nothing fetched from a CDN), and ``GET /v2/requests?limit=N``, a takeone extension of the
Segmind API: the calling key's most recent requests, newest first, each with what it takes to
send it again (its body fields, and signed links to the images it was made with).

The page builds its forms from the server's own ``/openapi.json`` and talks to the queued API
like any other client, with the key the user typed (kept in the tab's session storage).

Example::

    app = FastAPI()
    install(app)
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from takeone.core.errors import InvalidRequest
from takeone.core.jobs import Job
from takeone.edge.dialects.segmind.registry import ENDPOINTS, MODE_OF_TIER, EndpointSpec
from takeone.edge.dialects.segmind.routes import base_url
from takeone.edge.schemas import ERRORS, Status
from takeone.edge.services import Services
from takeone.edge.submit import authenticate

STATIC_DIR = Path(__file__).parent / "static" / "playground"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100

# The page loads nothing but its own files; previews may show any http(s) image the user
# names, and the video comes from this server's signed links (or its public URL).
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self';"
        " img-src 'self' data: blob: http: https:; media-src 'self' blob: http: https:;"
        " object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
}


class HistoryItem(BaseModel):
    """One request of the key's history, with what it takes to send it again."""

    request_id: str
    endpoint: str = Field(description="The model slug, as in POST /v2/{slug}.")
    status: Status
    created_at: float = Field(description="When it was accepted (Unix seconds).")
    finished_at: float | None = Field(None, description="When it ended (Unix seconds).")
    progress: float = Field(description="0 to 1.")
    error: str | None = None
    blocking: bool = Field(description="True if it was sent to the blocking POST /v1/{slug}.")
    params: dict[str, Any] = Field(
        description="The body fields it was made with, image fields left out (see images).")
    images: dict[str, str] = Field(
        description="Image field -> signed, expiring link to the image it was made with (PNG).")
    seed: int | None = Field(None, description="The seed the video was made with, once known.")


class HistoryBody(BaseModel):
    requests: list[HistoryItem] = Field(description="Newest first.")


def install(app: FastAPI) -> None:
    """Add the playground page, its static files and the history route to ``app``."""
    for path in ("/", "/playground"):
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)
    app.mount("/playground/static", StaticFiles(directory=STATIC_DIR), name="playground-static")
    # ``limit`` is read by hand and documented here, so that the document lists the 400 this
    # server answers rather than FastAPI's 422 (which the error handlers never send).
    limit = {"name": "limit", "in": "query", "required": False,
             "description": "How many requests to list.",
             "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                        "default": DEFAULT_LIMIT}}
    app.add_api_route(
        "/v2/requests", history, methods=["GET"], response_model=HistoryBody,
        responses={400: ERRORS[400], 401: ERRORS[401]},
        openapi_extra={"parameters": [limit]},
        summary="This key's most recent requests, newest first (takeone extension)")


async def page() -> FileResponse:
    return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers=PAGE_HEADERS)


async def history(request: Request, response: Response) -> HistoryBody:
    services: Services = request.app.state.services
    key = await authenticate(services, request)
    jobs = await services.store.jobs_for_key(key.id, "segmind", _limit(request))
    response.headers["x-remaining-credits"] = f"{await services.store.balance(key.id):g}"
    base = base_url(services, request)
    expires = services.clock() + services.settings.link_ttl_s
    return HistoryBody(requests=[_item(services, base, expires, job) for job in jobs])


def _limit(request: Request) -> int:
    raw = request.query_params.get("limit")
    if raw is None:
        return DEFAULT_LIMIT
    if not re.fullmatch(r"[0-9]{1,4}", raw) or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest("limit", raw, f"must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _item(services: Services, base: str, expires: float, job: Job) -> HistoryItem:
    spec = ENDPOINTS.get(job.route)
    seed = job.metrics.get("seed", job.task.seed)
    return HistoryItem(
        request_id=job.id, endpoint=job.route, status=job.status.value,
        created_at=job.created_at, finished_at=job.finished_at, progress=round(job.progress, 4),
        error=job.error, blocking=job.blocking,
        params=_params(spec, job) if spec else {},
        images=_images(services, spec, job, base, expires) if spec else {},
        seed=seed if isinstance(seed, int) else None)


def _params(spec: EndpointSpec, job: Job) -> dict[str, Any]:
    """The endpoint's body fields back from the neutral task (the inverse of
    :meth:`EndpointSpec.to_task`), images aside."""
    task = job.task
    values: dict[str, Any] = {
        "prompt": task.prompt, "negative_prompt": task.negative_prompt,
        "cfg_scale": task.guidance, "mode": MODE_OF_TIER[task.tier],
        "aspect_ratio": task.aspect_ratio, "duration": task.seconds, "seed": task.seed}
    if spec.audio_field:
        values[spec.audio_field] = task.audio
    fields = spec.schema.model_fields
    return {name: value for name, value in values.items() if name in fields and value is not None}


def _images(services: Services, spec: EndpointSpec, job: Job, base: str,
            expires: float) -> dict[str, str]:
    """Signed links to the input images, by the endpoint's field names. Retention deletes a
    job's inputs with its record, so a listed job still has them."""
    inputs = job.task.inputs()
    return {field: services.blobs.url(inputs[role], base, expires)
            for field, role in spec.roles().items() if role in inputs}
