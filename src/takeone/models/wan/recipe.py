"""Wan's part of a recipe: which expert denoises when (torch-free).

Example::

    WanSampling(boundary_ratio=0.9)   # two experts, switch at t = 900
    WanSampling(boundary_ratio=0.875, expert_guidance=(4.0, 3.0), flow_shift=12.0)  # Wan's T2V
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from takeone.models.recipe import Recipe, Sampling


@dataclass(frozen=True)
class WanSampling(Sampling):
    """``boundary_ratio``: two-expert checkpoints (A14B) switch from ``transformer`` to
    ``transformer_2`` below this fraction of the timesteps; ``None`` keeps the checkpoint's
    own setting (one-expert checkpoints have none).

    ``expert_guidance``: the (high-noise, low-noise) experts' guidance scales Wan's reference
    uses, reached when the recipe's ``guidance_scale`` is :data:`REFERENCE_GUIDANCE` (a task's
    default guidance, 0.5, on the 1..5 range); other values scale both alike (see
    :func:`expert_guidance`). ``None``: one scale for every expert. ``flow_shift``: the flow
    scheduler's shift (``None``: the checkpoint scheduler's own)."""

    family: ClassVar[str] = "wan"
    boundary_ratio: float | None = None
    expert_guidance: tuple[float, float] | None = None
    flow_shift: float | None = None


REFERENCE_GUIDANCE = 3.0


def expert_guidance(recipe: Recipe) -> tuple[float, float | None]:
    """(``guidance_scale``, ``guidance_scale_2``) for the pipeline: the high-noise and low-noise
    experts' scales, ``1 + (reference - 1) * (g - 1) / (REFERENCE_GUIDANCE - 1)`` for the recipe's
    scale ``g`` (so 1 still turns guidance off), or ``(g, None)`` without per-expert scales."""
    sampling = wan_sampling(recipe)
    if sampling.expert_guidance is None:
        return recipe.guidance_scale, None
    gain = (recipe.guidance_scale - 1.0) / (REFERENCE_GUIDANCE - 1.0)
    high, low = (round(1.0 + (reference - 1.0) * gain, 4) for reference in sampling.expert_guidance)
    return high, low


def wan_sampling(recipe: Recipe) -> WanSampling:
    """The recipe's Wan part; ``TypeError`` for another family's recipe."""
    if not isinstance(recipe.sampling, WanSampling):
        raise TypeError(f"not a Wan recipe: {recipe.family} sampling")
    return recipe.sampling
