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
import numpy.typing as npt

from takeone.errors import JobCancelled
from takeone.generation import GenerationRequest
from takeone.media.encode import Mp4Writer
from takeone.models.base import CancelFn, ProgressFn, Video, VideoModel
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
    """Write ``video`` as the recipe's output MP4; return whether it has an audio track.

    Frames are resampled in time as repeat counts rather than as a copied clip: each
    generated frame is converted once and encoded as often as the output needs it.
    """
    audio = video.audio if recipe.audio else None
    channels = 0 if audio is None else audio.shape[0]
    width, height = recipe.output_width, recipe.output_height
    counts = repeat_counts(len(video.frames), recipe.output_frames)
    with Mp4Writer(out_path, recipe.output_fps, width, height, channels, video.sample_rate) as writer:
        for frame, count in zip(video.frames, counts):
            if count:
                writer.write_frame(frame, repeat=int(count))
        if audio is not None:
            writer.write_audio(audio)
    return audio is not None


def resample_indices(available: int, count: int) -> npt.NDArray[np.intp]:
    """The source index of each of ``count`` output frames (nondecreasing, ends kept)."""
    return np.rint(np.linspace(0, available - 1, count)).astype(np.intp)


def repeat_counts(available: int, count: int) -> npt.NDArray[np.intp]:
    """How often each of ``available`` frames is delivered when ``count`` are needed, in order.

    Nearest neighbour in time with both ends kept: for Kling 2.1's ``image_tail`` the last
    delivered frame must be the last generated one."""
    return np.bincount(resample_indices(available, count), minlength=available)
