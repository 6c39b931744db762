"""Accepting a generation request, for every dialect: key, limits, task, images, store.

A dialect parses its body and hands over a :class:`Submission`: the neutral task (its input
keys still placeholders), the raw image values by role, the price and how to rename a core
error into its own field names. The order is the contract's: the key (401), the route (404),
the key's scope (403), the rate limit (429, before the body is read), the body (413/400),
the workers (502), the task against the profile (400), an earlier job with the same
Idempotency-Key (answered as is), the credits (406), the key's share of the queue and the
queue's length (429), and only then the images are fetched,
decoded and stored (on :class:`~takeone.edge.imagework.ImageWork`'s own threads: a huge image
never stalls the server, nor takes the threads other keys' store calls need).
The job is persisted with its price reserved before the client hears anything.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import math
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from PIL import Image

from takeone.core.accounts import ApiKey
from takeone.core.blobs import input_key, input_prefix
from takeone.core.errors import InsufficientCredits, InvalidRequest, PayloadTooLarge
from takeone.core.jobs import Job, JobStatus, SubmitLimits, check_queue, replays
from takeone.core.task import VideoTask
from takeone.edge.health import check_available
from takeone.edge.loras import with_surcharges
from takeone.edge.services import Services
from takeone.media.images import ImageFile, load_image
from takeone.models.registry import get_profile

INPUT_MAX_SIDE = 2560  # above the largest generation size (1920x1088) with room for crops


@dataclass(frozen=True)
class Submission:
    """What a dialect hands over once its body is valid."""

    route: str
    task: VideoTask
    images: Mapping[str, tuple[str, str | ImageFile]]  # role -> (the dialect's field name, raw value)
    price: float
    rename: Callable[[InvalidRequest], InvalidRequest]
    dialect: str  # only this dialect's routes will read the job
    fingerprint: str | None = None  # the validated body's hash: an idempotency key's reuse check
    webhook_url: str | None = None  # None: the key's own webhook URL, if it has one
    external_id: str | None = None  # the client's own id for the job (unique per key)
    meta: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # echoed back by the dialect
    aspect_from: str | None = None  # the input role whose picture sets the aspect ratio


async def admit(services: Services, request: Request, key: ApiKey, route: str) -> None:
    """Scope and rate limit: what is checked before the body is read."""
    key.check_scope(route)
    await services.store.hit(key.id, key.rate_limit or services.settings.default_rate_limit)


async def accept(services: Services, request: Request, key: ApiKey, submission: Submission,
                 blocking: bool) -> Job:
    """Check, store the inputs, persist the job with its price reserved; return it."""
    await check_available(services)
    _check_servable(services, submission)
    submission = await with_surcharges(services, key, submission)  # before the credit check
    idempotency_key = request.headers.get("idempotency-key")
    if idempotency_key is not None:  # a retry answers with its first job, with no image work
        earlier = await _replayed(services, key, submission, idempotency_key)
        if earlier is not None:
            return earlier
    await _check_credits(services, key, submission.price)
    limits = limits_for(services, key)
    check_queue(limits, *await services.store.queue_counts(key.id))
    job_id = str(uuid.uuid4())
    try:
        with services.images.admit():
            task = await _store_inputs(services, submission, job_id)
        webhook = submission.webhook_url  # else the key's URL, for queued jobs only
        if webhook is None and not blocking:
            webhook = (await services.store.webhook_of(key.id)).url
        stored = await services.store.submit(
            _new_job(services, key, submission, task, job_id, blocking, webhook),
            limits,
            idempotency_key)
    except BaseException:
        await asyncio.to_thread(services.blobs.delete_prefix, input_prefix(job_id))
        raise
    if stored.id != job_id:  # a retried submit with the same idempotency key
        await asyncio.to_thread(services.blobs.delete_prefix, input_prefix(job_id))
    if services.dispatcher is not None:
        services.dispatcher.notify()
    return stored


def limits_for(services: Services, key: ApiKey) -> SubmitLimits:
    """The key's concurrent jobs, the queue's length and the key's share of it: its own
    ``max_queued``, else ``--queue-share`` of ``--max-queue`` (at least one job)."""
    max_queue = services.settings.max_queue
    share = key.max_queued if key.max_queued is not None else \
        max(1, math.ceil(max_queue * services.settings.queue_share))
    return SubmitLimits(key.max_concurrent, max_queue, min(share, max_queue))


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


def _check_servable(services: Services, submission: Submission) -> None:
    """400 in the dialect's field names if the profile cannot serve the task."""
    try:
        get_profile(services.settings.profile).recipes_for(submission.task)
    except InvalidRequest as exc:
        raise submission.rename(exc) from None


