"""The web playground: a page that makes a video from the browser, and the key's history.

``install(app)`` adds the page at ``/`` and ``/playground``, its static files under
``/playground/static/`` (plain HTML, CSS and ES modules shipped in this package: no build step,
nothing fetched from a CDN), and ``GET /v2/requests?limit=N``, a takeone extension of the
Segmind API: the calling key's most recent requests through every dialect, newest first, each
with the route it came in by, its status and video link, and what it takes to send it again
through a Segmind form (its body fields, and signed links to the images it was made with), or
why no Segmind form makes the same video.

Each dialect's part comes from its own folder, as fields of its ``Dialect``: ``place`` (where
one of its jobs lives, for the history), ``label`` (its name on the page) and ``page_data``
(what the page's "copy as code" needs, such as its client's model ids); the page reads the
last two from ``/playground/dialects.json`` and names no dialect's models itself.

The page builds its forms from the server's own ``/openapi.json`` and talks to the queued API
like any other client, with the key the user typed (kept in the tab's session storage).

Example::

    app = FastAPI()
    install(app)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from takeone.core.errors import InvalidRequest
from takeone.core.jobs import Job, JobStatus
from takeone.core.task import VideoTask
from takeone.edge.auth import authenticate
from takeone.edge.dialects.base import JobPlace, default_place
from takeone.edge.dialects.registry import dialects
from takeone.edge.dialects.segmind.answers import Status
from takeone.edge.dialects.segmind.registry import ENDPOINTS, MODE_OF_TIER, EndpointSpec
from takeone.edge.dialects.segmind.routes import base_url
from takeone.edge.schemas import ERRORS
from takeone.edge.services import Services

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
    endpoint: str = Field(
        description="The model slug, as in POST /v2/{slug}, for a Segmind request; for another"
        " dialect's, the model (or endpoint, or task kind) it named.")
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
    dialect: str = Field("segmind", description="The API it came in by (its name in"
                         " /playground/dialects.json).")
    route: str = Field("", description="The request that made it, e.g. POST /v1/predictions.")
    dialect_id: str = Field("", description="Its id in that dialect's own answers.")
    status_url: str = Field("", description="Where that dialect answers its status.")
    output: str | None = Field(None, description="A signed, expiring link to the MP4 once"
                               " it is COMPLETED.")
    replay_endpoint: str | None = Field(
        None, description="The Segmind slug whose form params and images fill to make the same"
        " video again (the endpoint itself for a Segmind request); null when none does.")
    replay_error: str | None = Field(
        None, description="Why no Segmind form makes the same video (when replay_endpoint is"
        " null); params then hold its settings in Segmind's field names, and images are keyed"
        " by role (first_frame, last_frame).")


class HistoryBody(BaseModel):
    requests: list[HistoryItem] = Field(description="Newest first.")


def install(app: FastAPI) -> None:
    """Add the playground page, its static files and the history route to ``app``."""
    for path in ("/", "/playground"):
        app.add_api_route(path, page, methods=["GET"], include_in_schema=False)
    app.add_api_route("/playground/dialects.json", dialect_data, methods=["GET"],
                      include_in_schema=False)
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


async def dialect_data() -> JSONResponse:
    """Each dialect's name on the page and its data for the page (snippets, forms): the page
    itself names no dialect's models."""
    return JSONResponse({d.name: {"label": d.label or d.name, **d.page_data} for d in dialects()},
                        headers={"Cache-Control": "no-cache"})


async def history(request: Request, response: Response) -> HistoryBody:
    services: Services = request.app.state.services
    key = await authenticate(services, request)
    jobs = await services.store.recent_for_key(key.id, _limit(request))
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


# Task fields a replay must give back, by their names in the Segmind forms.
SEGMIND_NAMES = {"kind": "the kind of video", "tier": "the tier", "seconds": "duration",
                 "aspect_ratio": "aspect_ratio", "audio": "generate_audio", "seed": "seed",
                 "prompt": "prompt", "negative_prompt": "negative_prompt",
                 "guidance": "cfg_scale", "loras": "loras"}


