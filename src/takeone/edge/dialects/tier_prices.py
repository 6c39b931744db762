"""A neutral price table, by tier, seconds and audio, for dialects that price by tier (the
OpenAI dialect, the JWT-signed one); the Segmind dialect keeps its own table, by slug and
mode, from its seed pages.

Prices scale per second: each tier has a rate per second (``per_second``) and one with audio
(``per_second+audio``); an entry for one duration (``"5"``, ``"5+audio"``) overrides the rate
for that duration. The defaults match the Segmind dialect's prices for the same work: ``fast``
as its std mode, ``standard`` as pro, ``quality`` as master, and audio as its audio prices
(doubled for the quality tier, which Segmind does not sell with audio). Override any entry
under ``[tier.*]`` in the same TOML file as the Segmind prices (``--prices FILE`` or
``prices.toml``)::

    [tier.standard]
    per_second = 0.08
    "5+audio" = 0.80

Example::

    TierPrices.default().price(VideoTask(kind="t2v", tier="standard", seconds=5, audio=True))  # 0.875
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from takeone.core.task import VideoTask

TABLE = "tier"
RATE, RATE_AUDIO = "per_second", "per_second+audio"
DEFAULT_TIER_PRICES: dict[str, dict[str, float]] = {
    "fast": {RATE: 0.05, RATE_AUDIO: 0.10},
    "standard": {RATE: 0.09, RATE_AUDIO: 0.175},
    "quality": {RATE: 0.28, RATE_AUDIO: 0.35},
}
_DURATION_KEY = re.compile(r"[1-9][0-9]?(\+audio)?")


def price_key(task: VideoTask) -> str:
    return f"{task.seconds}{'+audio' if task.audio else ''}"


def price_of(entries: dict[str, float], task: VideoTask) -> float:
    """The entry for the task's duration if there is one, else the rate per second times its
    seconds. Example: ``price_of({"per_second": 0.09}, VideoTask(kind="t2v", seconds=4))``  # 0.36"""
    explicit = entries.get(price_key(task))
    if explicit is not None:
        return explicit
    return round(entries[RATE_AUDIO if task.audio else RATE] * task.seconds, 6)


def valid_key(key: str) -> bool:
    """``per_second``, ``per_second+audio``, or one duration (``"5"``, ``"12+audio"``)."""
    return key in (RATE, RATE_AUDIO) or _DURATION_KEY.fullmatch(key) is not None


@dataclass(frozen=True)
class TierPrices:
    table: dict[str, dict[str, float]]

    @classmethod
    def default(cls) -> TierPrices:
        return cls({tier: dict(entries) for tier, entries in DEFAULT_TIER_PRICES.items()})

    @classmethod
    def load(cls, path: Path | None) -> TierPrices:
        """The defaults, overridden by the ``[tier.*]`` tables of ``path`` if given."""
        prices = cls.default()
        if path is None:
            return prices
        with path.open("rb") as f:
            overrides = tomllib.load(f).get(TABLE, {})
        if not isinstance(overrides, dict):
            raise ValueError(f"{path}: [{TABLE}] must be a table of tiers")
        for tier, entries in overrides.items():
            _merge(prices.table, tier, entries, path)
        return prices

    def price(self, task: VideoTask) -> float:
        return price_of(self.table[task.tier], task)


def _merge(table: dict[str, dict[str, float]], tier: str, entries: Any, path: Path) -> None:
    if tier not in table or not isinstance(entries, dict):
        raise ValueError(f"{path}: unknown tier [{TABLE}.{tier}] (known: {', '.join(table)})")
    for key, value in entries.items():
        if (not valid_key(key) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or value < 0):
            raise ValueError(f"{path}: bad price {TABLE}.{tier}.{key} = {value!r}")
        table[tier][key] = float(value)
