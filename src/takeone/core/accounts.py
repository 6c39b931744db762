"""API keys, credits and limits as the core sees them: records and async protocols.

The embedded SQLite backend implements every protocol here; a Postgres one implements the
same. Amounts cross these interfaces as floats of credits; backends keep integer
micro-credits so sums are exact. A job's price moves through exactly one of two paths, each
guarded so it happens once, in the same transaction as the job's own state change:

    reserve (on submit) -> commit  (video delivered)
                        -> release (failed, cancelled, timed out: nothing charged)

Example::

    created = await keys.create(credits=10.0, scopes=["my-route"])
    key = await keys.authenticate(created.secret)
    await limits.hit(key.id, per_minute=30)      # RateLimited on the 31st in a minute
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from takeone.core.errors import Forbidden, InvalidRequest, RateLimited

MICRO = 1_000_000
RATE_WINDOW_S = 60.0
MAX_CREDITS = 1e9  # far above any real balance, far below float and integer trouble


def check_amount(field: str, value: float, allow_negative: bool = False) -> float:
    """A credit amount a person typed: finite, not absurd, and not negative unless allowed."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or abs(value) > MAX_CREDITS:
        raise InvalidRequest(field, value, f"must be a finite number of credits up to {MAX_CREDITS:g}")
    if value < 0 and not allow_negative:
        raise InvalidRequest(field, value, "must not be negative")
    return float(value)


def check_limit(field: str, value: int | None) -> int | None:
    """A per-key or server-wide limit: None (no limit) or a positive whole number."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InvalidRequest(field, value, "must be a whole number of at least 1 (leave it out for no limit)")
    return value


def rate_limited(per_minute: int, oldest_hit: float, now: float) -> RateLimited:
    """The answer to one request too many: when the oldest hit in the window leaves it."""
    retry = max(1, math.ceil(oldest_hit + RATE_WINDOW_S - now))
    return RateLimited(f"rate limit exceeded: this key may make {per_minute} generation requests"
                       f" per minute; retry in {retry} s", retry_after=retry)


def to_micro(credits: float) -> int:
    return round(credits * MICRO)


def from_micro(amount: int) -> float:
    return round(amount / MICRO, 6)


@dataclass(frozen=True)
class ApiKey:
    """One key's public record (never the secret)."""

    id: str
    prefix: str
    name: str
    scopes: tuple[str, ...] | None
    rate_limit: int | None
    max_concurrent: int | None
    balance: float
    reserved: float
    created_at: float
    revoked: bool
    max_queued: int | None = None  # its share of the queue (None: the server's default share)

    def check_scope(self, route: str) -> None:
        if self.scopes is None:
            return
        routes = [s for s in self.scopes if not s.startswith("lora:")]  # lora:NAME: see core.loras
        if routes or not self.scopes:  # a key scoped to LoRAs only may call every route
            self._check_route(route, routes)

    def _check_route(self, route: str, routes: list[str]) -> None:
        if route not in routes:
            raise Forbidden(f"this API key may not call {route!r} (allowed: {', '.join(routes)})")


@dataclass(frozen=True)
class CreatedKey:
    key: ApiKey
    secret: str


class KeyStore(Protocol):
    async def create(self, credits: float, scopes: Sequence[str] | None = None,
                     rate_limit: int | None = None, max_concurrent: int | None = None,
                     name: str = "", max_queued: int | None = None) -> CreatedKey:
        """A new key; its secret is in the answer and nowhere else. ``max_queued``: its own
        share of the queue (None: the server's default share)."""

    async def authenticate(self, secret: str | None) -> ApiKey:
        """The key behind ``secret``; :class:`Unauthorized` if missing, unknown or revoked."""

    async def get_key(self, key_id: str) -> ApiKey:
        """By id or by the secret's visible prefix; :class:`NotFound` otherwise."""

    async def list_keys(self) -> list[ApiKey]: ...

    async def revoke(self, key_id: str) -> ApiKey: ...


class Ledger(Protocol):
    async def balance(self, key_id: str) -> float: ...

    async def credit(self, key_id: str, credits: float) -> ApiKey:
        """Grant (or with a negative amount, remove) credits, recorded in the ledger."""


class RateCounter(Protocol):
    async def hit(self, key_id: str, per_minute: int | None) -> None:
        """Count one generation request; :class:`RateLimited` if over ``per_minute``
        in the last minute, counted across every API process sharing the store."""