def _item(services: Services, base: str, expires: float, job: Job) -> HistoryItem:
    seed = job.metrics.get("seed", job.task.seed)
    slug, replay_error = _replay_slug(job)
    spec = ENDPOINTS.get(slug) if slug else None
    place = _place(job)
    output = None
    if job.status is JobStatus.COMPLETED and job.output is not None:
        output = services.blobs.url(job.output, base, expires)
    return HistoryItem(
        request_id=job.id, endpoint=place.endpoint, status=job.status.value,
        created_at=job.created_at, finished_at=job.finished_at, progress=round(job.progress, 4),
        error=job.error, blocking=job.blocking,
        params=_params(spec, job.task) if spec else _values(job.task),
        images=_images(services, spec, job, base, expires),
        seed=seed if isinstance(seed, int) else None,
        dialect=job.dialect, route=place.route, dialect_id=place.dialect_id,
        status_url=base + place.status_path,
        output=output, replay_endpoint=slug, replay_error=replay_error)


def _place(job: Job) -> JobPlace:
    """Where ``job`` lives in the dialect it came in by (each dialect says, in its folder)."""
    dialect = next((d for d in dialects() if d.name == job.dialect), None)
    return (dialect.place if dialect else default_place)(job)


def _replay_slug(job: Job) -> tuple[str | None, str | None]:
    """The Segmind endpoint whose form makes the same video as ``job``, or why none does.

    A Segmind request replays through its own endpoint. Another dialect's is tried on each
    endpoint: its settings in that endpoint's fields must validate there and give back the
    same task (tier, length, shape, sound, prompts, guidance, seed and input images)."""
    if job.dialect == "segmind":
        return (job.route, None) if job.route in ENDPOINTS else (None, f"unknown endpoint {job.route!r}")
    reasons = []
    for slug, spec in ENDPOINTS.items():
        reason = _mismatch(spec, job.task)
        if reason is None:
            return slug, None
        reasons.append(f"{slug}: {reason}")
    return None, "no Segmind form makes the same video (" + "; ".join(reasons) + ")"


def _mismatch(spec: EndpointSpec, task: VideoTask) -> str | None:
    """Why ``spec``'s form cannot make ``task`` (None when it can)."""
    roles = spec.roles()
    for role in task.inputs():
        if role not in roles.values():
            return f"it takes no {role.replace('_', ' ')} image"
    if task.size is not None:
        return f"it takes an aspect_ratio, not an exact size ({task.size})"
    if task.fps is not None:
        return f"it takes no frame rate ({task.fps} fps)"
    placeholders = {field: f"https://input.invalid/{role}.png"
                    for field, role in roles.items() if role in task.inputs()}
    try:
        body = spec.parse(json.dumps({**_params(spec, task), **placeholders}).encode())
        made = spec.to_task(body, {field: task.inputs()[roles[field]] for field in placeholders})
    except InvalidRequest as exc:
        return str(exc)
    if task.audio and not spec.audio_field:
        return "it makes no sound, and this video has sound"
    for name, field in SEGMIND_NAMES.items():
        want, got = getattr(task, name), getattr(made, name)
        if want != got:
            return f"{field} would be {got!r}, not {want!r}"
    return None


def _values(task: VideoTask) -> dict[str, Any]:
    """The task's settings in Segmind's field names (every endpoint's fields together)."""
    values: dict[str, Any] = {
        "prompt": task.prompt, "negative_prompt": task.negative_prompt,
        "cfg_scale": task.guidance, "mode": MODE_OF_TIER[task.tier],
        "aspect_ratio": task.aspect_ratio, "duration": task.seconds, "seed": task.seed,
        "generate_audio": task.audio,
        "loras": [{"name": u.name, "scale": u.scale} for u in task.loras] if task.loras else None}
    return {name: value for name, value in values.items() if value is not None}


def _params(spec: EndpointSpec, task: VideoTask) -> dict[str, Any]:
    """The endpoint's body fields back from the neutral task (the inverse of
    :meth:`EndpointSpec.to_task`), images aside."""
    values = _values(task)
    if spec.audio_field:
        values[spec.audio_field] = task.audio
    fields = spec.schema.model_fields
    return {name: value for name, value in values.items() if name in fields}


def _images(services: Services, spec: EndpointSpec | None, job: Job, base: str,
            expires: float) -> dict[str, str]:
    """Signed links to the input images, by the endpoint's field names (by role without
    one). Retention deletes a job's inputs with its record, so a listed job still has them."""
    inputs = job.task.inputs()
    names = spec.roles() if spec else {role: role for role in inputs}
    return {field: services.blobs.url(inputs[role], base, expires)
            for field, role in names.items() if role in inputs}
