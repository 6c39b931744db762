"""Build the ``tiny`` profile's model: LTX-2's pipelines over tiny random weights, in-process.

``weights`` may name a diffusers LTX-2 pipeline folder instead (saved tiny weights, loaded
offline through ``from_pretrained``); tiny weights stay float32 everywhere: they are for
tests, not speed.

Example::

    model = load_model(TINY, torch.device("cpu"))
"""

from __future__ import annotations

from pathlib import Path

import torch

from takeone.models.ltx2.model import Ltx2Model
from takeone.models.ltx2.tiny import build_tiny_components
from takeone.models.recipe import Profile
from takeone.models.tiny.profile import BUILTIN_WEIGHTS

BUILTIN_PREFIX = "builtin:"


def _is_pipeline(weights: str | Path | None) -> bool:
    """A saved diffusers pipeline (or a built-in name); a weights root shared with the other
    profiles (``--weights``, ``TAKEONE_WEIGHTS``) holds none of tiny's, so it builds its own."""
    if weights is None:
        return False
    return str(weights).startswith(BUILTIN_PREFIX) or (Path(weights) / "model_index.json").exists()


def load_model(
    profile: Profile, device: torch.device, weights: str | Path | None = None, offload: str | None = None
) -> Ltx2Model:
    """The tiny model on ``device`` (``offload`` does not apply: it is a few MB)."""
    del offload
    source = str(weights) if _is_pipeline(weights) else profile.weights
    if source == BUILTIN_WEIGHTS:
        return Ltx2Model(build_tiny_components(), device)
    if source.startswith(BUILTIN_PREFIX):
        raise ValueError(f"profile {profile.name!r} names unknown built-in weights {source!r}")
    return Ltx2Model.from_pretrained(source, device, torch.float32)
