"""The ancestral (SDE) Euler step the reference samples LTX-2.5's distilled stage 1 with.

Each step moves deterministically from ``sigma`` down to ``sigma_down = sigma_next**2 / sigma``
(below the next noise level), then adds fresh noise to come back up to ``sigma_next``,
rescaling the signal so the step stays variance preserving (rectified flow: ``alpha = 1 -
sigma``). This is eta 1 of the reference's ancestral step; diffusers' own
``stochastic_sampling`` re-noises all the way from the denoised sample instead, which is a
different sampler. The last step (to sigma 0) returns the denoised sample. The noise comes
from a CPU generator seeded with ``noise_seed`` (the job's seed plus an offset), reset
whenever the timesteps are set, so a seed gives the same video on any device.

Example::

    scheduler = AncestralFlowMatchScheduler.from_config(fixed.config)
    scheduler.noise_seed = seed + NOISE_SEED_OFFSET
"""

from __future__ import annotations

from typing import Any

import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from diffusers.schedulers.scheduling_flow_match_euler_discrete import FlowMatchEulerDiscreteSchedulerOutput

# The reference draws the ancestral noise from the seed plus this offset.
NOISE_SEED_OFFSET = 10_000
_Base: Any = FlowMatchEulerDiscreteScheduler  # untyped: subclass through Any


class AncestralFlowMatchScheduler(_Base):  # type: ignore[misc]
    """``FlowMatchEulerDiscreteScheduler`` whose ``step`` is the ancestral Euler step."""

    noise_seed: int = 0
    # A batch's per-row seeds (None: one job, ``noise_seed``): row i draws from its own stream,
    # so a job's noise does not depend on its batch-mates.
    noise_seeds: list[int] | None = None

    def set_timesteps(
        self,
        num_inference_steps: int | None = None,
        device: str | torch.device | None = None,
        sigmas: list[float] | None = None,
        mu: float | None = None,
        timesteps: list[float] | None = None,
    ) -> None:
        # Spelled out: the pipelines check this signature for ``sigmas`` before passing them.
        self._noise: torch.Generator | None = None
        self._row_noise: list[torch.Generator] | None = None
        super().set_timesteps(num_inference_steps, device, sigmas, mu, timesteps)

    def step(self, model_output: torch.Tensor, timestep: Any, sample: torch.Tensor, *args: Any,
             return_dict: bool = True, **kwargs: Any) -> Any:
        if self.step_index is None:
            self._init_step_index(timestep)
        sigma = self.sigmas[self.step_index].float()
        sigma_next = self.sigmas[self.step_index + 1].float()
        x = sample.float()
        denoised = x - sigma * model_output.float()
        if sigma_next == 0:
            result = denoised
        else:
            sigma_down = sigma_next * sigma_next / sigma
            ratio = sigma_down / sigma
            moved = ratio * x + (1.0 - ratio) * denoised
            alpha_next, alpha_down = 1.0 - sigma_next, 1.0 - sigma_down
            renoise = (sigma_next**2 - sigma_down**2 * alpha_next**2 / alpha_down**2).clamp(min=0).sqrt()
            result = (alpha_next / alpha_down) * moved + self._draw(sample) * renoise
        self._step_index += 1
        prev = result.to(model_output.dtype)
        return FlowMatchEulerDiscreteSchedulerOutput(prev_sample=prev) if return_dict else (prev,)

    def _draw(self, like: torch.Tensor) -> torch.Tensor:
        if self.noise_seeds is not None:
            return self._draw_rows(like)
        if getattr(self, "_noise", None) is None:
            self._noise = torch.Generator(device="cpu").manual_seed(self.noise_seed)
        noise = torch.randn(like.shape, generator=self._noise, dtype=torch.float32)
        return noise.to(like.device)

    def _draw_rows(self, like: torch.Tensor) -> torch.Tensor:
        """One row per batch job, each from its own seed's stream (as that job alone draws)."""
        assert self.noise_seeds is not None and len(self.noise_seeds) == like.shape[0]
        if getattr(self, "_row_noise", None) is None:
            self._row_noise = [torch.Generator(device="cpu").manual_seed(seed) for seed in self.noise_seeds]
        assert self._row_noise is not None
        rows = [torch.randn((1, *like.shape[1:]), generator=gen, dtype=torch.float32) for gen in self._row_noise]
        return torch.cat(rows).to(like.device)
