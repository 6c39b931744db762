"""LTX-2 behind the :class:`~takeone.models.base.VideoModel` contract.

One set of components (text encoder, transformer, VAEs, vocoder) is loaded once and shared by
the three pipelines the Kling endpoints need, so weights live in memory exactly once and
every pipeline stays warm across jobs:

- ``t2v``: :class:`LTX2Pipeline` (text only),
- ``i2v``: :class:`LTX2ImageToVideoPipeline` (``image`` is the first frame),
- ``condition``: :class:`LTX2ConditionPipeline` with the first frame at index 0 and the last
  frame at index -1 (Kling 2.1 ``image_tail``).

A model serves one job at a time (pipelines keep per-call state on themselves).

Example::

    model = Ltx2Model(build_tiny_components(), torch.device("cpu"))
    video = model.generate(request, recipe, progress=print, should_cancel=lambda: False)
"""

from __future__ import annotations

import inspect
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from diffusers import DiffusionPipeline, LTX2ConditionPipeline, LTX2ImageToVideoPipeline, LTX2Pipeline
from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition
from PIL import Image

from takeone.errors import GenerationFailed, JobCancelled, OutOfMemory, TakeoneError
from takeone.generation import GenerationRequest
from takeone.models.base import Audio, CancelFn, Frames, ProgressFn, Video, VideoModel
from takeone.models.profiles import Recipe

PIPELINES: Mapping[str, type[DiffusionPipeline]] = {
    "t2v": LTX2Pipeline,
    "i2v": LTX2ImageToVideoPipeline,
    "condition": LTX2ConditionPipeline,
}
MAX_SEED = 2**31 - 1
_CPU_OOM_MARKERS = ("can't allocate memory", "not enough memory", "out of memory")


class Ltx2Model(VideoModel):
    """The LTX-2 family: three warm pipelines over one shared set of components."""

    def __init__(self, components: Mapping[str, Any], device: torch.device) -> None:
        """Wrap already-loaded ``components`` (in their final dtype) and move them to ``device``."""
        self.device = device
        base = LTX2Pipeline(**_accepted(LTX2Pipeline, components)).to(device)
        # The other pipelines get the very same module objects: no second copy of any weight.
        self.pipelines: dict[str, DiffusionPipeline] = {
            name: base if cls is LTX2Pipeline else cls(**_accepted(cls, base.components))
            for name, cls in PIPELINES.items()
        }
        for pipe in self.pipelines.values():
            pipe.set_progress_bar_config(disable=True)

    @classmethod
    def from_pretrained(cls, source: str | Path, device: torch.device, dtype: torch.dtype) -> Ltx2Model:
        """Load diffusers-format weights (a Hub repo id or a local directory) once."""
        pipe = LTX2Pipeline.from_pretrained(str(source), dtype=dtype)
        return cls(pipe.components, device)

    @property
    def sample_rate(self) -> int:
        """The vocoder's output rate: the audio track's sample rate."""
        return int(self.pipelines["t2v"].vocoder.config.output_sampling_rate)

    def generate(
        self, request: GenerationRequest, recipe: Recipe, progress: ProgressFn, should_cancel: CancelFn
    ) -> Video:
        """Run ``recipe.pipeline`` for ``request``; errors surface as ``takeone.errors`` classes."""
        if recipe.family != "ltx2" or recipe.pipeline not in self.pipelines:
            raise GenerationFailed(f"LTX-2 cannot run a {recipe.family} {recipe.pipeline!r} recipe")
        if should_cancel():
            raise JobCancelled()
        seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
        arguments = self._arguments(request, recipe, seed, progress, should_cancel)
        output = self._run(recipe.pipeline, arguments)
        return self._to_video(output, recipe, seed)

    def _arguments(
        self,
        request: GenerationRequest,
        recipe: Recipe,
        seed: int,
        progress: ProgressFn,
        should_cancel: CancelFn,
    ) -> dict[str, Any]:
        arguments = sampling_arguments(recipe)
        arguments.update(
            prompt=request.prompt,
            negative_prompt=request.negative_prompt,
            generator=torch.Generator(device="cpu").manual_seed(seed),
            callback_on_step_end=step_callback(progress, should_cancel),
            output_type="pt",
            return_dict=True,
        )
        arguments.update(conditioning_arguments(request, recipe))
        return arguments

    def _run(self, pipeline: str, arguments: dict[str, Any]) -> Any:
        try:
            return self.pipelines[pipeline](**arguments)
        except TakeoneError:
            raise
        except torch.OutOfMemoryError as exc:
            raise self._out_of_memory(exc) from exc
        except Exception as exc:
            if _is_cpu_out_of_memory(exc):
                raise self._out_of_memory(exc) from exc
            raise GenerationFailed(f"LTX-2 {pipeline} generation failed: {_describe(exc)}") from exc

    def _out_of_memory(self, exc: BaseException) -> OutOfMemory:
        """Free cached device memory so the worker can take the next job, and say what happened."""
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        return OutOfMemory(f"out of {self.device.type} memory while generating: {_describe(exc)}")

    def _to_video(self, output: Any, recipe: Recipe, seed: int) -> Video:
        frames = frames_to_uint8(output.frames[0])
        audio = audio_to_numpy(output.audio[0]) if recipe.audio else None
        return Video(frames=frames, fps=recipe.gen_fps, audio=audio, sample_rate=self.sample_rate, seed=seed)


