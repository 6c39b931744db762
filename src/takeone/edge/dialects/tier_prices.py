"""A neutral price table, by tier, seconds and audio, for dialects that price by tier (the
OpenAI dialect, the JWT-signed one); the Segmind dialect keeps its own table, by slug and
mode, from its seed pages.

The defaults match the Segmind dialect's prices for the same work: ``fast`` as its std mode,
``standard`` as pro, ``quality`` as master, and audio as its audio prices (doubled for the
quality tier, which Segmind does not sell with audio). Override any entry under ``[tier.*]``
in the same TOML file as the Segmind prices (``--prices FILE`` or ``prices.toml``)::

    [tier.standard]
    "5" = 0.40
    "5+audio" = 0.80

Example::

    TierPrices.default().price(VideoTask(kind="t2v", tier="standard", seconds=5, audio=True))  # 0.875
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from takeone.core.task import VideoTask

TABLE = "tier"
DEFAULT_TIER_PRICES: dict[str, dict[str, float]] = {
    "fast": {"5": 0.25, "10": 0.50, "5+audio": 0.50, "10+audio": 1.00},
    "standard": {"5": 0.45, "10": 0.90, "5+audio": 0.875, "10+audio": 1.75},
    "quality": {"5": 1.40, "10": 2.80, "5+audio": 1.75, "10+audio": 3.50},
}


def price_key(task: VideoTask) -> str:
    return f"{task.seconds}{'+audio' if task.audio else ''}"


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
        return self.table[task.tier][price_key(task)]


def _merge(table: dict[str, dict[str, float]], tier: str, entries: Any, path: Path) -> None:
    if tier not in table or not isinstance(entries, dict):
        raise ValueError(f"{path}: unknown tier [{TABLE}.{tier}] (known: {', '.join(table)})")
    for key, value in entries.items():
        if (key not in table[tier] or not isinstance(value, (int, float)) or not math.isfinite(value)
                or value < 0):
            raise ValueError(f"{path}: bad price {TABLE}.{tier}.{key} = {value!r}")
        table[tier][key] = float(value)
