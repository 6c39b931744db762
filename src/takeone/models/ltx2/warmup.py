"""Which LTX-2 code paths to warm up at start-up, and at what size (torch-free).

Compilation, cuDNN autotuning and lazy CUDA set-up happen on a path's first run; the worker
runs each distinct path of its profile once at a tiny size before it reports ready, so the
first user does not pay for them.

Example::

    for recipe in warmup_recipes(profile):
        small = shrunk(recipe, 128, 128, 9)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from takeone.core.task import Tier, VideoTask, kind_for
from takeone.models.ltx2.recipe import ltx2_sampling
from takeone.models.recipe import Profile, Recipe


def warmup_recipes(profile: Profile) -> tuple[Recipe, ...]:
    """One recipe per distinct code path of ``profile``: pipeline kind, stage-1 transformer and
    guidance terms (each compiles its own graphs), at full size (see :func:`shrunk`). LTX-2
    always generates audio, so the audio flag adds no path."""
    unique: dict[tuple[Any, ...], Recipe] = {}
    for tier in profile.qualities:
        for task in _warmup_tasks(tier):
            recipe = profile.recipe_for(task)
            unique.setdefault(_code_path(recipe), recipe)
    return tuple(unique.values())


def _warmup_tasks(tier: Tier) -> tuple[VideoTask, ...]:
    return (
        VideoTask(kind="t2v", tier=tier),
        VideoTask(kind="i2v", tier=tier, first_frame="first.png"),
        VideoTask(kind="flf2v", tier=tier, first_frame="first.png", last_frame="last.png"),
    )


def _code_path(recipe: Recipe) -> tuple[Any, ...]:
    sampling = ltx2_sampling(recipe)
    guided = (recipe.guidance_scale > 1, sampling.stg_scale > 0, sampling.modality_scale > 1)
    return (recipe.pipeline, sampling.stage1_transformer, sampling.two_stage, guided)


def warmup_sizes(spatial: int, temporal: int, compiled: bool) -> list[tuple[int, int, int]]:
    """``(width, height, frames)`` to warm up at: the smallest size with 2x2 stage-1 latents
    (no dimension of 1, which dynamo would specialise on) and, when compiled, a second size
    differing in every dimension so that dynamo marks them dynamic before real traffic."""
    sizes = [(4 * spatial, 4 * spatial, temporal + 1)]
    if compiled:
        sizes.append((6 * spatial, 4 * spatial, 2 * temporal + 1))
    return sizes


def shrunk(recipe: Recipe, width: int, height: int, frames: int) -> Recipe:
    """``recipe`` at ``width`` x ``height`` x ``frames`` with at most 2 + 1 steps: the same
    pipelines, guidance terms and stages, at a cost of a fraction of a second."""
    sampling = ltx2_sampling(recipe)
    return dataclasses.replace(
        recipe,
        gen_width=width,
        gen_height=height,
        gen_frames=frames,
        steps=min(recipe.steps, 2),
        vae_tiling=False,
        sampling=dataclasses.replace(
            sampling,
            sigmas=sampling.sigmas[:2] if sampling.sigmas else None,
            stage2_steps=min(sampling.stage2_steps, 1),
            stage2_sigmas=sampling.stage2_sigmas[:1] if sampling.stage2_sigmas else None,
        ),
    )


def warmup_task(recipe: Recipe, image: str) -> VideoTask:
    """A task that ``recipe``'s pipeline accepts, conditioned on the image file ``image``."""
    first = image if recipe.pipeline in ("i2v", "condition") else None
    last = image if recipe.pipeline == "condition" else None
    return VideoTask(kind=kind_for(first, last), prompt="warm-up", first_frame=first,
                     last_frame=last, seed=0)