async def _replayed(services: Services, key: ApiKey, submission: Submission, idem: str) -> Job | None:
    """The job an earlier request with this Idempotency-Key made, if this request repeats it
    (409 if the key was used for another request; None: no such job, or it failed)."""
    earlier = await services.store.find_idempotent(key.id, idem)
    probe = Job(id="", key_id=key.id, task=submission.task, price=submission.price,
                status=JobStatus.QUEUED, created_at=0.0, route=submission.route,
                request_hash=submission.fingerprint, dialect=submission.dialect)
    return earlier if earlier is not None and replays(earlier, probe, idem) else None


async def _check_credits(services: Services, key: ApiKey, price: float) -> None:
    """Refuse early, before any image work; the reservation itself is atomic at submit."""
    balance = await services.store.balance(key.id)
    if balance < price:
        raise InsufficientCredits(
            f"insufficient credits: this request costs {price:g} and the key has {balance:g}")


async def _store_inputs(services: Services, submission: Submission, job_id: str) -> VideoTask:
    keys: dict[str, str] = {}
    for role, (field, value) in submission.images.items():
        image = await load_image(value, field, services.fetch_policy, services.images.pool)
        key = input_key(job_id, role)
        await asyncio.get_running_loop().run_in_executor(
            services.images.pool, _store_image, services, key, image)
        keys[role] = key
        if role == submission.aspect_from and submission.task.aspect_ratio is not None:
            task = dataclasses.replace(submission.task, aspect_ratio=nearest_aspect(*image.size))
            submission = dataclasses.replace(submission, task=task)
    return submission.task.with_inputs(keys)


def nearest_aspect(width: int, height: int) -> str:
    """The served aspect ratio closest to a picture's (by the log of the ratios)."""
    ratios = {"16:9": 16 / 9, "9:16": 9 / 16, "1:1": 1.0}
    return min(ratios, key=lambda name: abs(math.log((width / height) / ratios[name])))


def _store_image(services: Services, key: str, image: Image.Image) -> None:
    """Store an input compactly, off the event loop: no profile generates above 1920x1088, so a
    larger picture is scaled down (aspect kept) to :data:`INPUT_MAX_SIDE` before it is stored."""
    if max(image.size) > INPUT_MAX_SIDE:
        image = image.copy()
        image.thumbnail((INPUT_MAX_SIDE, INPUT_MAX_SIDE), Image.Resampling.LANCZOS)
    services.blobs.put(key, _png(image))


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)  # lossless; level 1 is ~10x faster than 6
    return out.getvalue()


def _new_job(services: Services, key: ApiKey, submission: Submission, task: VideoTask,
             job_id: str, blocking: bool, webhook_url: str | None = None) -> Job:
    return Job(
        id=job_id,
        key_id=key.id,
        task=task,
        route=submission.route,
        price=submission.price,
        status=JobStatus.QUEUED,
        created_at=services.clock(),
        blocking=blocking,
        caller=services.identity if blocking else None,
        request_hash=submission.fingerprint,
        dialect=submission.dialect,
        webhook_url=webhook_url,
        external_id=submission.external_id,
        meta=dict(submission.meta),
    )
