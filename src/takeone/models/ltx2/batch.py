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

A cancelled job leaves the batched compute at the next step (:class:`LiveRows`): from then on
the transformer runs only the other jobs' rows (and their guidance copies), the cancelled row's
latents stand still, and it is neither decoded nor answered; the others go on exactly as
before. A transformer with a feature cache (an opt-in speed-up of the quality tier) keeps its
batch size to the end, since its cached features hold every row; a cancelled row there only
skips its decode.

Example::

    videos = generate_batch(model, [BatchItem(task, recipe, progress, cancel), ...])
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
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
    TRANSFORMERS,
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


class LiveRows:
    """The batch rows still computed: a cancelled job's row leaves at the next step.

    While :meth:`attached` to a transformer, each call of it runs only the live rows of every
    batch-sized input (the pipeline stacks the guidance copies of the batch one after another:
    unconditioned rows, then conditioned) and puts their outputs back in place; a dropped row's
    output is zero, so its latents stand still until the run ends and it is discarded.
    """

    def __init__(self, items: Sequence[BatchItem]) -> None:
        self.items = items
        self.live: tuple[int, ...] = ()
        self.update()

    def update(self) -> tuple[int, ...]:
        """Read every job's cancel check once (at a step's end): the rows the next step runs."""
        self.live = tuple(row for row, item in enumerate(self.items) if not item.should_cancel())
        return self.live

    @contextmanager
    def attached(self, transformers: Sequence[Any]) -> Iterator[None]:
        """Drop cancelled rows in each of ``transformers`` (not one with a feature cache) meanwhile."""
        with ExitStack() as stack:
            for module in {id(m): m for m in transformers if not getattr(m, "is_cache_enabled", False)}.values():
                stack.enter_context(self._hooked(module))
            yield

    @contextmanager
    def _hooked(self, module: torch.nn.Module) -> Iterator[None]:
        picked: list[tuple[int, torch.Tensor] | None] = []  # the call in progress: (rows, live index)

        def before(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            selection = self._selection(kwargs)
            picked.append(selection)
            if selection is None:
                return None
            full, index = selection
            return args, {name: value.index_select(0, index.to(value.device))
                          if isinstance(value, torch.Tensor) and value.dim() and value.shape[0] == full else value
                          for name, value in kwargs.items()}

        def after(_module: Any, _args: Any, _kwargs: Any, output: Any) -> Any:
            selection = picked.pop()
            if selection is None or not isinstance(output, tuple):
                return None
            return tuple(_scatter(part, *selection) for part in output)

        handles = [module.register_forward_pre_hook(before, with_kwargs=True),
                   module.register_forward_hook(after, with_kwargs=True)]
        try:
            yield
        finally:
            for handle in handles:
                handle.remove()

    def _selection(self, kwargs: dict[str, Any]) -> tuple[int, torch.Tensor] | None:
        """(the call's row count, the live rows' indices in it), or None when every row runs."""
        hidden = kwargs.get("hidden_states")
        batch = len(self.items)
        if len(self.live) == batch or not isinstance(hidden, torch.Tensor) or hidden.shape[0] % batch:
            return None
        copies = hidden.shape[0] // batch
        rows = [copy * batch + row for copy in range(copies) for row in self.live]
        return hidden.shape[0], torch.tensor(rows, dtype=torch.long)


def _scatter(part: Any, full: int, index: torch.Tensor) -> Any:
    """A live-rows output back at its rows of a ``full``-row tensor (zeros elsewhere)."""
    if not isinstance(part, torch.Tensor) or part.shape[0] != len(index):
        return part
    whole = part.new_zeros((full, *part.shape[1:]))
    whole[index.to(part.device)] = part
    return whole


def generate_batch(model: Ltx2Model, items: Sequence[BatchItem]) -> list[Video | None]:
    """Run ``items`` (one recipe shape) as one batch; per item, in order, its :class:`Video`,
    or None for a job cancelled meanwhile (it left the compute at the step after its cancel).

    Raises ``JobCancelled`` only when every job of the batch is cancelled, ``OutOfMemory`` or
    ``GenerationFailed`` for the whole batch (the caller may split it and retry).
    """
    recipe = items[0].recipe
    _check(model, recipe, items)
    seeds = [choose_seed(item.task.seed) for item in items]
    generators = [seeded_generator(seed) for seed in seeds]
    model.schedulers["ancestral"].noise_seeds = [seed + NOISE_SEED_OFFSET for seed in seeds]
    rows = LiveRows(items)
    transformers = [model.components[name] for name in TRANSFORMERS if name in model.components]
    try:
        with rows.attached(transformers):
            output, text_dtype = _denoise(model, items, generators, rows)
        live = rows.update()
        return [_video(model, item, output, row, seed, generators[row], text_dtype) if row in live else None
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
    model: Ltx2Model, items: Sequence[BatchItem], generators: list[torch.Generator], rows: LiveRows
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
        "callback_on_step_end": _callback(rows, 0),
    })
    if not sampling.two_stage:
        return first, text["prompt_embeds"].dtype
    model._ancestral_stage = False
    assert model.upsampler is not None
    latents = model.upsampler(latents=first.frames, output_type="latent", return_dict=False)[0]
    if not rows.update():
        raise JobCancelled()
    second = model._stage(model.pipeline(STAGE_2_PIPELINE[recipe.pipeline]), {
        **text,
        **_common(recipe, generators),
        **stage2_arguments(recipe),
        "latents": latents,
        "audio_latents": first.audio,
        "output_type": "latent",
        "callback_on_step_end": _callback(rows, recipe.steps),
    })
    return second, text["prompt_embeds"].dtype


def _encode_texts(model: Ltx2Model, items: Sequence[BatchItem]) -> dict[str, Any]:
    """Every row's prompt (and negative prompt where guidance runs), padded to one length."""
    return model.encode_prompts([item.task.prompt for item in items],
                                [item.recipe.negative_prompt for item in items], items[0].recipe)


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


def _callback(rows: LiveRows, done_before: int) -> Any:
    """Each live job hears its own progress; a cancelled one leaves the compute from the next
    step on (:class:`LiveRows`); the batch stops only when every job is cancelled."""
    total = rows.items[0].recipe.total_steps

    def on_step_end(pipe: Any, step: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        for row in rows.live:
            rows.items[row].progress(done_before + step + 1, total)
        if not rows.update():  # after the reports: a cancel that came meanwhile counts now
            raise JobCancelled()
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
