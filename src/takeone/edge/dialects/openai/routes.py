"""The OpenAI dialect's routes under ``/v1/videos``.

Keys are sent as ``Authorization: Bearer <key>`` (the SDK's ``api_key``); scopes, credits,
rate limits and ``Idempotency-Key`` work as for every dialect. Only jobs made through this
dialect are visible here; another dialect's request id is a 404, as an unknown one is.
Answers about an unfinished video carry ``openai-poll-after-ms``, which the SDK's
``create_and_poll`` honours.

Not served, each a 400 that says so: remix, edits, extensions and characters (they need a
video-to-video model), ``file_id`` references (no Files API), the ``spritesheet`` variant.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from takeone.core.accounts import ApiKey
from takeone.core.errors import InvalidRequest, NotFound
from takeone.core.jobs import Job, JobStatus
from takeone.edge.auth import authenticate
from takeone.edge.dialects.actions import base_url, cancel_job, delete_job, owned
from takeone.edge.dialects.openai import DIALECT, ROUTE
from takeone.edge.dialects.openai.body import IMAGE_FIELD, open_fields, parse_create, rename
from takeone.edge.dialects.openai.errors import openai_errors
from takeone.edge.dialects.openai.video import (
    OpenAIError,
    Video,
    VideoDeleted,
    VideoList,
    job_id_of,
    public_id,
    video_object,
)
from takeone.edge.dialects.tier_prices import TierPrices
from takeone.edge.files import blob_response
from takeone.edge.services import Services
from takeone.edge.submit import Submission, accept, admit
from takeone.edge.uploads import FormLimits
from takeone.models.registry import get_profile

POLL_AFTER_MS = 1000
DEFAULT_LIMIT, MAX_LIMIT = 20, 100
VARIANTS = ("video", "thumbnail", "spritesheet")
NOT_SERVED = ("this server generates from text and images only: remix, edits, extensions and"
              " characters need a video-to-video model, which the open-weight profiles do not have")


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _answer(body: dict[str, Any], status: JobStatus | None = None) -> JSONResponse:
    headers = {"openai-poll-after-ms": str(POLL_AFTER_MS)} if status and not status.is_terminal() else {}
    return JSONResponse(body, headers=headers)


@openai_errors
async def create_video(request: Request) -> Response:
    services = services_of(request)
    key = await authenticate(services, request)
    await admit(services, request, key, ROUTE)
    async with open_fields(request, form_limits(services), services.settings.scratch_dir,
                           services.images.pool) as fields:  # an uploaded file lives until the block ends
        return await _create(services, request, key, fields)


def form_limits(services: Services) -> FormLimits:
    """The body limit; a file part at most the image limit; ``input_reference`` sent as text
    (a data URI) up to the body limit, every other text part
    :data:`~takeone.edge.uploads.TEXT_MAX`."""
    body = services.settings.max_body_bytes
    as_text = {IMAGE_FIELD: body, f"{IMAGE_FIELD}[image_url]": body}
    return FormLimits(body=body, file=min(services.fetch_policy.max_bytes, body), text_for=as_text)


async def _create(services: Services, request: Request, key: ApiKey, fields: dict[str, Any]) -> Response:
    profile = get_profile(services.settings.profile)
    create = parse_create(fields, profile)
    task = create.task("pending:first_frame")
    try:
        recipe = profile.recipe_for(task)
    except InvalidRequest as exc:
        raise rename(exc) from None
    meta = {"model": create.model, "seconds": str(create.seconds), "prompt": create.prompt,
            "size": f"{recipe.output_width}x{recipe.output_height}",
            "base_url": base_url(services, str(request.base_url))}
    images = {"first_frame": (IMAGE_FIELD, create.image)} if create.image is not None else {}
    submission = Submission(route=ROUTE, task=task, images=images, price=services.prices(TierPrices).price(task),
                            rename=rename, fingerprint=create.fingerprint(), dialect=DIALECT, meta=meta)
    job = await accept(services, request, key, submission, blocking=False)
    return _answer(video_object(job, services.settings.retention_s), job.status)


async def _own_video(services: Services, request: Request, video_id: str) -> Job:
    key = await authenticate(services, request)
    job_id = job_id_of(video_id)
    job = owned(await services.store.get(job_id), key, DIALECT) if job_id else None
    if job is None:
        raise NotFound(f"Video with id {video_id!r} not found.")
    return job


@openai_errors
async def retrieve_video(request: Request, video_id: str) -> Response:
    services = services_of(request)
    job = await _own_video(services, request, video_id)
    return _answer(video_object(job, services.settings.retention_s), job.status)


@openai_errors
async def list_videos(request: Request) -> Response:
    services = services_of(request)
    key = await authenticate(services, request)
    limit, order, after = _list_params(request)
    after_id = None
    if after is not None:
        after_id = job_id_of(after)
        cursor = owned(await services.store.get(after_id), key, DIALECT) if after_id else None
        if cursor is None:
            raise InvalidRequest("after", after, "is not the id of one of your videos")
    jobs = await services.store.jobs_for_key(key.id, DIALECT, limit + 1, after=after_id,
                                             ascending=order == "asc")
    page = [video_object(j, services.settings.retention_s) for j in jobs[:limit]]
    return JSONResponse({"object": "list", "data": page,
                         "first_id": page[0]["id"] if page else None,
                         "last_id": page[-1]["id"] if page else None,
                         "has_more": len(jobs) > limit})


def _list_params(request: Request) -> tuple[int, str, str | None]:
    query = request.query_params
    raw = query.get("limit", str(DEFAULT_LIMIT))
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise InvalidRequest("limit", raw, f"must be a whole number from 1 to {MAX_LIMIT}")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise InvalidRequest("order", order, "must be asc or desc")
    return int(raw), order, query.get("after")


@openai_errors
async def delete_video(request: Request, video_id: str) -> Response:
    """An unfinished video is cancelled first (its GPU freed at the next step, nothing
    charged); then the record and its files are deleted."""
    services = services_of(request)
    job = await _own_video(services, request, video_id)
    if not job.status.is_terminal():
        job = await cancel_job(services, job.id, "cancelled: the video was deleted") or job
    await delete_job(services, job)
    return JSONResponse({"id": public_id(job.id), "object": "video.deleted", "deleted": True})


@openai_errors
async def download_content(request: Request, video_id: str) -> Response:
    services = services_of(request)
    job = await _own_video(services, request, video_id)
    variant = request.query_params.get("variant", "video")
    if variant not in VARIANTS:
        raise InvalidRequest("variant", variant, f"must be one of {', '.join(VARIANTS)}")
    if variant == "spritesheet":
        raise InvalidRequest("variant", variant, "spritesheets are not served; use video or thumbnail")
    if job.status is not JobStatus.COMPLETED or job.output is None:
        raise NotFound(f"Video {video_id!r} has no content: it is {video_object(job, 0)['status']}.")
    key = job.output if variant == "video" else job.output.rsplit(".", 1)[0] + ".jpg"
    name = f"{video_id}.{'mp4' if variant == 'video' else 'jpg'}"
    return await blob_response(services.blobs, key, request.headers.get("range"), filename=name)


@openai_errors
async def not_served(request: Request) -> Response:
    raise InvalidRequest("video", request.url.path, NOT_SERVED)


def _param(name: str, schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {code: {"model": OpenAIError, "description": "An error in OpenAI's shape"} for code in codes}


def _create_doc() -> dict[str, Any]:
    reference = {"type": "string", "format": "binary", "description": "The first frame (an image file)."}
    props: dict[str, Any] = {
        "prompt": {"type": "string", "minLength": 1, "maxLength": 10000},
        "model": {"type": "string", "default": "sora-2",
                  "description": "sora-2 (standard tier), sora-2-pro (quality tier) or the profile's name."},
        "seconds": {"type": "string", "default": "4",
                    "description": "4, 8, 12 (delivered exactly) or any whole second the profile serves."},
        "size": {"type": "string", "default": "720x1280",
                 "description": "720x1280, 1280x720, 1024x1792, 1792x1024 or an exact size the profile serves."},
    }
    json_props = {**props, IMAGE_FIELD: {"type": "object", "properties": {"image_url": {"type": "string"}},
                                         "additionalProperties": False}}
    form = {"type": "object", "required": ["prompt"], "properties": {**props, IMAGE_FIELD: reference}}
    body = {"type": "object", "required": ["prompt"], "properties": json_props, "additionalProperties": False}
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": form}, "application/json": {"schema": body}}}}


def router() -> APIRouter:
    api = APIRouter(tags=["OpenAI Videos API"])
    common = _errors(400, 401, 404, 429, 500)
    api.add_api_route("/v1/videos", create_video, methods=["POST"], response_model=Video,
                      responses={**_errors(400, 401, 403, 409, 413, 429, 500, 502, 503)},
                      openapi_extra=_create_doc(), summary="Create a video (OpenAI Videos API)")
    api.add_api_route("/v1/videos", list_videos, methods=["GET"], response_model=VideoList,
                      responses=common, summary="List this key's videos (OpenAI Videos API)",
                      openapi_extra={"parameters": [
                          _param("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT}, "Page size."),
                          _param("order", {"type": "string", "enum": ["asc", "desc"]}, "By creation time."),
                          _param("after", {"type": "string"}, "The last id of the previous page.")]})
    for path in ("/v1/videos/edits", "/v1/videos/extensions", "/v1/videos/characters",
                 "/v1/videos/{video_id}/remix"):
        api.add_api_route(path, not_served, methods=["POST"], include_in_schema=False)
    api.add_api_route("/v1/videos/characters/{character_id}", not_served, methods=["GET"],
                      include_in_schema=False)
    api.add_api_route("/v1/videos/{video_id}", retrieve_video, methods=["GET"], response_model=Video,
                      responses=common, summary="Retrieve a video (OpenAI Videos API)")
    api.add_api_route("/v1/videos/{video_id}", delete_video, methods=["DELETE"], response_model=VideoDeleted,
                      responses=common, summary="Delete a video; an unfinished one is cancelled first")
    api.add_api_route("/v1/videos/{video_id}/content", download_content, methods=["GET"],
                      response_class=Response, summary="Download the MP4 (Range) or its thumbnail (JPEG)",
                      responses={200: {"content": {"video/mp4": {}, "image/jpeg": {}},
                                       "description": "The video or its first frame"},
                                 206: {"content": {"video/mp4": {}, "image/jpeg": {}},
                                       "description": "A byte range"}, 416: {"description": "Bad range"},
                                 **common},
                      openapi_extra={"parameters": [_param(
                          "variant", {"type": "string", "enum": list(VARIANTS)}, "Which asset.")]})
    return api


def install(app: FastAPI) -> None:
    app.include_router(router())
