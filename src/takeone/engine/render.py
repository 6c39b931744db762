"""Turn one task into a delivered MP4: recipe, generation, resampling, encoding.

Models return clips at their own generation size and frame rate; this is the single place
where a clip becomes what the client ordered: exactly ``output_frames`` frames at 24 fps,
exactly ``output_width`` x ``output_height``, with an audio track only when the recipe says
so. It needs no torch itself (the model does).

Encoding overlaps decoding: the caller's thread reads the video's frame chunks (a streamed
video decodes each as it is read) and hands them through a bounded queue to an encoder
thread, so x264 works on one chunk while the model decodes the next, and at most a few
chunks exist at once. A failure on either side stops the other, removes the partial file and
re-raises the original error; both threads are done when :func:`deliver` returns or raises.

Example::

    info = render(model, get_profile("tiny"), task, Path("out.mp4"), progress, should_cancel)
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from takeone.core.errors import GenerationFailed, JobCancelled
from takeone.core.task import VideoTask
from takeone.media.encode import Mp4Writer
from takeone.models.base import Audio, CancelFn, Frames, ProgressFn, Video, VideoModel
from takeone.models.recipe import Profile, Recipe

QUEUE_CHUNKS: Final = 2
"""Decoded chunks waiting for the encoder at most: the decoder runs this far ahead."""


@dataclass(frozen=True)
class RenderInfo:
    """What was delivered, for the job record and the response metadata.

    ``generate_seconds`` is the denoising (and the small audio decode); ``deliver_seconds`` is
    the video decode and the MP4 encode, which overlap.
    """

    width: int
    height: int
    frames: int
    fps: int
    duration_s: float
    has_audio: bool
    seed: int
    generate_seconds: float
    deliver_seconds: float
    steps: int = 0  # the denoising steps the model reported (0: it reported none)


def render(
    model: VideoModel,
    profile: Profile,
    task: VideoTask,
    out_path: Path,
    progress: ProgressFn,
    should_cancel: CancelFn,
) -> RenderInfo:
    """Generate ``task`` with ``model`` and write the MP4 atomically to ``out_path``.

    ``progress`` sees the model's denoising steps plus one last unit for the decode and the
    MP4, so it reaches its total only once the file is written (a long 1080p decode does not
    sit at 100%). Raises ``InvalidRequest`` when ``profile`` cannot serve the task (before any work),
    ``JobCancelled`` when ``should_cancel`` turns true (also after generation, so a cancelled
    job never delivers), and the model's ``OutOfMemory`` / ``GenerationFailed``.
    """
    if task.shots:
        return render_shots(model, profile, task, out_path, progress, should_cancel)
    recipe = profile.recipe_for(task)
    steps = _StepsThenDelivery(progress)
    started = time.perf_counter()
    video = model.generate(task, recipe, steps.report, should_cancel)
    generated = time.perf_counter()
    if should_cancel():
        video.close()
        raise JobCancelled()
    has_audio = deliver(video, recipe, out_path)
    steps.delivered()
    return RenderInfo(
        width=recipe.output_width,
        height=recipe.output_height,
        frames=recipe.output_frames,
        fps=recipe.output_fps,
        duration_s=recipe.output_duration_s,
        has_audio=has_audio,
        seed=video.seed,
        generate_seconds=round(generated - started, 3),
        deliver_seconds=round(time.perf_counter() - generated, 3),
        steps=steps.total,
    )


def render_shots(
    model: VideoModel,
    profile: Profile,
    task: VideoTask,
    out_path: Path,
    progress: ProgressFn,
    should_cancel: CancelFn,
) -> RenderInfo:
    """Render a multi-shot task as one continuous MP4, shot after shot.

    Each shot after the first is image to video from the previous shot's last generated
    frame (written beside ``out_path``), with the first shot's seed, and delivers its own
    ``seconds * fps`` frames after that shared frame, so the clip has ``seconds * fps + 1``
    frames for the shots' total, as a single shot of that length would. The audio is one track:
    each shot's sound cut to exactly its own frames and joined without a gap. Progress counts
    every shot's denoising steps in order, then one unit for finishing the file.
    """
    shots = task.shot_tasks()
    recipes = profile.recipes_for(task)  # every shot checked before any work
    total = sum(recipe.total_steps for recipe in recipes)
    first = recipes[0]
    fps = first.output_fps
    seed, done_before, frames_out, generate_s = task.seed, 0, 0, 0.0
    audio_parts: list[Audio] = []
    encoder: _Encoder | None = None
    started = time.perf_counter()
    try:
        for index, (shot, recipe) in enumerate(zip(shots, recipes)):
            if index:
                shot = dataclasses.replace(shot, first_frame=str(out_path.parent / f"shot-{index - 1}-last.png"),
                                           seed=seed)

            def report(done: int, _total: int, before: int = done_before) -> None:
                progress(before + done, total + 1)

            began = time.perf_counter()
            video = model.generate(shot, recipe, report, should_cancel)
            generate_s += time.perf_counter() - began
            seed = video.seed if seed is None else seed
            if should_cancel():
                video.close()
                raise JobCancelled()
            if encoder is None:
                channels = 0 if not recipe.audio or video.audio is None else video.audio.shape[0]
                writer = Mp4Writer(out_path, fps, first.output_width, first.output_height, channels, video.sample_rate)
                encoder = _Encoder(writer, None)
                encoder.start()
            counts = repeat_counts(video.frame_count, recipe.output_frames)
            if index:
                counts[0] -= 1  # the previous shot's last frame, delivered once already
            with closing(video.chunks()) as chunks:
                last = _feed(chunks, encoder, video.frame_count, counts)
            if last is None:
                break  # the encoder failed: finish() raises its error
            _save_frame(last, out_path.parent / f"shot-{index}-last.png")
            before_frames, frames_out = frames_out, frames_out + int(counts.sum())
            if recipe.audio and video.audio is not None:
                audio_parts.append(_audio_span(video.audio, video.sample_rate, fps, before_frames, frames_out))
            done_before += recipe.total_steps
            progress(done_before, total + 1)
    except BaseException:
        if encoder is not None:
            encoder.stop()
        raise
    assert encoder is not None
    encoder.finish(np.concatenate(audio_parts, axis=1) if audio_parts else None)
    progress(total + 1, total + 1)
    return RenderInfo(
        width=first.output_width,
        height=first.output_height,
        frames=frames_out,
        fps=fps,
        duration_s=frames_out / fps,
        has_audio=bool(audio_parts),
        seed=seed if seed is not None else 0,
        generate_seconds=round(generate_s, 3),
        deliver_seconds=round(time.perf_counter() - started - generate_s, 3),
        steps=total,
    )


def _audio_span(audio: Audio, sample_rate: int, fps: int, start_frame: int, end_frame: int) -> Audio:
    """A shot's audio cut (or padded with silence) to exactly its frames' place in the clip,
    counted from the clip's start so that rounding never adds up across shots. A shot after
    the first skips its first frame's sound, as its first frame (the previous shot's last)
    is not delivered again."""
    start = round(start_frame / fps * sample_rate)
    wanted = round(end_frame / fps * sample_rate) - start
    skip = round(sample_rate / fps) if start_frame else 0
    part = audio[:, skip : skip + wanted]
    if part.shape[1] < wanted:
        part = np.pad(part, ((0, 0), (0, wanted - part.shape[1])))
    return part.astype(np.float32, copy=False)


def _save_frame(frame: Frames, path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.ascontiguousarray(frame)).save(path)


class _StepsThenDelivery:
    """Progress over the model's steps and one more unit that completes with delivery."""

    def __init__(self, progress: ProgressFn) -> None:
        self._progress = progress
        self._total = 0

    @property
    def total(self) -> int:
        """The model's denoising steps, as it last reported them."""
        return self._total

    def report(self, done: int, total: int) -> None:
        self._total = total
        self._progress(done, total + 1)

    def delivered(self) -> None:
        self._progress(self._total + 1, self._total + 1)


