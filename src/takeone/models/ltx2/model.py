"""LTX-2 behind the :class:`~takeone.models.base.VideoModel` contract.

One set of components (text encoder, connectors, VAEs, vocoder, one or two transformers,
latent upsampler) is loaded once; every pipeline variant is built over those very module
objects, so no weight is ever in memory twice and every pipeline stays warm across jobs:

- ``t2v``: :class:`LTX2Pipeline` (text only),
- ``i2v``: :class:`LTX2ImageToVideoPipeline` (``image`` is the first frame) for stage 1; its
  stage 2 runs the condition pipeline with the first frame at index 0, re-encoded at the
  full size as in the reference,
- ``condition``: :class:`LTX2ConditionPipeline` with the first frame at index 0 and the last
  frame at index -1 (tasks of kind ``flf2v``), placed on the last pixel frame as Lightricks
  places keyframes (:mod:`takeone.models.ltx2.keyframes`),

each over ``transformer`` (the distilled DiT for real profiles) and, when loaded,
``transformer_full`` (the full DiT for guided stage 1), plus :class:`LTX2LatentUpsamplePipeline`.

A two-stage recipe runs stage 1 at half the generation size with ``output_type="latent"``,
upsamples the video latents 2x, then runs stage 2 at the generation size from those latents
and stage 1's audio latents, re-noised to ``stage2_noise_scale``. Conditioning images are
fitted to each stage's size. Explicit sigmas (the distilled schedules) are used exactly as
given: those calls get a copy of the scheduler with resolution-dependent shifting off.

Speed-ups (:mod:`.speedups`: compile, fp8, attention backend, quality stage-1 cache) are
applied once the components are placed; :meth:`Ltx2Model.warmup` then runs each code path
once at a tiny size so that compilation happens before the first job, not inside it.

A model serves one job at a time (pipelines keep per-call state on themselves).

Example::

    model = Ltx2Model(build_tiny_components(), torch.device("cpu"))
    video = model.generate(task, recipe, progress=print, should_cancel=lambda: False)
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from diffusers import (
    FlowMatchEulerDiscreteScheduler,
    LTX2ImageToVideoPipeline,
    LTX2LatentUpsamplePipeline,
    LTX2Pipeline,
)
from diffusers.hooks.group_offloading import apply_group_offloading
from diffusers.pipelines.ltx2.pipeline_ltx2_condition import LTX2VideoCondition
from PIL import Image

from takeone.core.errors import GenerationFailed, JobCancelled, OutOfMemory, TakeoneError
from takeone.core.task import VideoTask
from takeone.models.base import Audio, CancelFn, ProgressFn, Video, VideoModel
from takeone.models.family_helpers import (
    accepted,
    as_takeone_error,
    choose_seed,
    describe,
    guarded_stream,
    load_frame,
    require_image,
    seeded_generator,
    step_callback,
)
from takeone.models.ltx2.decode import (
    ltx2_audio,
    ltx2_decoder_inputs,
    ltx2_frame_chunks,
    ltx2_frame_count,
    use_reference_tiles,
)
from takeone.models.ltx2.keyframes import PixelKeyframeConditionPipeline
from takeone.models.ltx2.recipe import Ltx2Sampling
from takeone.models.ltx2.sampler import NOISE_SEED_OFFSET, AncestralFlowMatchScheduler
from takeone.models.ltx2.speedups import (
    apply_speedups,
    compile_failure,
    drop_runtime_speedups,
    reset_cache,
    strict_recompiles,
    uncompile,
)
from takeone.models.ltx2.warmup import shrunk, warmup_sizes, warmup_task
from takeone.models.recipe import Recipe, Speedups

# diffusers' pipelines are untyped (their attributes come from ``register_modules``): ``Any``.
Pipeline = Any
# Hears of one warm-up generation: its recipe (full size), the (width, height, frames) run, seconds.
WarmupFn = Callable[[Recipe, tuple[int, int, int], float], None]
PIPELINES: Mapping[str, Any] = {
    "t2v": LTX2Pipeline,
    "i2v": LTX2ImageToVideoPipeline,
    "condition": PixelKeyframeConditionPipeline,  # the tail image on the last frame (keyframes.py)
}
TRANSFORMERS = ("transformer", "transformer_full")
log = logging.getLogger(__name__)
# Which pipeline runs stage 2 of a two-stage recipe: image to video refines through the
# condition pipeline (see :func:`conditioning_arguments`).
STAGE_2_PIPELINE: Mapping[str, str] = {"t2v": "t2v", "i2v": "condition", "condition": "condition"}


class Ltx2Model(VideoModel):
    """The LTX-2 family: warm pipeline variants over one shared set of components."""

    def __init__(
        self,
        components: Mapping[str, Any],
        device: torch.device,
        offloaded: Iterable[str] = (),
        speedups: Speedups | None = None,
        warmup_recipes: Sequence[Recipe] = (),
    ) -> None:
        """Wrap already-loaded ``components`` (in their final dtype) and place them on ``device``.

        Components named in ``offloaded`` stay in host RAM and stream to ``device`` block by
        block while they run (diffusers group offloading); the rest move to ``device`` now.
        ``speedups`` (default: none) are applied in place; ``warmup_recipes`` are the code
        paths :meth:`warmup` runs (the loader passes one per distinct path of the profile).
        """
        self.device = device
        self.components = dict(components)
        self.offloaded = frozenset(offloaded)
        self.speedups = speedups or Speedups()
        # Speed-ups first: fp8 moves each linear to the device as it quantizes it, so a bf16
        # transformer never sits on the card whole (the offload plan counts fp8 sizes).
        self.speedup_report = apply_speedups(self.components, self.speedups, device, self.offloaded)
        place_components(self.components, device, self.offloaded)
        use_reference_tiles(self.components["vae"])
        self.warmup_recipes = tuple(warmup_recipes)
        self._warming = False
        scheduler = self.components["scheduler"]
        fixed = fixed_sigma_scheduler(scheduler)
        ancestral: Any = AncestralFlowMatchScheduler
        self.schedulers = {"shifted": scheduler, "fixed": fixed, "ancestral": ancestral.from_config(fixed.config)}
        self._ancestral_stage = False
        self.variants = build_variants(self.components)
        self.pipelines: dict[str, Pipeline] = {
            kind: pipe for (kind, transformer), pipe in self.variants.items() if transformer == "transformer"
        }
        self.upsampler: Pipeline | None = build_upsampler(self.components)

    @classmethod
    def from_pretrained(cls, source: str, device: torch.device, dtype: torch.dtype) -> Ltx2Model:
        """Load a whole diffusers-format LTX-2 pipeline folder (or cached repo id) once."""
        pipeline_class: Any = LTX2Pipeline
        pipe = pipeline_class.from_pretrained(source, dtype=dtype)
        return cls(pipe.components, device)

    @property
    def sample_rate(self) -> int:
        """The vocoder's output rate: the audio track's sample rate."""
        return int(self.components["vocoder"].config.output_sampling_rate)

    def pipeline(self, kind: str, transformer: str = "transformer") -> Pipeline:
        """The ``kind`` pipeline over ``transformer``; ``GenerationFailed`` if not loaded."""
        try:
            return self.variants[(kind, transformer)]
        except KeyError:
            raise GenerationFailed(f"LTX-2 has no {kind!r} pipeline over {transformer!r} loaded") from None

    def warmup(self, on_run: WarmupFn | None = None) -> int:
        """Run every warm-up recipe once at a tiny size (twice, at two sizes, when compiled);
        return how many generations ran. Compilation, cuDNN autotuning and lazy CUDA set-up
        then happen here, at start-up, instead of inside the first user's job. ``on_run``
        hears of each generation (its recipe at full size, the warm-up size, seconds).

        A compile failure here (or a plan needing more recompiles than dynamo allows) does not
        stop the worker: the model drops compilation, logs why, and warms up the plain path.
        Nor does any other failure while fp8 or an attention backend is in place (their first
        kernels run here): both are taken out, with the reason logged, and the warm-up reruns.
        """
        try:
            return self._warmup_compiled(on_run)
        except TakeoneError as exc:
            if isinstance(exc, OutOfMemory):
                raise  # not a kernel's fault: dropping fp8 would only need more memory
            why = f"during warm-up ({describe(exc)})"
            if not drop_runtime_speedups(self.components, self.speedup_report, why):
                raise
            return self._warmup_compiled(on_run)

    def _warmup_compiled(self, on_run: WarmupFn | None) -> int:
        if not self.speedup_report.compiled:
            return self._warm_up(on_run)
        try:
            self._warming = True
            with strict_recompiles():
                return self._warm_up(on_run)
        except TakeoneError as exc:
            failure = compile_failure(exc)
            if failure is None:
                raise
            self._drop_compilation(f"torch.compile failed during warm-up ({describe(failure)})")
            return self._warm_up(on_run)
        finally:
            self._warming = False

    def _warm_up(self, on_run: WarmupFn | None) -> int:
        spatial, temporal = vae_ratios(self.components["vae"])
        sizes = warmup_sizes(spatial, temporal, self.speedup_report.compiled)
        runs = 0
        with tempfile.TemporaryDirectory(prefix="takeone-warmup-") as folder:
            image = write_warmup_image(Path(folder))
            for recipe in self.warmup_recipes:
                for width, height, frames in sizes:
                    small = shrunk(recipe, width, height, frames)
                    started = time.perf_counter()
                    self.generate(warmup_task(small, image), small, _ignore_progress, _never).all_frames()
                    runs += 1
                    if on_run is not None:
                        on_run(recipe, (width, height, frames), time.perf_counter() - started)
        return runs

    def _drop_compilation(self, why: str) -> None:
        """Back to the uncompiled transformers for good, saying why in the log and the report."""
        names = uncompile(self.components)
        self.speedup_report.compiled = False
        self.speedup_report.skip(f"{', '.join(names) or 'transformers'}: {why}; running uncompiled")

    def generate(
        self, task: VideoTask, recipe: Recipe, progress: ProgressFn, should_cancel: CancelFn
    ) -> Video:
        """Run ``recipe`` for ``task``; errors surface as ``takeone.core.errors`` classes."""
        if not isinstance(recipe.sampling, Ltx2Sampling) or recipe.pipeline not in PIPELINES:
            raise GenerationFailed(f"LTX-2 cannot run a {recipe.family} {recipe.pipeline!r} recipe")
        if recipe.sampling.two_stage and self.upsampler is None:
            raise GenerationFailed("this LTX-2 model has no latent upsampler for a two-stage recipe")
        if should_cancel():
            raise JobCancelled()
        seed = choose_seed(task.seed)
        try:
            return self._generate(task, recipe, seed, progress, should_cancel)
        except TakeoneError as exc:
            failure = compile_failure(exc) if self.speedup_report.compiled and not self._warming else None
            if failure is None:
                raise
            # A path the warm-up did not cover failed to compile: this job and every later
            # one run plain rather than fail.
            self._drop_compilation(f"torch.compile failed in a job ({describe(failure)})")
            return self._generate(task, recipe, seed, progress, should_cancel)

    def _generate(
        self, task: VideoTask, recipe: Recipe, seed: int, progress: ProgressFn, should_cancel: CancelFn
    ) -> Video:
        generator = seeded_generator(seed)
        self.schedulers["ancestral"].noise_seed = seed + NOISE_SEED_OFFSET
        try:
            output, text_dtype = self._denoise(task, recipe, generator, progress, should_cancel)
            return self._to_video(output, recipe, seed, generator, text_dtype, should_cancel)
        except TakeoneError:
            raise
        except Exception as exc:
            raise as_takeone_error(exc, self.device, f"LTX-2 {recipe.pipeline} generation") from exc

    def _denoise(
        self,
        task: VideoTask,
        recipe: Recipe,
        generator: torch.Generator,
        progress: ProgressFn,
        should_cancel: CancelFn,
    ) -> tuple[Any, torch.dtype]:
        """Every denoising stage; returns the last stage's latent output and the prompt
        embeddings' dtype (the decode rounds latents to it, as the pipelines do)."""
        sampling = _sampling(recipe)
        set_vae_tiling(self.components["vae"], recipe.vae_tiling)
        if sampling.stage1_transformer in self.components:
            reset_cache(self.components[sampling.stage1_transformer])
        width, height = recipe.stage1_size
        text = self._encode_text(task, recipe)  # once: both stages see the same prompt
        self._ancestral_stage = sampling.stage1_sampler == "ancestral"
        first = self._stage(
            self.pipeline(recipe.pipeline, sampling.stage1_transformer),
            {
                **text,
                **prompt_arguments(recipe, generator),
                **stage1_arguments(recipe),
                **conditioning_arguments(task, recipe, width, height),
                "output_type": "latent",
                "callback_on_step_end": step_callback(offset(progress, 0, recipe.total_steps), should_cancel),
            },
        )
        if not sampling.two_stage:
            return first, text["prompt_embeds"].dtype
        self._ancestral_stage = False
        assert self.upsampler is not None
        latents = self.upsampler(latents=first.frames, output_type="latent", return_dict=False)[0]
        if should_cancel():
            raise JobCancelled()
        second = self._stage(
            self.pipeline(STAGE_2_PIPELINE[recipe.pipeline]),
            {
                **text,
                **prompt_arguments(recipe, generator),
                **stage2_arguments(recipe),
                **conditioning_arguments(task, recipe, recipe.gen_width, recipe.gen_height, stage=2),
                "latents": latents,
                "audio_latents": first.audio,
                "output_type": "latent",
                "callback_on_step_end": step_callback(
                    offset(progress, recipe.steps, recipe.total_steps), should_cancel
                ),
            },
        )
        return second, text["prompt_embeds"].dtype

    def _encode_text(self, task: VideoTask, recipe: Recipe) -> dict[str, Any]:
        """Prompt embeddings for every stage; negatives only when stage 1 is guided (stage 2
        never is, and a pipeline without guidance ignores them)."""
        return self.encode_prompts(task.prompt, recipe.negative_prompt, recipe)

    def encode_prompts(self, prompts: str | list[str], negatives: str | list[str], recipe: Recipe) -> dict[str, Any]:
        """The pipeline's prompt embeddings (one row per prompt of a list, padded to one length),
        with the negatives' where ``recipe``'s first stage is guided."""
        guided = _sampling(recipe).guided(recipe.guidance_scale)
        embeds, mask, negative, negative_mask = self.pipeline(recipe.pipeline).encode_prompt(
            prompt=prompts,
            negative_prompt=negatives,
            do_classifier_free_guidance=guided,
            max_sequence_length=recipe.max_sequence_length,
            device=self.device,
        )
        text = {"prompt_embeds": embeds, "prompt_attention_mask": mask}
        if guided:
            text.update(negative_prompt_embeds=negative, negative_prompt_attention_mask=negative_mask)
        return text

    def _stage(self, pipe: Pipeline, arguments: dict[str, Any]) -> Any:
        """One pipeline call, with the scheduler its sigmas and sampler need."""
        key = "fixed" if arguments.get("sigmas") else "shifted"
        pipe.scheduler = self.schedulers["ancestral" if key == "fixed" and self._ancestral_stage else key]
        return pipe(**arguments, return_dict=True)

    def _to_video(
        self,
        output: Any,
        recipe: Recipe,
        seed: int,
        generator: torch.Generator,
        text_dtype: torch.dtype,
        should_cancel: CancelFn,
    ) -> Video:
        """The audio decoded now (it is small); the frames as a stream decoded while read."""
        pipe = self.pipeline(recipe.pipeline)
        latents, timestep = ltx2_decoder_inputs(pipe, output.frames, generator, text_dtype)
        audio = audio_to_numpy(ltx2_audio(pipe, output.audio)[0]) if recipe.audio else None
        frames = guarded_stream(
            ltx2_frame_count(pipe.vae, latents),
            ltx2_frame_chunks(pipe, latents, timestep),
            self.device,
            f"LTX-2 {recipe.pipeline} decode",
            should_cancel,
        )
        return Video(frames=frames, fps=recipe.gen_fps, audio=audio, sample_rate=self.sample_rate, seed=seed)


