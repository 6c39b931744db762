"""Price surcharges from the prices file: credits added to a job's price for the profile the
server runs and for each LoRA the job names, whatever dialect the job came in by.

The ``[surcharge]`` table of the prices file (``--prices FILE`` or ``prices.toml``)::

    [surcharge.profile]
    "ltx-2" = 0.20     # every job on a server running ltx-2
    [surcharge.lora]
    anime = 0.50       # every job that names the anime LoRA, at any scale

A LoRA the file does not name costs the surcharge its manifest carries (``takeone loras add
--surcharge``, 0 by default). The surcharges are part of the job's price: reserved at submit,
committed when the video is delivered, released when it is not.

Example::

    Surcharges.load(Path("prices.toml")).for_job("ltx-2", manifests)   # 0.7
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from takeone.core.accounts import MAX_CREDITS
from takeone.core.errors import InvalidRequest
from takeone.core.loras import LoraManifest, check_name
from takeone.models.registry import PROFILES

TABLE = "surcharge"


@dataclass(frozen=True)
class Surcharges:
    """Surcharges by profile name and by LoRA name (credits per job)."""

    profiles: dict[str, float] = field(default_factory=dict)
    loras: dict[str, float] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> Surcharges:
        """The ``[surcharge.profile]`` and ``[surcharge.lora]`` tables of ``path`` (none: no
        surcharges); a ``ValueError`` naming the entry for a bad one."""
        if path is None:
            return cls()
        with path.open("rb") as f:
            table = tomllib.load(f).get(TABLE, {})
        if not isinstance(table, dict) or set(table) - {"profile", "lora"}:
            raise ValueError(f"{path}: [{TABLE}] takes the tables [{TABLE}.profile] and [{TABLE}.lora]")
        return cls(_entries(path, "profile", table.get("profile", {}), _known_profile),
                   _entries(path, "lora", table.get("lora", {}), _lora_name))

    def of_lora(self, manifest: LoraManifest) -> float:
        """The file's surcharge for this LoRA, else its manifest's."""
        return self.loras.get(manifest.name, manifest.surcharge)

    def for_job(self, profile: str, manifests: Sequence[LoraManifest]) -> float:
        """What a job on ``profile`` with these LoRAs adds to its price."""
        return self.profiles.get(profile, 0.0) + sum(self.of_lora(m) for m in manifests)


def _known_profile(name: str) -> bool:
    return name in PROFILES


def _lora_name(name: str) -> bool:
    try:
        check_name(name)
    except InvalidRequest:
        return False
    return True


def _entries(path: Path, kind: str, entries: Any, valid_name: Callable[[str], bool]) -> dict[str, float]:
    if not isinstance(entries, dict):
        raise ValueError(f"{path}: [{TABLE}.{kind}] must be a table of names and credits")
    out = {}
    for name, value in entries.items():
        if not valid_name(name):
            known = f" (known: {', '.join(PROFILES)})" if kind == "profile" else ""
            raise ValueError(f"{path}: {TABLE}.{kind}.{name}: no such {kind} name{known}")
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or not 0 <= value <= MAX_CREDITS):
            raise ValueError(f"{path}: bad surcharge {TABLE}.{kind}.{name} = {value!r}"
                             " (credits, 0 or more)")
        out[name] = float(value)
    return out
