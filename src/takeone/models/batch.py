"""Which jobs may share one denoising run, torch-free (the claim side reads it).

A batched run has one recipe shape: the same profile, tier, pipeline, generation and output
size, frame count, audio on or off and (for guided recipes) whether guidance runs at all.
What may differ per job is the prompt, the negative prompt, the seed, the guidance scale and
the conditioning images: :func:`batch_key` is the recipe with those cleared, so two jobs
whose keys are equal can share a run. The LoRA set (names and scales) is part of the key too:
a run has one set of adapters active.

A family that cannot batch a case says so through :data:`BATCHABLE`: the pipelines (task
kinds) it runs batched, per family, and whether a two-stage recipe of that kind can
(LTX-2's image-to-video stage 2 runs its condition pipeline, which takes one set of
keyframes for the whole batch, so only single-stage image to video batches).

Example::

    batch_key(TINY.recipe_for(task)) == batch_key(TINY.recipe_for(other))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable, Mapping
from typing import Final

from takeone.core.errors import TakeoneError
from takeone.core.task import VideoTask
from takeone.models.recipe import Profile, Recipe

BATCHABLE: Final[Mapping[str, Mapping[str, bool]]] = {
    # family -> pipeline -> whether a two-stage recipe of it batches too
    "tiny": {"t2v": True, "i2v": False},
    "ltx2": {"t2v": True, "i2v": False},
    # Wan 2.2's pipelines take one guidance scale per call for each expert and no per-row
    # negative prompts once guidance is off: not batched yet, every Wan job runs alone.
    "wan": {},
}
# The tiny profile batches when asked (``--max-batch``) but not by default: it serves tests and
# tries, where one job at a time keeps queue positions and timings simple to read.
DEFAULT_MAX_BATCH: Final[Mapping[str, int]] = {"tiny": 1, "ltx2": 4, "wan": 1}


def profile_max_batch(profile: Profile) -> int:
    """The profile's default batch limit (1: its family does not batch)."""
    return DEFAULT_MAX_BATCH.get(profile.family, 1)


def can_batch(recipe: Recipe, family: str) -> bool:
    """Whether ``recipe`` may run with batch-mates in ``family``'s model."""
    kinds = BATCHABLE.get(family, {})
    if recipe.pipeline not in kinds:
        return False
    two_stage = len(recipe.stage_steps) > 1
    return kinds[recipe.pipeline] or not two_stage


def batch_key(recipe: Recipe, guided: bool) -> Recipe:
    """The recipe with what may differ per job cleared (``guided``: whether guidance runs)."""
    return dataclasses.replace(recipe, guidance_scale=2.0 if guided else 1.0, negative_prompt="")


def job_batch_key(profile: Profile, task: VideoTask) -> Hashable | None:
    """What ``task`` may share a run with on ``profile``; None when it runs alone (a multi-shot
    task, a case the family cannot batch, or a task the profile refuses: it fails alone)."""
    if task.shots:
        return None
    try:
        recipe = profile.recipe_for(task)
    except TakeoneError:
        return None
    if not can_batch(recipe, profile.family):
        return None
    guided = getattr(recipe.sampling, "guided", None)
    runs_guidance = guided(recipe.guidance_scale) if callable(guided) else recipe.guidance_scale > 1.0
    loras = tuple((use.name, use.scale) for use in task.loras)  # one LoRA set per run
    return (profile.name, batch_key(recipe, bool(runs_guidance)), loras)


def batching_line(profile: Profile) -> str:
    """What ``takeone profiles`` says of the profile's batching: its limit and what it batches."""
    limit = profile_max_batch(profile)
    kinds = BATCHABLE.get(profile.family, {})
    if not kinds:
        return "batching: none (every job runs alone; --max-batch does not apply)"
    cases = ", ".join(kind if two_stage else f"{kind} (single-stage tiers)" for kind, two_stage in kinds.items())
    default = f"default --max-batch {limit}" + (" (off)" if limit <= 1 else "")
    return f"batching: {cases} in one run; {default}; other cases run alone"
