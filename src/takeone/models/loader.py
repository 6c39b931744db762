"""Load the :class:`~takeone.models.base.VideoModel` a profile names, once per worker process.

Example::

    model = load_video_model("tiny")            # built in-process, no download
    model = load_video_model("tiny", "cpu")
"""

from __future__ import annotations

from pathlib import Path

import torch

from takeone.models.base import VideoModel
from takeone.models.ltx2 import Ltx2Model
from takeone.models.ltx2_load import load_ltx2
from takeone.models.profiles import Profile, get_profile
from takeone.models.tiny import build_tiny_components
from takeone.models.wan import load_wan_model

BUILTIN_PREFIX = "builtin:"


def load_video_model(
    profile_name: str | Profile,
    device: str | None = None,
    weights: str | Path | None = None,
    offload: str | None = None,
) -> VideoModel:
    """Load the model of profile ``profile_name`` onto ``device`` (default: cuda if present, else cpu).

    ``weights`` overrides the profile's weights source, e.g. a local directory holding a
    pre-downloaded diffusers snapshot with the same layout (for profiles with
    ``sources``, a folder as :mod:`takeone.models.weights` describes). ``offload``
    ("none", "auto", "group") overrides the profile's GPU offloading. A ``Profile`` may be
    passed instead of a name (tests pass scaled ones). Raises ``ValueError`` for an unknown
    profile or family, ``WeightsMissing`` and ``InsufficientGpuMemory`` before loading.
    """
    profile = get_profile(profile_name) if isinstance(profile_name, str) else profile_name
    target = torch.device(device) if device else default_device()
    source = str(weights) if weights is not None else profile.weights
    if profile.family == "wan":
        # Three checkpoints: ``weights`` overrides them as a folder holding all three.
        return load_wan_model(profile, weights, target, offload)
    if profile.family != "ltx2":
        raise ValueError(f"profile {profile.name!r} has unsupported model family {profile.family!r}")
    if profile.sources:
        return load_ltx2(profile, target, Path(weights) if weights is not None else None, offload)
    return _load_ltx2(profile, source, target)


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def default_dtype(device: torch.device) -> torch.dtype:
    """bfloat16 on GPUs (what LTX-2 is trained and served in), float32 on CPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _load_ltx2(profile: Profile, source: str, device: torch.device) -> Ltx2Model:
    if source == f"{BUILTIN_PREFIX}tiny-ltx2":
        # Tiny random weights stay float32 everywhere: they are for tests, not speed.
        return Ltx2Model(build_tiny_components(), device)
    if source.startswith(BUILTIN_PREFIX):
        raise ValueError(f"profile {profile.name!r} names unknown built-in weights {source!r}")
    return Ltx2Model.from_pretrained(source, device, default_dtype(device))