def vae_ratios(vae: Any) -> tuple[int, int]:
    """The video VAE's (spatial, temporal) compression: what the smallest valid size is made of."""
    return int(vae.spatial_compression_ratio), int(vae.temporal_compression_ratio)


def write_warmup_image(folder: Path) -> str:
    """A small grey PNG for the image-conditioned warm-up runs."""
    path = folder / "warmup.png"
    Image.new("RGB", (64, 64), (128, 128, 128)).save(path)
    return str(path)


def _ignore_progress(_done: int, _total: int) -> None:
    return None


def _never() -> bool:
    return False


def build_variants(components: Mapping[str, Any]) -> dict[tuple[str, str], Pipeline]:
    """Every (pipeline kind, transformer) pair the loaded components allow, sharing modules."""
    variants: dict[tuple[str, str], Pipeline] = {}
    for transformer in TRANSFORMERS:
        if transformer not in components:
            continue
        shared = {**components, "transformer": components[transformer]}
        for kind, cls in PIPELINES.items():
            pipe = cls(**accepted(cls, shared))
            pipe.set_progress_bar_config(disable=True)
            variants[(kind, transformer)] = pipe
    return variants


def build_upsampler(components: Mapping[str, Any]) -> Pipeline | None:
    if "latent_upsampler" not in components:
        return None
    upsampler_class: Any = LTX2LatentUpsamplePipeline
    pipe = upsampler_class(vae=components["vae"], latent_upsampler=components["latent_upsampler"])
    pipe.set_progress_bar_config(disable=True)
    return pipe