def deliver(video: Video, recipe: Recipe, out_path: Path) -> bool:
    """Write ``video`` as the recipe's output MP4; return whether it has an audio track.

    Frames are resampled in time as repeat counts rather than as a copied clip: each
    generated frame is converted once and encoded as often as the output needs it. Chunks
    are encoded on a second thread while the next one is decoded (see the module notes).
    """
    return decode_into_mp4(video, recipe, out_path)()


def decode_into_mp4(video: Video, recipe: Recipe, out_path: Path) -> Callable[[], bool]:
    """Decode every frame of ``video`` into an encoder thread writing ``out_path``; return
    what finishes the file (waits for the encoder, raises its error, says whether the MP4 has
    an audio track). Between the two the caller may decode another video: a batch encodes one
    job's tail while it decodes the next job (:mod:`takeone.engine.render_batch`)."""
    audio = video.audio if recipe.audio else None
    channels = 0 if audio is None else audio.shape[0]
    writer = Mp4Writer(
        out_path, recipe.output_fps, recipe.output_width, recipe.output_height, channels, video.sample_rate
    )
    counts = repeat_counts(video.frame_count, recipe.output_frames)
    encoder = _Encoder(writer, audio)
    encoder.start()
    try:
        with closing(video.chunks()) as chunks:
            _feed(chunks, encoder, video.frame_count, counts)
    except BaseException:
        encoder.stop()
        raise

    def finish() -> bool:
        encoder.finish()
        return audio is not None

    return finish


