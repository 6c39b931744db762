"""The Segmind price table: credits per video by slug, mode, duration and audio.

The defaults follow the seed pages (Kling 2.6: 0.438 for 5 s without audio up to 1.75 for
10 s with audio). An operator overrides any entry in a TOML file::

    ["kling-2.6".pro]
    "5" = 0.438            # 5 s without audio
    "5+audio" = 0.875      # 5 s with audio

    ["kling-2.1".pro]
    "5" = 0.45
    "10" = 0.90
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from takeone.core.accounts import MAX_CREDITS
from takeone.core.task import VideoTask
from takeone.edge.dialects.segmind.registry import MODE_OF_TIER

DEFAULT_PRICES: dict[str, dict[str, dict[str, float]]] = {
    "kling-2.1": {
        "std": {"5": 0.25, "10": 0.50},
        "pro": {"5": 0.45, "10": 0.90},
        "master": {"5": 1.40, "10": 2.80},
    },
    "kling-2.6": {
        "pro": {"5": 0.438, "10": 0.875, "5+audio": 0.875, "10+audio": 1.75},
    },
}


def price_key(task: VideoTask) -> str:
    return f"{task.seconds}{'+audio' if task.audio else ''}"


@dataclass(frozen=True)
class PriceTable:
    """Look up the price of a task sent to one slug.

    Example::

        PriceTable.default().price("kling-2.6", VideoTask(kind="t2v", seconds=10, audio=True))  # 1.75
    """

    table: dict[str, dict[str, dict[str, float]]]

    @classmethod
    def default(cls) -> PriceTable:
        return cls(table={e: {m: dict(p) for m, p in modes.items()} for e, modes in DEFAULT_PRICES.items()})

    @classmethod
    def load(cls, path: Path | None) -> PriceTable:
        """The defaults, overridden by the entries in ``path`` if given."""
        prices = cls.default()
        if path is None:
            return prices
        with path.open("rb") as f:
            overrides = tomllib.load(f)
        for endpoint, modes in overrides.items():
            if endpoint != "tier":  # the other dialects' table (edge/dialects/tier_prices.py)
                _merge(prices.table, endpoint, modes, path)
        return prices

    def price(self, slug: str, task: VideoTask) -> float:
        modes = self.table[slug]
        return modes[MODE_OF_TIER[task.tier]][price_key(task)]


def _merge(table: dict[str, dict[str, dict[str, float]]], endpoint: str, modes: Any, path: Path) -> None:
    if endpoint not in table or not isinstance(modes, dict):
        raise ValueError(f"{path}: unknown endpoint table {endpoint!r} (known: {', '.join(table)})")
    for mode, entries in modes.items():
        if mode not in table[endpoint] or not isinstance(entries, dict):
            raise ValueError(f"{path}: unknown mode {mode!r} for {endpoint}")
        for key, value in entries.items():
            if (key not in table[endpoint][mode] or not isinstance(value, (int, float))
                    or not math.isfinite(value) or not 0 <= value <= MAX_CREDITS):
                raise ValueError(f"{path}: bad price {endpoint}.{mode}.{key} = {value!r}")
            table[endpoint][mode][key] = float(value)