def place_components(components: Mapping[str, Any], device: torch.device, offloaded: frozenset[str]) -> None:
    """Move resident modules to ``device``; make ``offloaded`` ones stream there block by block."""
    for name, module in components.items():
        if not isinstance(module, torch.nn.Module):
            continue
        if name in offloaded:
            apply_group_offloading(
                module,
                onload_device=device,
                offload_device=torch.device("cpu"),
                offload_type="block_level",
                num_blocks_per_group=1,
                use_stream=device.type == "cuda",
            )
        else:
            module.to(device)


def fixed_sigma_scheduler(scheduler: Any) -> Any:
    """A copy that uses given sigmas exactly: the distilled schedules are final values, and the
    resolution-dependent shift (or a static shift) would move them off what was distilled."""
    scheduler_class: Any = FlowMatchEulerDiscreteScheduler
    return scheduler_class.from_config(
        scheduler.config, use_dynamic_shifting=False, shift_terminal=None, shift=1.0
    )


def set_vae_tiling(vae: Any, tiled: bool) -> None:
    """Tile the decode in space and time (1080p, 10 s) or decode in one pass (faster when it fits)."""
    if tiled:
        vae.enable_tiling()
    else:
        vae.disable_tiling()
    vae.use_framewise_decoding = tiled


def offset(progress: ProgressFn, done_before: int, total: int) -> ProgressFn:
    """Report a stage's steps as steps of the whole recipe."""

    def report(done: int, _stage_total: int) -> None:
        progress(done_before + done, total)

    return report


