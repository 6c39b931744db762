"""Per-key request-rate limiting (a sliding one-minute window, kept in the API process).

Only generation requests are counted (contracts.md section 2): status polls and downloads
are free, since clients poll every second while they wait.

Example::

    limiter = RateLimiter(clock=time.monotonic)
    limiter.check("key_1", per_minute=10)   # raises RateLimited on the 11th call in a minute
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable

from takeone.core.errors import RateLimited

WINDOW_S = 60.0


class RateLimiter:
    def __init__(self, clock: Callable[[], float]) -> None:
        self.clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key_id: str, per_minute: int | None) -> None:
        """Count one request for ``key_id``; raise if it is over ``per_minute``."""
        if per_minute is None:
            return
        now = self.clock()
        with self._lock:
            hits = self._hits.setdefault(key_id, deque())
            while hits and hits[0] <= now - WINDOW_S:
                hits.popleft()
            if len(hits) >= per_minute:
                retry = max(1, math.ceil(hits[0] + WINDOW_S - now))
                raise RateLimited(
                    f"rate limit exceeded: this key may make {per_minute} generation requests"
                    f" per minute; retry in {retry} s",
                    retry_after=retry,
                )
            hits.append(now)
