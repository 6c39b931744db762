"""The contract between the worker runtime and a video model, free of torch.

A :class:`VideoModel` is loaded once per worker process and then called once per job. It
returns a :class:`Video` at the model's own generation size and frame rate; turning that into
the delivered MP4 (exact size, 24 fps, exact frame count) is the render step's job, so every
model family shares one delivery path.

Example::

    video = model.generate(request, recipe, progress=lambda done, total: None,
                           should_cancel=lambda: False)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from takeone.generation import GenerationRequest
from takeone.models.profiles import Recipe

Frames = npt.NDArray[np.uint8]
"""Video frames, uint8 ``[F, H, W, 3]`` RGB."""

Audio = npt.NDArray[np.float32]
"""An audio track, float32 ``[channels, samples]`` in -1..1."""

ProgressFn = Callable[[int, int], None]
"""Called after each denoising step with (steps done, total steps)."""

CancelFn = Callable[[], bool]
"""Polled after each denoising step; returning True aborts the job with ``JobCancelled``."""


@dataclass(frozen=True)
class Video:
    """A generated clip as plain arrays.

    ``frames`` is uint8 ``[F, H, W, 3]`` at ``fps``; ``audio`` is float32 ``[channels, samples]``
    in -1..1 at ``sample_rate``, or ``None`` when the recipe asks for no audio track. ``seed``
    is the seed actually used, so a client can reproduce a video it did not seed itself.
    """

    frames: Frames
    fps: float
    audio: Audio | None
    sample_rate: int
    seed: int


class VideoModel(Protocol):
    """A loaded model that turns one request plus its recipe into a :class:`Video`."""

    def generate(
        self,
        request: GenerationRequest,
        recipe: Recipe,
        progress: ProgressFn,
        should_cancel: CancelFn,
    ) -> Video:
        """Generate one clip; raise ``JobCancelled``, ``OutOfMemory`` or ``GenerationFailed``."""
        ...
