"""LTX-2's part of a recipe: stages, schedules and guidance terms (torch-free).

Example::

    Ltx2Sampling(two_stage=True, sigmas=DISTILLED_SIGMAS, stage2_steps=3)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from takeone.models.recipe import Recipe, Sampling


@dataclass(frozen=True)
class Ltx2Sampling(Sampling):
    """How the LTX-2 pipelines sample one recipe. The defaults are plain one-stage sampling
    (no STG, no modality guidance, no rescale, the pipeline's own sigmas).

    - ``audio_guidance_scale``: the audio branch's CFG (``None``: the video's).
    - ``guidance_rescale``, ``stg_scale`` on ``stg_blocks``, ``modality_scale``: the guided
      stage's other terms (the audio branch shares them).
    - ``sigmas``: an explicit schedule, used exactly as given (no shift).
    - ``stage1_sampler``: ``euler`` (the pipelines' deterministic flow-matching step) or
      ``ancestral``: each step lands below the next sigma and renoises back up to it (eta 1),
      as the reference samples the distilled stage 1 since LTX-2.5.
    - Two-stage: stage 1 at half the generation size, a 2x latent upsample, then
      ``stage2_steps`` steps at the generation size with ``stage2_sigmas``, re-noised to
      ``stage2_noise_scale``. ``stage1_transformer`` names the component that runs stage 1
      (or the only stage); stage 2 always runs ``transformer``.
    """

    family: ClassVar[str] = "ltx2"
    audio_guidance_scale: float | None = None
    guidance_rescale: float = 0.0
    stg_scale: float = 0.0
    stg_blocks: tuple[int, ...] = ()
    modality_scale: float = 1.0
    sigmas: tuple[float, ...] | None = None
    use_cross_timestep: bool = True
    stage1_sampler: str = "euler"
    two_stage: bool = False
    stage1_transformer: str = "transformer"
    stage2_steps: int = 0
    stage2_sigmas: tuple[float, ...] | None = None
    stage2_noise_scale: float = 0.0

    def stages(self, steps: int) -> tuple[int, ...]:
        return (steps, self.stage2_steps) if self.two_stage else (steps,)

    @property
    def stage1_divisor(self) -> int:
        return 2 if self.two_stage else 1

    def guided(self, guidance_scale: float) -> bool:
        """Whether stage 1 runs classifier-free guidance (and so needs negative embeddings)."""
        return max(guidance_scale, self.audio_guidance_scale or 0.0) > 1.0


# The reference scheduler's shift is a line through (1,024 tokens, 0.95) and (4,096, 2.05); its
# full-model pipelines evaluate it at 4,096 tokens whatever the clip's real size, then stretch
# the schedule so that its last non-zero sigma is 0.1.
SHIFT_ANCHORS = ((1024, 0.95), (4096, 2.05))
REFERENCE_TOKENS = 4096
TERMINAL_SIGMA = 0.1


def reference_sigmas(steps: int, tokens: int = REFERENCE_TOKENS, terminal: float = TERMINAL_SIGMA) -> tuple[float, ...]:
    """The reference's full-model schedule: ``steps`` sigmas from 1 down to ``terminal``
    (the sampler's final 0 is implied), shifted as for ``tokens`` latent tokens.

    Diffusers' pipelines instead shift by the clip's real token count: at the 1080p stage-1
    size that is a shift of 3.51 instead of 2.05, most steps at high noise, then a jump.
    """
    (x1, y1), (x2, y2) = SHIFT_ANCHORS
    shift = y1 + (tokens - x1) * (y2 - y1) / (x2 - x1)
    times = [1.0 - index / steps for index in range(steps)]
    shifted = [math.exp(shift) / (math.exp(shift) + (1.0 / t - 1.0)) for t in times]
    scale = (1.0 - shifted[-1]) / (1.0 - terminal)
    return tuple(1.0 - (1.0 - sigma) / scale for sigma in shifted)


def ltx2_sampling(recipe: Recipe) -> Ltx2Sampling:
    """The recipe's LTX-2 part; ``TypeError`` for another family's recipe."""
    if not isinstance(recipe.sampling, Ltx2Sampling):
        raise TypeError(f"not an LTX-2 recipe: {recipe.family} sampling")
    return recipe.sampling
