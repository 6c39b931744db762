"""Several LTX-2 jobs of one recipe shape in one denoising run.

Each row of the batch is one job: its own prompt and negative prompt (encoded together, each
with its own attention mask), its own seeded generator (diffusers draws a list of generators
row by row, so each job's initial noise, stage-2 re-noise and decode noise are exactly what
it draws alone), its own ancestral noise stream, and its own guidance scale
(:class:`RowScale`). A job's video therefore does not depend on its batch-mates; batched
matmuls may round differently in the last bits, which is all that differs from a lone run.

Both stages of a two-stage text-to-video recipe batch (the upsampler and stage 2 take the
batch's latents as they are); image to video batches single-stage (each row's first frame is
encoded with its own generator). See :mod:`takeone.models.batch` for what may share a run.

Example::

    videos = generate_batch(model, [BatchItem(task, recipe, progress, cancel), ...])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from diffusers.pipelines.ltx2.utils import apply_image_conditioning_crf, resolve_default_image_crf
from PIL import Image

from takeone.core.errors import GenerationFailed, JobCancelled, TakeoneError
from takeone.core.task import VideoTask
from takeone.models.base import CancelFn, ProgressFn, Video
from takeone.models.family_helpers import (
    as_takeone_error,
    choose_seed,
    guarded_stream,
    load_frame,
    require_image,
    seeded_generator,
)
from takeone.models.ltx2.decode import ltx2_audio, ltx2_decoder_inputs, ltx2_frame_chunks, ltx2_frame_count
from takeone.models.ltx2.model import (
    STAGE_2_PIPELINE,
    Ltx2Model,
    audio_to_numpy,
    set_vae_tiling,
    stage1_arguments,
    stage2_arguments,
)
from takeone.models.ltx2.recipe import Ltx2Sampling
from takeone.models.ltx2.sampler import NOISE_SEED_OFFSET
from takeone.models.ltx2.speedups import reset_cache
from takeone.models.recipe import Recipe


@dataclass(frozen=True)
class BatchItem:
    """One job of a batch: its task and recipe (the batch's shape), its progress and cancel check."""

    task: VideoTask
    recipe: Recipe
    progress: ProgressFn
    should_cancel: CancelFn


class RowScale(float):
    """A guidance scale per batch row for a pipeline that expects one number.

    Compared as a number it is the largest row's scale (the pipelines only ask whether to
    guide, and every row of a batch agrees on that); ``scale - 1`` is a ``[rows, 1, 1]``
    tensor, so the pipelines' ``(scale - 1) * delta`` scales each row's guidance delta by its
    own job's scale.
    """

    rows: tuple[float, ...]
    device: torch.device

    def __new__(cls, rows: Sequence[float], device: torch.device) -> RowScale:
        scale = super().__new__(cls, max(rows))
        scale.rows = tuple(rows)
        scale.device = device
        return scale

    def __sub__(self, other: float) -> Any:
        column = torch.tensor([row - other for row in self.rows], dtype=torch.float32, device=self.device)
        return column.view(-1, 1, 1)


def generate_batch(model: Ltx2Model, items: Sequence[BatchItem]) -> list[Video]:
    """Run ``items`` (one recipe shape) as one batch; one :class:`Video` per item, in order.

    Raises ``JobCancelled`` only when every job of the batch is cancelled (a cancelled job's
    row runs on to the end of the batch; its caller drops its video), ``OutOfMemory`` or
    ``GenerationFailed`` for the whole batch (the caller may split it and retry).
    """
    recipe = items[0].recipe
    _check(model, recipe, items)
    seeds = [choose_seed(item.task.seed) for item in items]
    generators = [seeded_generator(seed) for seed in seeds]
    model.schedulers["ancestral"].noise_seeds = [seed + NOISE_SEED_OFFSET for seed in seeds]
    try:
        output, text_dtype = _denoise(model, items, generators)
        return [_video(model, item, output, row, seed, generators[row], text_dtype)
                for row, (item, seed) in enumerate(zip(items, seeds))]
    except TakeoneError:
        raise
    except Exception as exc:
        raise as_takeone_error(exc, model.device, f"LTX-2 batched {recipe.pipeline} generation") from exc
    finally:
        model.schedulers["ancestral"].noise_seeds = None


def _check(model: Ltx2Model, recipe: Recipe, items: Sequence[BatchItem]) -> None:
    if not isinstance(recipe.sampling, Ltx2Sampling):
        raise GenerationFailed(f"LTX-2 cannot run a {recipe.family} recipe")
    if recipe.sampling.two_stage and (model.upsampler is None or recipe.pipeline != "t2v"):
        raise GenerationFailed(f"LTX-2 cannot batch a two-stage {recipe.pipeline!r} recipe")
    if recipe.pipeline not in ("t2v", "i2v"):
        raise GenerationFailed(f"LTX-2 cannot batch a {recipe.pipeline!r} recipe")
    if any(item.recipe.steps != recipe.steps or item.recipe.gen_frames != recipe.gen_frames for item in items):
        raise GenerationFailed("a batch mixes recipe shapes")
    if all(item.should_cancel() for item in items):
        raise JobCancelled()


def _denoise(
    model: Ltx2Model, items: Sequence[BatchItem], generators: list[torch.Generator]
) -> tuple[Any, torch.dtype]:
    """Both stages for the whole batch (mirrors :meth:`Ltx2Model._denoise`, row by row)."""
    recipe = items[0].recipe
    sampling = recipe.sampling
    assert isinstance(sampling, Ltx2Sampling)
    set_vae_tiling(model.components["vae"], recipe.vae_tiling)
    if sampling.stage1_transformer in model.components:
        reset_cache(model.components[sampling.stage1_transformer])
    text = _encode_texts(model, items)
    width, height = recipe.stage1_size
    model._ancestral_stage = sampling.stage1_sampler == "ancestral"
    first = model._stage(model.pipeline(recipe.pipeline, sampling.stage1_transformer), {
        **text,
        **_common(recipe, generators),
        **stage1_arguments(recipe),
        **_row_guidance(model, items, sampling),
        **_images(model, items, width, height),
        "output_type": "latent",
        "callback_on_step_end": _callback(items, 0),
    })
    if not sampling.two_stage:
        return first, text["prompt_embeds"].dtype
    model._ancestral_stage = False
    assert model.upsampler is not None
    latents = model.upsampler(latents=first.frames, output_type="latent", return_dict=False)[0]
    if all(item.should_cancel() for item in items):
        raise JobCancelled()
    second = model._stage(model.pipeline(STAGE_2_PIPELINE[recipe.pipeline]), {
        **text,
        **_common(recipe, generators),
        **stage2_arguments(recipe),
        "latents": latents,
        "audio_latents": first.audio,
        "output_type": "latent",
        "callback_on_step_end": _callback(items, recipe.steps),
    })
    return second, text["prompt_embeds"].dtype


def _encode_texts(model: Ltx2Model, items: Sequence[BatchItem]) -> dict[str, Any]:
    """Every row's prompt (and negative prompt where guidance runs), padded to one length."""
    recipe = items[0].recipe
    sampling = recipe.sampling
    assert isinstance(sampling, Ltx2Sampling)
    guided = sampling.guided(recipe.guidance_scale)
    embeds, mask, negative, negative_mask = model.pipeline(recipe.pipeline).encode_prompt(
        prompt=[item.task.prompt for item in items],
        negative_prompt=[item.recipe.negative_prompt for item in items],
        do_classifier_free_guidance=guided,
        max_sequence_length=recipe.max_sequence_length,
        device=model.device,
    )
    text = {"prompt_embeds": embeds, "prompt_attention_mask": mask}
    if guided:
        text.update(negative_prompt_embeds=negative, negative_prompt_attention_mask=negative_mask)
    return text


def _common(recipe: Recipe, generators: list[torch.Generator]) -> dict[str, Any]:
    sampling = recipe.sampling
    assert isinstance(sampling, Ltx2Sampling)
    return {
        "num_frames": recipe.gen_frames,
        "frame_rate": recipe.gen_fps,
        "max_sequence_length": recipe.max_sequence_length,
        "use_cross_timestep": sampling.use_cross_timestep,
        "generator": generators,
    }


def _row_guidance(model: Ltx2Model, items: Sequence[BatchItem], sampling: Ltx2Sampling) -> dict[str, Any]:
    """Stage 1's video and audio CFG scale per row (the audio one is fixed by the tier when set)."""
    video = [item.recipe.guidance_scale for item in items]
    audio = [sampling.audio_guidance_scale or scale for scale in video]
    return {"guidance_scale": RowScale(video, model.device), "audio_guidance_scale": RowScale(audio, model.device)}


def _images(model: Ltx2Model, items: Sequence[BatchItem], width: int, height: int) -> dict[str, Any]:
    """Each row's first frame, H.264 re-compressed one by one as the pipeline does a lone image
    (it re-compresses only a single image, so the batch passes them ready, with ``image_crf=0``)."""
    recipe = items[0].recipe
    if recipe.pipeline == "t2v":
        return {}
    crf = resolve_default_image_crf(model.components["text_encoder"])
    images = [load_frame(require_image(item.task.first_frame, "first_frame"), recipe.aspect_ratio, width, height)
              for item in items]
    if crf:
        images = [Image.fromarray(apply_image_conditioning_crf(np.array(image.convert("RGB")), crf))
                  for image in images]
    return {"image": images, "image_crf": 0}


def _callback(items: Sequence[BatchItem], done_before: int) -> Any:
    """Each job hears its own progress; the batch stops only when every job is cancelled."""
    total = items[0].recipe.total_steps

    def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        live = [item for item in items if not item.should_cancel()]
        if not live:
            raise JobCancelled()
        for item in live:
            item.progress(done_before + step + 1, total)
        return {}

    return on_step_end


def _video(
    model: Ltx2Model, item: BatchItem, output: Any, row: int, seed: int, generator: torch.Generator,
    text_dtype: torch.dtype,
) -> Video:
    """Row ``row``'s audio now and its frames as a stream, as a lone job's (decoded per job)."""
    recipe = item.recipe
    pipe = model.pipeline(recipe.pipeline)
    latents, timestep = ltx2_decoder_inputs(pipe, output.frames[row : row + 1], generator, text_dtype)
    audio = audio_to_numpy(ltx2_audio(pipe, output.audio[row : row + 1])[0]) if recipe.audio else None
    frames = guarded_stream(ltx2_frame_count(pipe.vae, latents), ltx2_frame_chunks(pipe, latents, timestep),
                            model.device, f"LTX-2 {recipe.pipeline} decode", item.should_cancel)
    return Video(frames=frames, fps=recipe.gen_fps, audio=audio, sample_rate=model.sample_rate, seed=seed)