def sampling_arguments(recipe: Recipe) -> dict[str, Any]:
    """The pipeline keyword arguments that depend only on the recipe.

    The audio branch uses the video's STG, modality and rescale settings; its CFG scale is
    ``recipe.audio_guidance_scale`` when set (LTX recommends a higher one for audio).
    """
    audio_guidance = recipe.audio_guidance_scale or recipe.guidance_scale
    return {
        "height": recipe.gen_height,
        "width": recipe.gen_width,
        "num_frames": recipe.gen_frames,
        "frame_rate": recipe.gen_fps,
        "num_inference_steps": recipe.steps,
        "sigmas": list(recipe.sigmas) if recipe.sigmas else None,
        "guidance_scale": recipe.guidance_scale,
        "audio_guidance_scale": audio_guidance,
        "guidance_rescale": recipe.guidance_rescale,
        "audio_guidance_rescale": recipe.guidance_rescale,
        "stg_scale": recipe.stg_scale,
        "audio_stg_scale": recipe.stg_scale,
        "spatio_temporal_guidance_blocks": list(recipe.stg_blocks) or None,
        "modality_scale": recipe.modality_scale,
        "audio_modality_scale": recipe.modality_scale,
        "use_cross_timestep": recipe.use_cross_timestep,
        "max_sequence_length": recipe.max_sequence_length,
    }


def conditioning_arguments(request: GenerationRequest, recipe: Recipe) -> dict[str, Any]:
    """The first (and last) frame images, fitted to the generation size, as pipeline arguments."""
    if recipe.pipeline == "t2v":
        return {}
    first = load_frame(_require(request.image, "image"), request.aspect_ratio, recipe)
    if recipe.pipeline == "i2v":
        return {"image": first}
    last = load_frame(_require(request.image_tail, "image_tail"), request.aspect_ratio, recipe)
    conditions = [LTX2VideoCondition(frames=first, index=0), LTX2VideoCondition(frames=last, index=-1)]
    return {"conditions": conditions}


def load_frame(path: str, aspect_ratio: str, recipe: Recipe) -> Image.Image:
    """Open a conditioning PNG, center-crop it to ``aspect_ratio`` and scale it to the generation size.

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
    return cropped.resize((recipe.gen_width, recipe.gen_height), Image.Resampling.LANCZOS)


def center_crop_box(width: int, height: int, aspect_ratio: str) -> tuple[int, int, int, int]:
    """The largest centered box of ``width`` x ``height`` with the ``"W:H"`` aspect ratio."""
    ratio_w, ratio_h = (int(part) for part in aspect_ratio.split(":"))
    crop_w = min(width, round(height * ratio_w / ratio_h))
    crop_h = min(height, round(width * ratio_h / ratio_w))
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return left, top, left + crop_w, top + crop_h


StepCallback = Callable[[DiffusionPipeline, int, Any, dict[str, Any]], dict[str, Any]]


def step_callback(progress: ProgressFn, should_cancel: CancelFn) -> StepCallback:
    """A diffusers ``callback_on_step_end`` that reports progress and aborts on cancellation.

    ``JobCancelled`` raised here unwinds the pipeline's denoising loop directly; the pipeline
    keeps no state across calls that this could corrupt, so the next job runs normally.
    """

    def on_step_end(
        pipe: DiffusionPipeline, step: int, timestep: Any, tensors: dict[str, Any]
    ) -> dict[str, Any]:
        progress(step + 1, int(pipe.num_timesteps))
        if should_cancel():
            raise JobCancelled()
        return {}

    return on_step_end


def frames_to_uint8(frames: torch.Tensor) -> Frames:
    """``[F, C, H, W]`` floats in 0..1 (on any device) to uint8 ``[F, H, W, 3]`` in one pass."""
    scaled = frames.float().mul(255.0).round_().clamp_(0.0, 255.0).to(torch.uint8)
    return scaled.permute(0, 2, 3, 1).contiguous().cpu().numpy()


def audio_to_numpy(audio: torch.Tensor) -> Audio:
    """Vocoder output ``[channels, samples]`` to float32 numpy clipped to -1..1."""
    return audio.float().clamp(-1.0, 1.0).cpu().numpy()


def _accepted(cls: type[DiffusionPipeline], components: Mapping[str, Any]) -> dict[str, Any]:
    """The subset of ``components`` that ``cls.__init__`` takes (pipelines differ in optional parts)."""
    parameters = inspect.signature(cls.__init__).parameters
    return {name: module for name, module in components.items() if name in parameters}


def _require(path: str | None, field: str) -> str:
    if path is None:
        raise GenerationFailed(f"the recipe needs {field}, but the request has none")
    return path


def _is_cpu_out_of_memory(exc: BaseException) -> bool:
    """CPU allocation failures are plain ``RuntimeError``s; recognise them by their message."""
    return isinstance(exc, RuntimeError) and any(marker in str(exc) for marker in _CPU_OOM_MARKERS)


def _describe(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, bounded: it ends up in a client-facing error."""
    lines = str(exc).strip().splitlines()
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
