"""Accepting a generation request: key, limits, body, images, price, then the job store.

The order is the contract's: the key (401), the slug (404), the key's scope (403), the rate
limit (429, before the body is read), the body (413/400), the workers (502), the credits (406).
The job is persisted with its price reserved before the client hears anything.
"""

from __future__ import annotations

import shutil
import uuid

from fastapi import Request

from takeone.accounts.keys import ApiKey
from takeone.edge.services import Services
from takeone.edge.dialects.segmind.common import EndpointInput
from takeone.edge.dialects.segmind.registry import EndpointSpec, get_endpoint
from takeone.core.errors import InvalidRequest, PayloadTooLarge
from takeone.core.task import VideoTask
from takeone.core.jobs import Job, JobStatus
from takeone.media.images import load_image, save_png
from takeone.models.registry import get_profile


def authenticate(services: Services, request: Request) -> ApiKey:
    """The caller's key (``x-api-key``, or ``Authorization: Bearer``); remember it for headers."""
    secret = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if not secret and auth.lower().startswith("bearer "):
        secret = auth[7:].strip()
    key = services.keys.authenticate(secret)
    request.state.remaining_credits = lambda: services.keys.balance(key.id)
    return key


async def accept(services: Services, request: Request, slug: str, blocking: bool) -> Job:
    key = authenticate(services, request)
    endpoint = get_endpoint(slug)
    key.check_scope(slug)
    services.limiter.check(key.id, key.rate_limit or services.settings.default_rate_limit)
    body = endpoint.parse(await read_body(request, services.settings.max_body_bytes))
    services.require_dispatcher().check_available()
    job_id = str(uuid.uuid4())
    idem = request.headers.get("idempotency-key")
    check_servable(services, endpoint, endpoint.to_task(body, _placeholders(endpoint, body)))
    try:
        task = await _build_task(services, endpoint, body, job_id)
        job = _new_job(services, key, endpoint.slug, task, job_id, blocking)
        stored = services.jobs.submit(job, key.max_concurrent, services.settings.max_queue, idem)
    except BaseException:
        shutil.rmtree(services.settings.inputs_dir / job_id, ignore_errors=True)
        raise
    if stored.id != job_id:  # a retried submit with the same idempotency key
        shutil.rmtree(services.settings.inputs_dir / job_id, ignore_errors=True)
    services.require_dispatcher().notify()
    return stored


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is known to be over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"the request body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"the request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _placeholders(endpoint: EndpointSpec, body: EndpointInput) -> dict[str, str]:
    """Stand-in input keys, so a task can be checked before any image is fetched."""
    return {name: f"pending:{name}" for name in endpoint.image_inputs(body)}


def check_servable(services: Services, endpoint: EndpointSpec, task: VideoTask) -> None:
    """400 in the dialect's field names if the profile cannot serve ``task``."""
    try:
        get_profile(services.settings.profile).recipe_for(task)
    except InvalidRequest as exc:
        raise endpoint.rename(exc) from None


async def _build_task(services: Services, endpoint: EndpointSpec, body: EndpointInput,
                      job_id: str) -> VideoTask:
    folder = services.settings.inputs_dir / job_id
    saved: dict[str, str] = {}
    for name, value in endpoint.image_inputs(body).items():
        image = await load_image(value, name, services.fetch_policy)
        path = folder / f"{name}.png"
        folder.mkdir(parents=True, exist_ok=True)
        save_png(image, path)
        saved[name] = str(path)
    return endpoint.to_task(body, saved)


def _new_job(services: Services, key: ApiKey, route: str, task: VideoTask, job_id: str,
             blocking: bool) -> Job:
    return Job(
        id=job_id,
        key_id=key.id,
        task=task,
        route=route,
        price=services.prices.price(route, task),
        status=JobStatus.QUEUED,
        created_at=services.clock(),
        blocking=blocking,
    )
