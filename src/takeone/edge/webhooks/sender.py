"""The sender: drains the webhook outbox from any API process.

It runs beside the retention sweeper in every API process (``takeone serve``, with or without
``--no-workers``): the outbox rows are written by whichever process finishes the job, a worker
process included, and read here. Rows are claimed under a short lease, so two API processes
never send one row at the same moment; a process killed mid-send leaves its rows to be
claimed again once the lease runs out, and a restart picks up every row not yet finished.
The body is rendered when it is sent, by the job's own dialect; each attempt is signed with
the key's current ``whsec_`` secret (unsigned if the key has none).

Example::

    sender = WebhookSender(services, {"segmind": render_segmind_event})
    asyncio.create_task(sender.run_forever())
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from takeone.core.credentials import WEBHOOK_CONTEXT, SecretBox, context_for
from takeone.core.jobs import Job, JobStatus
from takeone.core.telemetry import observe_webhook
from takeone.core.webhooks import Delivery
from takeone.edge.services import Services
from takeone.edge.webhooks.delivery import Outcome, post
from takeone.edge.webhooks.schedule import RetrySchedule
from takeone.edge.webhooks.signing import signed_headers

log = logging.getLogger("takeone.webhooks")

POLL_S = 0.5
BATCH = 16
LEASE_MARGIN_S = 45.0


@dataclass(frozen=True)
class Event:
    """What a dialect sends for one status change: its event type and the JSON body."""

    type: str
    payload: dict[str, Any]


Renderer = Callable[[Services, Job, JobStatus], Awaitable[Event | None]]
Poster = Callable[[str, bytes, dict[str, str], Any, float], Awaitable[Outcome]]


class WebhookSender:
    def __init__(self, services: Services, renderers: Mapping[str, Renderer],
                 schedule: RetrySchedule | None = None, poster: Poster = post) -> None:
        self.services = services
        self.renderers = renderers
        self.schedule = schedule or RetrySchedule(services.settings.webhook_retry_delays_s)
        self.poster = poster

    async def run_forever(self) -> None:
        while True:
            sent = 0
            try:
                at = await self.services.store.next_delivery_at()
                if at is not None and at <= self.services.clock():
                    sent = await self.send_due()
            except Exception:
                log.exception("webhook round failed")
            if not sent:
                await asyncio.sleep(POLL_S)

    async def send_due(self) -> int:
        """Claim the due deliveries and make one attempt at each; return how many."""
        s = self.services
        lease = s.settings.webhook_timeout_s + LEASE_MARGIN_S
        due = await s.store.claim_deliveries(s.identity, lease, BATCH)
        await asyncio.gather(*(self._attempt(d) for d in due))
        return len(due)

    async def _attempt(self, delivery: Delivery) -> None:
        try:
            outcome = await self._send(delivery)
        except Exception as exc:  # one bad delivery must not stop the others (logged)
            log.exception("webhook %s for job %s failed to send", delivery.webhook_id, delivery.job_id)
            outcome = Outcome(False, True, f"internal error: {type(exc).__name__}")
        if outcome is not None:
            await self._settle(delivery, outcome)

    async def _send(self, delivery: Delivery) -> Outcome | None:
        s = self.services
        job = await s.store.get(delivery.job_id)
        renderer = self.renderers.get(job.dialect) if job is not None else None
        if job is None or renderer is None:
            await s.store.delivery_done(delivery.id, "dropped: the job or its dialect is gone")
            observe_webhook("dropped")
            return None
        event = await renderer(s, job, delivery.status)
        if event is None:  # this dialect sends nothing for this change
            await s.store.delivery_done(delivery.id, "skipped: no event for this status")
            observe_webhook("skipped")
            return None
        body = json.dumps(event.payload, separators=(",", ":")).encode()
        headers = signed_headers(delivery.webhook_id, int(s.clock()), body, await self._secret(job.key_id))
        return await self.poster(delivery.url, body, headers, s.fetch_policy, s.settings.webhook_timeout_s)

    async def _secret(self, key_id: str) -> str | None:
        sealed = (await self.services.store.webhook_of(key_id)).sealed_secret
        if not sealed:
            return None
        return SecretBox(self.services.server_secret).open(sealed, context_for(key_id, WEBHOOK_CONTEXT))

    async def _settle(self, delivery: Delivery, outcome: Outcome) -> None:
        store = self.services.store
        attempts = delivery.attempts + 1
        delay = self.schedule.next_delay(attempts, outcome.retry_after) if outcome.retry else None
        if outcome.delivered or delay is None:
            detail = outcome.detail if outcome.delivered or not outcome.retry else \
                f"gave up after {attempts} attempts; last: {outcome.detail}"
            await store.delivery_done(delivery.id, detail)
            observe_webhook("delivered" if outcome.delivered else "failed")
            level = logging.INFO if outcome.delivered else logging.WARNING
            log.log(level, "webhook %s (job %s, %s): %s", delivery.webhook_id, delivery.job_id,
                    delivery.status.value, detail)
            return
        await store.delivery_retry(delivery.id, self.services.clock() + delay, outcome.detail)
        observe_webhook("retrying")
        log.info("webhook %s (job %s): attempt %d failed (%s); next in %.0f s", delivery.webhook_id,
                 delivery.job_id, attempts, outcome.detail, delay)
