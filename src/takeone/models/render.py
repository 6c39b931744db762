"""Turn one request into a delivered MP4: recipe, generation, resampling, encoding.

Models return clips at their own generation size and frame rate; this is the single place
where a clip becomes what the client ordered: exactly ``output_frames`` frames at 24 fps,
exactly ``output_width`` x ``output_height``, with an audio track only when the recipe says
so. It needs no torch itself (the model does).

Example::

    info = render(model, get_profile("tiny"), request, Path("out.mp4"), progress, should_cancel)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from takeone.errors import JobCancelled
from takeone.generation import GenerationRequest
from takeone.media.encode import encode_mp4
from takeone.models.base import CancelFn, Frames, ProgressFn, Video, VideoModel
from takeone.models.profiles import Profile, Recipe


@dataclass(frozen=True)
class RenderInfo:
    """What was delivered, for the job record and the response metadata."""

    width: int
    height: int
    frames: int
    fps: int
    duration_s: float
    has_audio: bool
    seed: int
    inference_seconds: float


def render(
    model: VideoModel,
    profile: Profile,
    request: GenerationRequest,
    out_path: Path,
    progress: ProgressFn,
    should_cancel: CancelFn,
) -> RenderInfo:
    """Generate ``request`` with ``model`` and write the MP4 atomically to ``out_path``.

    Raises ``InvalidRequest`` when ``profile`` cannot serve the request (before any work),
    ``JobCancelled`` when ``should_cancel`` turns true (also after generation, so a cancelled
    job never delivers), and the model's ``OutOfMemory`` / ``GenerationFailed``.
    """
    recipe = profile.recipe_for(request)
    started = time.perf_counter()
    video = model.generate(request, recipe, progress, should_cancel)
    inference_seconds = time.perf_counter() - started
    if should_cancel():
        raise JobCancelled()
    has_audio = deliver(video, recipe, out_path)
    return RenderInfo(
        width=recipe.output_width,
        height=recipe.output_height,
        frames=recipe.output_frames,
        fps=recipe.output_fps,
        duration_s=recipe.output_duration_s,
        has_audio=has_audio,
        seed=video.seed,
        inference_seconds=inference_seconds,
    )


def deliver(video: Video, recipe: Recipe, out_path: Path) -> bool:
    """Write ``video`` as the recipe's output MP4; return whether it has an audio track."""
    frames = resample_frames(video.frames, recipe.output_frames)
    audio = video.audio if recipe.audio else None
    width, height = recipe.output_width, recipe.output_height
    encode_mp4(out_path, frames, recipe.output_fps, width, height, audio, video.sample_rate)
    return audio is not None


def resample_frames(frames: Frames, count: int) -> Frames:
    """Pick ``count`` frames by nearest neighbour in time, first and last frame kept in place.

    Keeping both ends matters for Kling 2.1's ``image_tail``: the last delivered frame is the
    last generated one. With equal counts the input is returned as is (no copy).
    """
    if len(frames) == count:
        return frames
    indices = np.rint(np.linspace(0, len(frames) - 1, count)).astype(np.intp)
    return frames[indices]
