"""Store calls that must not be lost: retried with backoff while the store is unavailable.

A dispatcher that gave up on a failed write would leave its job PROCESSING and its credits
reserved; instead it logs, waits and tries again, and reports the outage as its health.

Example::

    store_calls = StoreRetry("dispatcher")
    job = await store_calls.run("claim", lambda: store.claim(owner, 30))
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from takeone.core.errors import StoreUnavailable

T = TypeVar("T")
log = logging.getLogger("takeone.dispatch")

FIRST_DELAY_S = 0.25
MAX_DELAY_S = 5.0


class StoreRetry:
    def __init__(self, who: str) -> None:
        self.who = who
        self.error: str | None = None  # the outage in progress, if any

    async def run(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        delay, tries = FIRST_DELAY_S, 0
        while True:
            try:
                result = await call()
            except StoreUnavailable as exc:
                tries += 1
                self._failed(what, exc, tries)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_DELAY_S)
                continue
            if self.error is not None:
                log.warning("%s: the job store answers again (%s)", self.who, what)
                self.error = None
            return result

    def _failed(self, what: str, exc: StoreUnavailable, tries: int) -> None:
        self.error = exc.message
        if tries == 1 or tries % 10 == 0:
            log.warning("%s: %s failed (%s); retrying (try %d)", self.who, what, exc.message, tries)
