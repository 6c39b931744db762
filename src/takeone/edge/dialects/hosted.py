"""What the hosted-queue dialects (Replicate, fal, RunPod) share: an error wrapper in each
dialect's own shape, readable progress logs, short public ids, and the throttled progress
webhooks that Replicate's ``logs`` event asks for.

Progress webhooks are not status changes, so they are not in the durable outbox: the API
process that accepted the job watches it and sends one signed POST each time its logs
change, at most every :data:`THROTTLE_S` seconds, until the job ends (then the outbox sends
the final event). A process that stops takes its watchers with it; the job and its final
webhook are not affected.

Example::

    logs_of(job)             # "Generating a 5 s video (standard tier)\\n 40%|####      | 40/100"
    watch_progress(services, job, render, url)   # logs webhooks while it runs
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import functools
import hashlib
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

from fastapi.responses import Response

from takeone.core import errors
from takeone.core.credentials import WEBHOOK_CONTEXT, SecretBox, context_for
from takeone.core.jobs import Job, JobStatus
from takeone.edge.background.webhooks.delivery import post
from takeone.edge.background.webhooks.signing import signed_headers
from takeone.edge.services import Services

P = ParamSpec("P")
THROTTLE_S = 0.5
STEPS = 10  # progress lines: one per 10 %
log = logging.getLogger("takeone.webhooks")
_watchers: set[asyncio.Task[None]] = set()
_watched: set[str] = set()  # job ids with a watch in this process


def answer_errors(shape: Callable[[errors.TakeoneError], Response]) -> Callable[
        [Callable[P, Awaitable[Response]]], Callable[P, Awaitable[Response]]]:
    """A decorator answering every :class:`TakeoneError` a handler raises with ``shape``."""

    def decorate(handler: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
        @functools.wraps(handler)
        async def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
            try:
                return await handler(*args, **kwargs)
            except errors.TakeoneError as exc:
                return shape(exc)

        return wrapped

    return decorate


def short_id(job_id: str) -> str:
    """A job's UUID as 26 lowercase base32 characters (the look of Replicate's ids)."""
    return base64.b32encode(uuid.UUID(job_id).bytes).decode("ascii").rstrip("=").lower()


def job_id_of_short(public: str) -> str | None:
    if len(public) != 26 or not public.isalnum():
        return None
    try:
        return str(uuid.UUID(bytes=base64.b32decode(public.upper() + "======")))
    except (ValueError, TypeError):
        return None


def iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def is_cancelled(job: Job) -> bool:
    return job.status is JobStatus.FAILED and (job.error or "").startswith("cancelled")


def logs_of(job: Job) -> str:
    """Progress as log lines, one per 10 % reached, in tqdm's form (which Replicate's client
    parses into ``prediction.progress``)."""
    if job.status is JobStatus.QUEUED:
        return ""
    task = job.task
    lines = [f"Generating a {task.seconds} s video ({task.tier} tier)"]
    done = job.status is JobStatus.COMPLETED
    reached = STEPS if done else int(job.progress * STEPS + 1e-9)
    for step in range(1, reached + 1):
        pct = step * 100 // STEPS
        lines.append(f"{pct:3d}%|{'#' * step}{' ' * (STEPS - step)}| {pct}/100")
    if job.status is JobStatus.FAILED:
        lines.append(job.error or "failed")
    return "\n".join(lines) + "\n"


def progress_pct(job: Job) -> int:
    return 100 if job.status is JobStatus.COMPLETED else int(round(job.progress * 100))


async def webhook_secret(services: Services, key_id: str) -> str | None:
    """The key's ``whsec_`` secret, opened (None when it has none)."""
    sealed = (await services.store.webhook_of(key_id)).sealed_secret
    if not sealed:
        return None
    return SecretBox(services.server_secret).open(sealed, context_for(key_id, WEBHOOK_CONTEXT))


ProgressRenderer = Callable[[Services, Job], dict[str, Any]]


def watch_progress(services: Services, job: Job, render: ProgressRenderer, url: str) -> None:
    """Send ``render(job)`` to ``url`` whenever the job's logs change while it runs (once
    per job in this process: a replayed submit does not start a second watch)."""
    if job.id in _watched:
        return
    _watched.add(job.id)
    task = asyncio.get_running_loop().create_task(_watch(services, job.id, job.key_id, render, url))
    _watchers.add(task)
    task.add_done_callback(_watchers.discard)
    task.add_done_callback(lambda _: _watched.discard(job.id))


async def _watch(services: Services, job_id: str, key_id: str, render: ProgressRenderer,
                 url: str) -> None:
    sent = ""
    while True:
        job = await services.store.get(job_id)
        if job is None or job.status.is_terminal():
            return
        text = logs_of(job)
        if job.status is JobStatus.PROCESSING and text != sent:
            sent = text
            try:
                await _send(services, key_id, url, render(services, job), f"{job_id}:{text}")
            except Exception:  # a lost progress event must not end the watch (logged)
                log.exception("progress webhook for job %s failed", job_id)
        await asyncio.sleep(THROTTLE_S)


async def _send(services: Services, key_id: str, url: str, payload: dict[str, Any], seed: str) -> None:
    body = json.dumps(payload, separators=(",", ":")).encode()
    webhook_id = "msg_" + hashlib.sha256(seed.encode()).hexdigest()[:24]
    headers = signed_headers(webhook_id, int(services.clock()), body, await webhook_secret(services, key_id))
    outcome = await post(url, body, headers, services.fetch_policy, services.settings.webhook_timeout_s)
    if not outcome.delivered:
        log.info("progress webhook for job %s: %s (not retried)", payload.get("id"), outcome.detail)