def _feed(chunks: Iterator[Frames], encoder: _Encoder, expected: int, counts: npt.NDArray[np.intp]) -> Frames | None:
    """Hand every chunk to ``encoder`` with how often each frame is delivered; stop early,
    quietly, if the encoder has failed. Returns the last frame handed over."""
    received, last = 0, None
    for chunk in chunks:
        if received + len(chunk) > expected:
            received += len(chunk)
            break
        if not encoder.put(chunk, counts[received : received + len(chunk)]):
            return None
        received += len(chunk)
        last = chunk[-1] if len(chunk) else last
    if received != expected:
        raise GenerationFailed(f"the model announced {expected} frames but produced {received}")
    return last


class _Encoder:
    """An encoder thread fed through a bounded hand-off queue.

    :meth:`put` blocks while :data:`QUEUE_CHUNKS` chunks wait and returns False once the
    encoder has failed; :meth:`finish` lets it drain the queue and complete the file, then
    raises its error if it had one; :meth:`stop` makes it abandon the file (the writer
    removes it) and waits for it.
    """

    def __init__(self, writer: Mp4Writer, audio: Audio | None) -> None:
        self._writer = writer
        self._audio = audio
        self._queue: deque[tuple[Frames, npt.NDArray[np.intp]]] = deque()
        self._ready = threading.Condition()
        self._done = False  # the feeder has handed over everything
        self._stopped = False  # either side gave up: no more hand-overs
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="takeone-encoder", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def put(self, chunk: Frames, counts: npt.NDArray[np.intp]) -> bool:
        with self._ready:
            self._ready.wait_for(lambda: self._stopped or len(self._queue) < QUEUE_CHUNKS)
            if self._stopped:
                return False
            self._queue.append((chunk, counts))
            self._ready.notify_all()
            return True

    def finish(self, audio: Audio | None = None) -> None:
        """Let the encoder drain and complete the file (with ``audio`` if given, written after
        the frames); raise its error if it had one."""
        with self._ready:
            if audio is not None:
                self._audio = audio
            self._done = True
            self._ready.notify_all()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        self._halt()
        self._thread.join()

    def _halt(self) -> None:
        with self._ready:
            self._stopped = True
            self._queue.clear()
            self._ready.notify_all()

    def _take(self) -> tuple[Frames, npt.NDArray[np.intp]] | None:
        """The next chunk; None when the feeder is done; ``_Stopped`` when it gave up."""
        with self._ready:
            self._ready.wait_for(lambda: self._stopped or self._done or bool(self._queue))
            if self._stopped:
                raise _Stopped()
            if not self._queue:
                return None
            chunk = self._queue.popleft()
            self._ready.notify_all()
            return chunk

    def _run(self) -> None:
        try:
            with self._writer as writer:
                self._encode(writer)
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the feeder's thread
            self._error = exc
            self._halt()

    def _encode(self, writer: Mp4Writer) -> None:
        while (item := self._take()) is not None:
            chunk, counts = item
            for frame, count in zip(chunk, counts):
                if count:
                    writer.write_frame(frame, repeat=int(count))
        if self._audio is not None:
            writer.write_audio(self._audio)


class _Stopped(Exception):
    """Raised inside the encoder thread when the feeder gave up: the writer removes the file."""


def resample_indices(available: int, count: int) -> npt.NDArray[np.intp]:
    """The source index of each of ``count`` output frames (nondecreasing, ends kept)."""
    return np.rint(np.linspace(0, available - 1, count)).astype(np.intp)


def repeat_counts(available: int, count: int) -> npt.NDArray[np.intp]:
    """How often each of ``available`` frames is delivered when ``count`` are needed, in order.

    Nearest neighbour in time with both ends kept: for a first-and-last-frame task the last
    delivered frame must be the last generated one."""
    return np.bincount(resample_indices(available, count), minlength=available)