def _sampling(recipe: Recipe) -> Ltx2Sampling:
    assert isinstance(recipe.sampling, Ltx2Sampling)  # checked by Ltx2Model.generate
    return recipe.sampling


def prompt_arguments(recipe: Recipe, generator: torch.Generator) -> dict[str, Any]:
    """What every stage passes besides the text: frame count and rate, the job's one generator."""
    return {
        "num_frames": recipe.gen_frames,
        "frame_rate": recipe.gen_fps,
        "max_sequence_length": recipe.max_sequence_length,
        "use_cross_timestep": _sampling(recipe).use_cross_timestep,
        "generator": generator,
    }


def stage1_arguments(recipe: Recipe) -> dict[str, Any]:
    """Stage 1's (or the only stage's) sampler, at its size.

    The audio branch uses the video's STG, modality and rescale settings; its CFG scale is
    ``audio_guidance_scale`` when set (LTX recommends a higher one for audio).
    """
    sampling = _sampling(recipe)
    width, height = recipe.stage1_size
    return {
        "height": height,
        "width": width,
        "num_inference_steps": recipe.steps,
        "sigmas": list(sampling.sigmas) if sampling.sigmas else None,
        **guidance_arguments(
            recipe.guidance_scale,
            sampling.audio_guidance_scale or recipe.guidance_scale,
            sampling.guidance_rescale,
            sampling.stg_scale,
            sampling.stg_blocks,
            sampling.modality_scale,
        ),
    }


