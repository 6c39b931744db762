"""Wan's part of a recipe: which expert denoises when (torch-free).

Example::

    WanSampling(boundary_ratio=0.9)   # two experts, switch at t = 900
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from takeone.models.recipe import Recipe, Sampling


@dataclass(frozen=True)
class WanSampling(Sampling):
    """``boundary_ratio``: two-expert checkpoints (A14B) switch from ``transformer`` to
    ``transformer_2`` below this fraction of the timesteps; ``None`` keeps the checkpoint's
    own setting (one-expert checkpoints have none)."""

    family: ClassVar[str] = "wan"
    boundary_ratio: float | None = None


def wan_sampling(recipe: Recipe) -> WanSampling:
    """The recipe's Wan part; ``TypeError`` for another family's recipe."""
    if not isinstance(recipe.sampling, WanSampling):
        raise TypeError(f"not a Wan recipe: {recipe.family} sampling")
    return recipe.sampling
