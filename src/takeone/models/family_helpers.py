"""Helpers every diffusers-backed model family shares (worker side: imports torch).

Each family (:mod:`.ltx2`, :mod:`.wan`) must behave the same way at its edges: conditioning
images are cropped and scaled identically, seeds are chosen and reported identically,
progress and cancellation reach the denoising loop through the same callback, decoded
frames are quantized and handed over in chunks the same way, and failures become the same
``takeone.core.errors`` classes. Keeping those rules here means a fix lands in one place for
every family.

Example::

    seed = choose_seed(task.seed)
    arguments["callback_on_step_end"] = step_callback(progress, should_cancel)
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

import torch
from diffusers import DiffusionPipeline
from PIL import Image

from takeone.core.errors import (
    GenerationFailed,
    JobCancelled,
    OutOfMemory,
    TakeoneError,
)
from takeone.models.base import CHUNK_FRAMES, CancelFn, Frames, FrameStream, ProgressFn

MAX_SEED = 2**31 - 1
T = TypeVar("T")
_CPU_OOM_MARKERS = ("can't allocate memory", "not enough memory", "out of memory")

Chunks = Generator[Frames, None, None]
Samples = Generator[torch.Tensor, None, None]
StepCallback = Callable[[DiffusionPipeline, int, Any, dict[str, Any]], dict[str, Any]]


def choose_seed(requested: int | None) -> int:
    """The request's seed, or a fresh one the client can reuse to reproduce the video."""
    return requested if requested is not None else secrets.randbelow(MAX_SEED + 1)


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator: diffusers draws the initial noise on it, so a seed gives the same video on any device."""
    return torch.Generator(device="cpu").manual_seed(seed)


def load_frame(path: str, aspect_ratio: str, width: int, height: int) -> Image.Image:
    """Open a conditioning PNG, center-crop it to ``aspect_ratio`` and scale it to ``width`` x ``height``.

    The generation size is the nearest model-valid size, not exactly the aspect ratio; the
    render step scales frames back to the exact output size, which undoes that small stretch.
    """
    try:
        with Image.open(path) as opened:
            image = opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        # The API already decoded this file; failing here is a worker-side problem. The
        # message names the file but not the server's folders.
        name = Path(path).name
        raise GenerationFailed(f"cannot read conditioning image {name} ({type(exc).__name__})") from exc
    cropped = image.crop(center_crop_box(image.width, image.height, aspect_ratio))
    return cropped.resize((width, height), Image.Resampling.LANCZOS)


def center_crop_box(width: int, height: int, aspect_ratio: str) -> tuple[int, int, int, int]:
    """The largest centered box of ``width`` x ``height`` with the ``"W:H"`` aspect ratio."""
    ratio_w, ratio_h = (int(part) for part in aspect_ratio.split(":"))
    crop_w = min(width, round(height * ratio_w / ratio_h))
    crop_h = min(height, round(width * ratio_h / ratio_w))
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return left, top, left + crop_w, top + crop_h


def require_image(path: str | None, field: str) -> str:
    """The recipe's conditioning image path; a recipe/task mismatch is a worker-side bug."""
    if path is None:
        raise GenerationFailed(f"the recipe needs {field}, but the task has none")
    return path


def step_callback(progress: ProgressFn, should_cancel: CancelFn) -> StepCallback:
    """A diffusers ``callback_on_step_end`` that reports progress and aborts on cancellation.

    ``JobCancelled`` raised here unwinds the pipeline's denoising loop directly; the pipelines
    keep no state across calls that this could corrupt, so the next job runs normally.
    """

    def on_step_end(
        pipe: DiffusionPipeline, step: int, timestep: Any, tensors: dict[str, Any]
    ) -> dict[str, Any]:
        # The pipelines set ``num_timesteps`` while they run; the untyped base class does not declare it.
        running: Any = pipe
        progress(step + 1, int(running.num_timesteps))
        if should_cancel():
            raise JobCancelled()
        return {}

    return on_step_end


def frames_to_uint8(frames: torch.Tensor) -> Frames:
    """``[F, C, H, W]`` floats in 0..1 (on any device) to uint8 ``[F, H, W, 3]`` in one pass."""
    scaled = frames.float().mul(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def as_takeone_error(exc: Exception, device: torch.device, what: str) -> TakeoneError:
    """Classify a pipeline failure: our own errors pass through, allocation failures become
    ``OutOfMemory`` (after freeing cached device memory, so the worker can take the next job),
    anything else ``GenerationFailed`` with a bounded one-line description."""
    if isinstance(exc, TakeoneError):
        return exc
    if isinstance(exc, torch.OutOfMemoryError) or is_cpu_out_of_memory(exc):
        if device.type == "cuda":
            torch.cuda.empty_cache()
        return OutOfMemory(f"out of {device.type} memory while generating: {describe(exc)}")
    return GenerationFailed(f"{what} failed: {describe(exc)}")


def guarded_stream(
    count: int, chunks: Iterator[Frames], device: torch.device, what: str, should_cancel: CancelFn
) -> FrameStream:
    """A :class:`FrameStream` of ``count`` frames that behaves like generation at its edges:
    ``should_cancel`` is polled before each chunk is decoded (``JobCancelled``), decode
    failures become ``takeone.core.errors`` classes as in :func:`as_takeone_error`, and closing the
    stream closes ``chunks`` (which frees what the decoder holds)."""
    return FrameStream(count, _guarded(chunks, device, what, should_cancel))


def _guarded(
    chunks: Iterator[Frames], device: torch.device, what: str, should_cancel: CancelFn
) -> Generator[Frames, None, None]:
    try:
        while True:
            if should_cancel():
                raise JobCancelled()
            try:
                chunk = next(chunks)
            except StopIteration:
                return
            except TakeoneError:
                raise
            except Exception as exc:
                raise as_takeone_error(exc, device, what) from exc
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()


def is_cpu_out_of_memory(exc: BaseException) -> bool:
    """CPU allocation failures are plain ``RuntimeError``s; recognise them by their message."""
    return isinstance(exc, RuntimeError) and any(marker in str(exc) for marker in _CPU_OOM_MARKERS)


def describe(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, bounded: it ends up in a client-facing error."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def accepted(cls: type[DiffusionPipeline], components: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of ``components`` that ``cls.__init__`` takes (pipelines differ in optional parts)."""
    parameters = inspect.signature(cls.__init__).parameters
    return {name: module for name, module in components.items() if name in parameters}


def seeded(seed: int, build: Callable[[], T]) -> T:
    """Build under a private RNG state, so random weights never depend on what ran before."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return build()


def whole_clip(decode: Callable[[], torch.Tensor]) -> Samples:
    """One decode of the whole clip ``[1, 3, F, H, W]``, handed over :data:`CHUNK_FRAMES` frames at a time."""
    with torch.no_grad():
        samples = decode()
    for start in range(0, int(samples.shape[2]), CHUNK_FRAMES):
        yield samples[:, :, start : start + CHUNK_FRAMES]


def quantized(pipe: Any, samples: Samples) -> Chunks:
    """Each ``[1, 3, n, H, W]`` VAE output in -1..1 as uint8 ``[n, H, W, 3]`` on the host,
    post-processed by the pipeline's own video processor and quantized on the device."""
    try:
        for sample in samples:
            with torch.no_grad():
                frames = pipe.video_processor.postprocess_video(sample, output_type="pt")[0]
            yield frames_to_uint8(frames)
    finally:
        samples.close()
