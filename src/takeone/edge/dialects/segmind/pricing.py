"""The Segmind price table: credits per video by slug, mode, seconds and audio.

Prices scale per second: each slug and mode has a rate per second (``per_second``, and
``per_second+audio`` where the route makes sound); an entry for one duration (``"5"``,
``"10+audio"``) overrides the rate for that duration. The defaults follow Segmind's pages
(Kling 2.6: 0.438 for 5 s without audio up to 1.75 for 10 s with audio; Kling 2.5 Turbo
0.44 / 0.88; Kling 3 Standard 0.504 for 3 s silent up to 8.40 for 15 s with audio). A
multi-shot video is priced by its total seconds. An operator overrides any entry in a TOML
file::

    ["kling-2.6".pro]
    "5" = 0.438            # 5 s without audio
    per_second = 0.08      # any other duration without audio

    ["kling-3-pro-text2video".pro]
    "per_second+audio" = 0.70
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
from takeone.edge.dialects.tier_prices import RATE, RATE_AUDIO, price_of, valid_key

DEFAULT_PRICES: dict[str, dict[str, dict[str, float]]] = {
    "kling-2.1": {
        "std": {RATE: 0.05},
        "pro": {RATE: 0.09},
        "master": {RATE: 0.28},
    },
    "kling-2.6": {
        "pro": {RATE: 0.0875, RATE_AUDIO: 0.175, "5": 0.438},  # Segmind lists 0.438 for 5 s
    },
    "kling-2.5-turbo": {
        "pro": {RATE: 0.088},
    },
    # Segmind lists 0.504 (3 s, silent) to 8.40 (15 s with audio) for Standard; Pro's prices
    # could not be read: Standard's times 4/3 (Kling's own pro/std ratio), rounded.
    "kling-3-standard-text2video": {
        "std": {RATE: 0.168, RATE_AUDIO: 0.56},
    },
    "kling-3-pro-text2video": {
        "pro": {RATE: 0.224, RATE_AUDIO: 0.75},
    },
}


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
            if endpoint not in ("tier", "surcharge"):  # other dialects' table; edge/surcharges.py
                _merge(prices.table, endpoint, modes, path)
        return prices

    def price(self, slug: str, task: VideoTask) -> float:
        return price_of(self.table[slug][MODE_OF_TIER[task.tier]], task)


def _merge(table: dict[str, dict[str, dict[str, float]]], endpoint: str, modes: Any, path: Path) -> None:
    if endpoint not in table or not isinstance(modes, dict):
        raise ValueError(f"{path}: unknown endpoint table {endpoint!r} (known: {', '.join(table)})")
    for mode, entries in modes.items():
        if mode not in table[endpoint] or not isinstance(entries, dict):
            raise ValueError(f"{path}: unknown mode {mode!r} for {endpoint}")
        for key, value in entries.items():
            if (not valid_key(key) or not isinstance(value, (int, float))
                    or not math.isfinite(value) or not 0 <= value <= MAX_CREDITS):
                raise ValueError(f"{path}: bad price {endpoint}.{mode}.{key} = {value!r}")
            table[endpoint][mode][key] = float(value)
