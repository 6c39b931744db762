"""The sender: drains the webhook outbox from any API process.

It runs beside the retention sweeper in every API process (``takeone serve``, with or without
``--no-workers``): the outbox rows are written by whichever process finishes the job, a worker
process included, and read here. Rows are claimed under a short lease, so two API processes
never send one row at the same moment; a process killed mid-send leaves its rows to be
claimed again once the lease runs out, and a restart picks up every row not yet finished.
The body is rendered when it is sent, by the job's own dialect; each attempt is signed with
the key's current ``whsec_`` secret (unsigned if the key has none).

Deliveries never wait on one another: each attempt runs as its own task with a total deadline
(``--webhook-timeout``, the answer's last byte included), at most :data:`MAX_IN_FLIGHT` at once
in this process and at most :data:`PER_RECEIVER` to one receiver (scheme, host and port). A
receiver that timed out is *slow* for a while: one attempt at a time, and its other due
deliveries are put back (unattempted) until it has a free slot, so one tenant's slow or
hanging receiver costs the others nothing. When every slot is taken and deliveries are due,
the wait is measured (:func:`takeone.core.telemetry.webhook_late_seconds`, on ``/metrics`` and
noted on ``/healthz``).

Example::

    sender = WebhookSender(services, {"segmind": render_segmind_event})
    asyncio.create_task(sender.run_forever())
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from takeone.core.credentials import WEBHOOK_CONTEXT, SecretBox, context_for
from takeone.core.jobs import Job, JobStatus
from takeone.core.telemetry import observe_webhook, set_webhook_late
from takeone.core.webhooks import Delivery
from takeone.edge.background.webhooks.delivery import Outcome, post
from takeone.edge.background.webhooks.schedule import RetrySchedule
from takeone.edge.background.webhooks.signing import signed_headers
from takeone.edge.services import Services

log = logging.getLogger("takeone.webhooks")

POLL_S = 0.5
BATCH = 16
LEASE_MARGIN_S = 45.0
MAX_IN_FLIGHT = 32
PER_RECEIVER = 2
BUSY_DEFER_S = 1.0  # a claimed delivery whose receiver is busy is due again after this
SLOW_FOR_TIMEOUTS = 10  # a receiver that timed out is slow for this many attempt deadlines


@dataclass(frozen=True)
class Event:
    """What a dialect sends for one status change: its event type and the JSON body."""

    type: str
    payload: dict[str, Any]


Renderer = Callable[[Services, Job, JobStatus], Awaitable[Event | None]]
Poster = Callable[[str, bytes, dict[str, str], Any, float], Awaitable[Outcome]]


def receiver_of(url: str) -> str:
    """Who answers ``url``: its scheme, host and port (the unit of the per-receiver limit)."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError):
        return url
    return f"{parsed.scheme}://{parsed.host}:{parsed.port or ''}"


class WebhookSender:
    def __init__(self, services: Services, renderers: Mapping[str, Renderer],
                 schedule: RetrySchedule | None = None, poster: Poster = post,
                 max_in_flight: int = MAX_IN_FLIGHT, per_receiver: int = PER_RECEIVER) -> None:
        self.services = services
        self.renderers = renderers
        self.schedule = schedule or RetrySchedule(services.settings.webhook_retry_delays_s)
        self.poster = poster
        self.max_in_flight = max_in_flight
        self.per_receiver = per_receiver
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: Counter[str] = Counter()
        self._slow_until: dict[str, float] = {}
        self._late_since: float | None = None

    async def run_forever(self) -> None:
        try:
            while True:
                started = 0
                try:
                    started = await self.start_due()
                except Exception:
                    log.exception("webhook round failed")
                if not started:
                    await asyncio.sleep(POLL_S)
        finally:
            for task in self._tasks:
                task.cancel()

    async def send_due(self) -> int:
        """Claim the due deliveries, attempt each and wait for the attempts; return how many."""
        claimed = await self.start_due()
        await self.drain()
        return claimed

    async def drain(self) -> None:
        """Wait for every attempt in flight."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def start_due(self) -> int:
        """Claim due deliveries up to the free slots and start an attempt at each (a busy
        receiver's are put back); return how many were claimed."""
        s = self.services
        at = await s.store.next_delivery_at()
        due_now = at is not None and at <= s.clock()
        free = self.max_in_flight - len(self._tasks)
        self._note_lateness(due_now and free <= 0)
        if not due_now or free <= 0:
            return 0
        lease = s.settings.webhook_timeout_s + LEASE_MARGIN_S
        due = await s.store.claim_deliveries(s.identity, lease, min(BATCH, free))
        for delivery in due:
            await self._start(delivery)
        return len(due)

    def _note_lateness(self, waiting: bool) -> None:
        now = self.services.clock()
        if not waiting:
            self._late_since = None
        elif self._late_since is None:
            self._late_since = now
        set_webhook_late(0.0 if self._late_since is None else now - self._late_since)

    def _limit(self, receiver: str) -> int:
        slow = self._slow_until.get(receiver, 0.0) > self.services.clock()
        return 1 if slow else self.per_receiver

    async def _start(self, delivery: Delivery) -> None:
        receiver = receiver_of(delivery.url)
        if self._busy[receiver] >= self._limit(receiver):
            slow = self._slow_until.get(receiver, 0.0) > self.services.clock()
            wait = self.services.settings.webhook_timeout_s if slow else BUSY_DEFER_S
            await self.services.store.delivery_defer(delivery.id, self.services.clock() + wait)
            return
        self._busy[receiver] += 1
        task = asyncio.create_task(self._attempt(delivery, receiver))
        self._tasks.add(task)
        task.add_done_callback(lambda t: self._finished(t, receiver))

    def _finished(self, task: asyncio.Task[None], receiver: str) -> None:
        self._tasks.discard(task)
        self._busy[receiver] -= 1
        if self._busy[receiver] <= 0:
            del self._busy[receiver]

    async def _attempt(self, delivery: Delivery, receiver: str) -> None:
        try:
            outcome = await self._send(delivery)
        except Exception as exc:  # one bad delivery must not stop the others (logged)
            log.exception("webhook %s for job %s failed to send", delivery.webhook_id, delivery.job_id)
            outcome = Outcome(False, True, f"internal error: {type(exc).__name__}")
        if outcome is None:
            return
        self._judge_receiver(receiver, outcome)
        try:
            await self._settle(delivery, outcome)
        except Exception:  # the lease runs out and the row is claimed again
            log.exception("webhook %s for job %s could not be settled", delivery.webhook_id, delivery.job_id)

    def _judge_receiver(self, receiver: str, outcome: Outcome) -> None:
        if outcome.timed_out:
            span = SLOW_FOR_TIMEOUTS * self.services.settings.webhook_timeout_s
            self._slow_until[receiver] = self.services.clock() + span
            log.warning("webhook receiver %s is slow: one attempt at a time for %.0f s", receiver, span)
        elif receiver in self._slow_until and self._slow_until[receiver] <= self.services.clock():
            del self._slow_until[receiver]

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
