"""Parts of the tiny LTX-2 model that only tests build alone."""

from __future__ import annotations

from typing import Any


def tiny_video_vae(timestep_conditioning: bool = False) -> Any:
    """The tiny video VAE alone (seeded as in ``build_tiny_components``); with
    ``timestep_conditioning`` its decoder takes a timestep and the decode draws noise."""
    from takeone.models.family_helpers import seeded
    from takeone.models.ltx2.tiny import SEED, _video_vae

    return seeded(SEED, lambda: _video_vae(timestep_conditioning))
