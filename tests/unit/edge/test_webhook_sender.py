"""The sender with a fake POST: signs with the key's secret, retries on the schedule, gives
up when the schedule is spent, and finishes rows it has nothing to send for."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

from takeone.core.credentials import WEBHOOK_CONTEXT, SecretBox, context_for
from takeone.core.jobs import Job, JobStatus, SubmitLimits
from takeone.core.settings import Settings
from takeone.core.task import VideoTask
from takeone.edge.background.webhooks.delivery import Outcome
from takeone.edge.background.webhooks.schedule import RetrySchedule
from takeone.edge.background.webhooks.sender import Event, WebhookSender
from takeone.edge.background.webhooks.signing import new_secret
from takeone.edge.services import Services


class FakePost:
    def __init__(self, outcomes: list[Outcome]) -> None:
        self.outcomes = outcomes
        self.calls: list[tuple[str, bytes, dict[str, str]]] = []

    async def __call__(self, url: str, body: bytes, headers: dict[str, str], policy: Any,
                      timeout: float) -> Outcome:
        self.calls.append((url, body, headers))
        return self.outcomes.pop(0) if self.outcomes else Outcome(True, False, "delivered")


async def render(services: Services, job: Job, status: JobStatus) -> Event | None:
    if status is JobStatus.PROCESSING:
        return None
    return Event("done", {"id": job.id, "status": status.value})


async def _scenario(tmp_path: Path, outcomes: list[Outcome]) -> tuple[Services, FakePost, str]:
    services = Services.build(Settings(data_dir=tmp_path, profile="tiny", run_workers=False))
    key = (await services.store.create(10.0)).key
    secret = new_secret()
    sealed = SecretBox(services.server_secret).seal(secret, context_for(key.id, WEBHOOK_CONTEXT))
    await services.store.set_webhook_secret(key.id, sealed)
    job = Job(id="j1", key_id=key.id, task=VideoTask(kind="t2v"), price=1.0, status=JobStatus.QUEUED,
              created_at=services.clock(), dialect="test", webhook_url="https://hooks.example.com/")
    await services.store.submit(job, SubmitLimits(None, 10))
    await services.store.claim("w", 30)
    await services.store.fail("j1", "boom")
    return services, FakePost(outcomes), secret


def _sender(services: Services, post: FakePost, delays: tuple[float, ...]) -> WebhookSender:
    return WebhookSender(services, {"test": render}, RetrySchedule(delays, jitter=0), post)


def test_retries_then_delivers_signed(tmp_path: Path) -> None:
    async def run() -> None:
        services, post, secret = await _scenario(tmp_path, [Outcome(False, True, "HTTP 500")])
        sender = _sender(services, post, (0.0,))
        assert await sender.send_due() == 1  # PROCESSING: nothing to send for it, finished
        assert post.calls == []
        assert await sender.send_due() == 1 and await sender.send_due() == 1
        assert await sender.send_due() == 0 and await services.store.next_delivery_at() is None
        (_, first, h1), (_, second, h2) = post.calls
        assert h1["webhook-id"] == h2["webhook-id"]
        assert Webhook(secret).verify(second, h2) == {"id": "j1", "status": "FAILED"}

    asyncio.run(run())


def test_gives_up_when_the_schedule_is_spent(tmp_path: Path) -> None:
    async def run() -> None:
        failing = [Outcome(False, True, "timed out")] * 5
        services, post, _ = await _scenario(tmp_path, failing)
        sender = _sender(services, post, (0.0, 0.0))
        for _ in range(6):
            await sender.send_due()
        assert len(post.calls) == 3  # the first attempt and two retries
        assert await services.store.next_delivery_at() is None

    asyncio.run(run())


def test_a_job_without_a_renderer_drops_its_deliveries(tmp_path: Path) -> None:
    async def run() -> None:
        services, post, _ = await _scenario(tmp_path, [])
        sender = WebhookSender(services, {}, RetrySchedule((0.0,)), post)  # no renderer for it
        await sender.send_due()
        await sender.send_due()
        assert post.calls == [] and await services.store.next_delivery_at() is None

    asyncio.run(run())