def stage2_arguments(recipe: Recipe) -> dict[str, Any]:
    """The distilled refinement: a few fixed sigmas, no guidance of any kind."""
    sampling = _sampling(recipe)
    return {
        "height": recipe.gen_height,
        "width": recipe.gen_width,
        "num_inference_steps": sampling.stage2_steps,
        "sigmas": list(sampling.stage2_sigmas) if sampling.stage2_sigmas else None,
        "noise_scale": sampling.stage2_noise_scale,
        **guidance_arguments(1.0, 1.0, 0.0, 0.0, (), 1.0),
    }


def guidance_arguments(
    cfg: float, audio_cfg: float, rescale: float, stg: float, stg_blocks: tuple[int, ...], modality: float
) -> dict[str, Any]:
    """Both modalities' CFG, STG, modality guidance and rescale (diffusers' defaults are not off)."""
    return {
        "guidance_scale": cfg,
        "audio_guidance_scale": audio_cfg,
        "guidance_rescale": rescale,
        "audio_guidance_rescale": rescale,
        "stg_scale": stg,
        "audio_stg_scale": stg,
        "spatio_temporal_guidance_blocks": list(stg_blocks) or None,
        "modality_scale": modality,
        "audio_modality_scale": modality,
    }


def conditioning_arguments(
    task: VideoTask, recipe: Recipe, width: int, height: int, stage: int = 1
) -> dict[str, Any]:
    """The first (and last) frame images, fitted to ``width`` x ``height``, as pipeline arguments.

    Stage 2 of image to video runs the condition pipeline with the first frame at index 0
    (:data:`STAGE_2_PIPELINE`), which encodes it again at the full size, as the reference
    does; the image-to-video pipeline would keep stage 1's upsampled half-size latent.
    """
    if recipe.pipeline == "t2v":
        return {}
    first = load_frame(require_image(task.first_frame, "first_frame"), recipe.aspect_ratio, width, height)
    if recipe.pipeline == "i2v":
        return {"image": first} if stage == 1 else {"conditions": [LTX2VideoCondition(frames=first, index=0)]}
    last = load_frame(require_image(task.last_frame, "last_frame"), recipe.aspect_ratio, width, height)
    conditions = [LTX2VideoCondition(frames=first, index=0), LTX2VideoCondition(frames=last, index=-1)]
    return {"conditions": conditions}


def audio_to_numpy(audio: torch.Tensor) -> Audio:
    """Vocoder output ``[channels, samples]`` to float32 numpy in -1..1; NaN samples (random
    weights make them, a real vocoder may) become silence and infinities full scale, with a
    warning, since the AAC encoder refuses them."""
    samples = audio.float()
    bad = int((~torch.isfinite(samples)).sum())
    if bad:
        log.warning("%d non-finite audio samples of %d replaced (NaN by silence, inf by full scale)",
                    bad, samples.numel())
        samples = torch.nan_to_num(samples, nan=0.0, posinf=1.0, neginf=-1.0)
    return samples.clamp(-1.0, 1.0).cpu().numpy()
