"""When to try a failed delivery again: Standard Webhooks' example schedule, bounded.

Attempts go out at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h after the failure
before them (eight attempts over about 27.6 hours), each delay stretched or shrunk by up to
10% so that many deliveries failing together do not retry together. A receiver's
``Retry-After`` makes the wait at least that long (capped at a day). Only timeouts,
connection failures, 408, 429 and 5xx are retried; 410 and every other answer end the
delivery at once.

Example::

    schedule = RetrySchedule()
    schedule.next_delay(attempts=1, retry_after=None)   # about 5 s; None once spent
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

STANDARD_DELAYS_S: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
JITTER = 0.1
MAX_RETRY_AFTER_S = 24 * 3600.0
RETRYABLE = frozenset({408, 429})


def is_retryable(status: int) -> bool:
    return status in RETRYABLE or status >= 500


@dataclass(frozen=True)
class RetrySchedule:
    delays_s: tuple[float, ...] = STANDARD_DELAYS_S
    jitter: float = JITTER
    rand: Callable[[], float] = field(default=random.random, compare=False)

    @property
    def max_attempts(self) -> int:
        return len(self.delays_s) + 1

    def next_delay(self, attempts: int, retry_after: float | None) -> float | None:
        """Seconds to wait after the ``attempts``-th failed attempt; None when none are left."""
        if attempts < 1 or attempts > len(self.delays_s):
            return None
        base = self.delays_s[attempts - 1]
        delay = base * (1 + self.jitter * (2 * self.rand() - 1))
        if retry_after is not None:
            delay = max(delay, min(retry_after, MAX_RETRY_AFTER_S))
        return delay
