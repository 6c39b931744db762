"""The contract between the worker runtime and a video model, free of torch.

A :class:`VideoModel` is loaded once per worker process and then called once per job. It
returns a :class:`Video` at the model's own generation size and frame rate; turning that into
the delivered MP4 (exact size, 24 fps, exact frame count) is the render step's job, so every
model family shares one delivery path.

A video's frames are either one whole uint8 array or a :class:`FrameStream`: chunks decoded
one at a time while the render step encodes the previous ones, with the total frame count
known up front (delivery needs it to spread the output frames before the first is written).
A stream is read once; decoding happens as it is read, so its errors (``JobCancelled``,
``OutOfMemory``, ``GenerationFailed``) surface from the render step.

Example::

    video = model.generate(task, recipe, progress=lambda done, total: None,
                           should_cancel=lambda: False)
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from takeone.core.task import VideoTask
from takeone.models.recipe import Recipe

Frames = npt.NDArray[np.uint8]
"""Video frames, uint8 ``[F, H, W, 3]`` RGB."""

Audio = npt.NDArray[np.float32]
"""An audio track, float32 ``[channels, samples]`` in -1..1."""

ProgressFn = Callable[[int, int], None]
"""Called after each denoising step with (steps done, total steps)."""

CancelFn = Callable[[], bool]
"""Polled after each denoising step (and between decoded chunks); True aborts with ``JobCancelled``."""

CHUNK_FRAMES = 8
"""How many frames :meth:`Video.chunks` hands over at a time from a whole array."""


@dataclass(frozen=True)
class FrameStream:
    """``count`` frames arriving as uint8 ``[n, H, W, 3]`` chunks, decoded as they are read.

    ``chunks`` must yield exactly ``count`` frames in order. Closing the stream (or reading it
    to the end) releases what the decoder holds; a stream can be read only once, and must be
    read or closed before the model's next ``generate`` (it decodes with the model's VAE).
    """

    count: int
    chunks: Generator[Frames, None, None] = field(repr=False)

    def __iter__(self) -> Iterator[Frames]:
        return self.chunks

    def close(self) -> None:
        """Stop decoding and free the decoder's state (a no-op once the stream is exhausted)."""
        self.chunks.close()


@dataclass(frozen=True)
class Video:
    """A generated clip: frames, audio and the seed that made them.

    ``frames`` is uint8 ``[F, H, W, 3]`` at ``fps``, whole or as a :class:`FrameStream`;
    ``audio`` is float32 ``[channels, samples]`` in -1..1 at ``sample_rate``, or ``None`` when
    the recipe asks for no audio track. ``seed`` is the seed actually used, so a client can
    reproduce a video it did not seed itself.

    Example::

        Video(frames, fps=24.0, audio=None, sample_rate=0, seed=7)  # a whole uint8 array
    """

    frames: Frames | FrameStream
    fps: float
    audio: Audio | None
    sample_rate: int
    seed: int

    @property
    def frame_count(self) -> int:
        """How many frames the clip has, known before any streamed frame is decoded."""
        return self.frames.count if isinstance(self.frames, FrameStream) else len(self.frames)

    def chunks(self) -> Generator[Frames, None, None]:
        """The frames in order as uint8 ``[n, H, W, 3]`` chunks (a stream is read, once)."""
        if isinstance(self.frames, FrameStream):
            return self.frames.chunks
        return _slices(self.frames, CHUNK_FRAMES)

    def close(self) -> None:
        """Drop a stream unread, freeing what its decoder holds (nothing to do for an array)."""
        if isinstance(self.frames, FrameStream):
            self.frames.close()

    def all_frames(self) -> Frames:
        """Every frame as one uint8 ``[F, H, W, 3]`` array (reads a stream whole: tests, tools)."""
        if not isinstance(self.frames, FrameStream):
            return self.frames
        with closing(self.frames):
            return np.concatenate(list(self.frames), axis=0)


class VideoModel(Protocol):
    """A loaded model that turns one task plus its recipe into a :class:`Video`."""

    def generate(
        self,
        task: VideoTask,
        recipe: Recipe,
        progress: ProgressFn,
        should_cancel: CancelFn,
    ) -> Video:
        """Generate one clip; raise ``JobCancelled``, ``OutOfMemory`` or ``GenerationFailed``."""
        ...


def _slices(frames: Frames, size: int) -> Generator[Frames, None, None]:
    """Views of ``size`` consecutive frames (no copies)."""
    for start in range(0, len(frames), size):
        yield frames[start : start + size]
