"""Jobs persisted by takeone 0.1 (before the neutral task) in today's task shape.

Version 0.1 stored the Segmind request itself (mode, duration, cfg_scale, image paths under
the data folder). Converting on upgrade means a job accepted before the upgrade still runs.
"""

from __future__ import annotations

from pathlib import PurePath
from typing import Any

from takeone.core.task import kind_for

_TIERS = {"std": "fast", "pro": "standard", "master": "quality"}


def legacy_task(job_id: str, data: dict[str, Any]) -> dict[str, Any]:
    first = _key(job_id, data.get("image"))
    last = _key(job_id, data.get("image_tail"))
    return {
        "kind": kind_for(first, last), "tier": _TIERS.get(data.get("mode", "pro"), "standard"),
        "seconds": int(data.get("duration", 5)), "aspect_ratio": data.get("aspect_ratio", "16:9"),
        "size": None, "fps": None, "audio": bool(data.get("generate_audio", False)),
        "seed": data.get("seed"), "prompt": data.get("prompt", ""),
        "negative_prompt": data.get("negative_prompt", ""),
        "guidance": float(data.get("cfg_scale", 0.5)), "first_frame": first, "last_frame": last,
    }


def _key(job_id: str, path: str | None) -> str | None:
    """0.1 saved inputs as ``<data>/inputs/<job id>/<field>.png``: the same blob key today."""
    return None if path is None else f"inputs/{job_id}/{PurePath(path).name}"
