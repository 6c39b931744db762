"""Load the :class:`~takeone.models.base.VideoModel` a profile names, once per worker process.

The profile's ``family`` picks the loader through :mod:`takeone.models.registry`; only that
family's code (and so torch and diffusers) is imported.

Example::

    model = load_video_model("tiny")            # built in-process, no download
    model = load_video_model("tiny", "cpu")
"""

from __future__ import annotations

from pathlib import Path

import torch

from takeone.models.base import VideoModel
from takeone.models.recipe import Profile
from takeone.models.registry import family_loader, get_profile


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
    model: VideoModel = family_loader(profile.family)(profile, target, weights, offload)
    return model


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
