"""Wan 2.x behind the :class:`~takeone.models.base.VideoModel` contract (profile ``wan-2.2``).

Three checkpoints serve the three kinds (see :mod:`.profile`): I2V-A14B (``i2v``),
T2V-A14B (``t2v``) and Wan 2.1 FLF2V-14B (``condition``, first and last frame). They all ship
the same UMT5-XXL text encoder, tokenizer and Wan 2.1 VAE, so those are loaded once, with the
I2V checkpoint, and handed to the other two pipelines; each of those then loads only its own
transformer(s), scheduler and (FLF2V) CLIP image encoder.

Memory, bf16 weights (VAE and CLIP image encoder float32, as Wan's own scripts run them):

============================  ==========  =====================================
part                          size        loaded
============================  ==========  =====================================
UMT5-XXL text encoder         ~11 GB      at start, shared
Wan 2.1 VAE                   ~0.5 GB     at start, shared
I2V-A14B experts (2 x 14B)    ~57 GB      at start
T2V-A14B experts (2 x 14B)    ~57 GB      on the first text-only request
FLF2V-14B + CLIP ViT-H        ~34 GB      on the first first-and-last-frame task
============================  ==========  =====================================

All three together are ~160 GB: more than one 80 GB GPU holds. On CUDA the model therefore
keeps weights in host RAM and uses diffusers' model CPU offload, which moves one component
(one 14B expert at a time) onto the GPU while it runs: GPU peak is one expert plus
activations; the transfers cost seconds per video against minutes of denoising. Host RAM must
hold every checkpoint that traffic has touched (up to ~160 GB; pass ``preload`` to pay the
loading time at start instead of on a first task). A lazy load happens inside the job that
needs it and takes minutes for real weights; its progress callback is silent meanwhile.

A model serves one job at a time (pipelines keep per-call state on themselves).

Example::

    model = WanModel(WanSources.locate(REPOS, None), device, wan_dtype(device), offload=True)
    video = model.generate(task, recipe, progress=print, should_cancel=lambda: False)
"""

from __future__ import annotations

from collections.abc import Generator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import torch
from diffusers import WanImageToVideoPipeline, WanPipeline

from takeone.core.errors import GenerationFailed, JobCancelled, TakeoneError
from takeone.core.task import VideoTask
from takeone.models.base import CancelFn, Frames, ProgressFn, Video, VideoModel
from takeone.models.family_helpers import (
    as_takeone_error,
    choose_seed,
    guarded_stream,
    load_frame,
    require_image,
    seeded_generator,
    step_callback,
)
from takeone.models.recipe import Recipe
from takeone.models.wan.decode import (
    wan_denormalized,
    wan_frame_chunks,
    wan_frame_count,
)
from takeone.models.wan.recipe import WanSampling, expert_guidance

if TYPE_CHECKING:
    from takeone.models.wan.load import WanSources

# diffusers' pipelines are untyped (their attributes come from ``register_modules``): ``Any``.
Pipeline = Any
PIPELINES: Mapping[str, Any] = {
    "i2v": WanImageToVideoPipeline,
    "t2v": WanPipeline,
    "condition": WanImageToVideoPipeline,
}
BASE = "i2v"  # the checkpoint loaded first; its shared parts serve the others
SHARED = ("tokenizer", "text_encoder", "vae")
Dtype = torch.dtype | Mapping[str, torch.dtype]


class WanModel(VideoModel):
    """The Wan family: up to three pipelines over one shared text encoder and VAE.

    The I2V checkpoint loads on construction; ``t2v`` and ``condition`` load on first use
    unless named in ``preload``. ``offload`` keeps weights in host RAM and moves each
    component onto ``device`` only while it runs (needed on one GPU, see the module notes).
    """

    def __init__(
        self,
        sources: WanSources,
        device: torch.device,
        dtype: Dtype = torch.float32,
        offload: bool = False,
        preload: Iterable[str] = (),
    ) -> None:
        self.sources = sources
        self.device = device
        self.dtype = dtype
        self.offload = offload
        self.pipelines: dict[str, Pipeline] = {}
        self._placed: str | None = None
        for name in (BASE, *preload):
            self.pipeline(name)

    def pipeline(self, name: str) -> Pipeline:
        """The pipeline ``name``, loading its checkpoint on first use."""
        if name not in self.pipelines:
            self.pipelines[name] = self._load(name)
        return self.pipelines[name]

    def load_all(self) -> None:
        """Load every pipeline now: a worker group splits each transformer before its first job."""
        for name in PIPELINES:
            self.pipeline(name)

    def generate(
        self, task: VideoTask, recipe: Recipe, progress: ProgressFn, should_cancel: CancelFn
    ) -> Video:
        """Run ``recipe.pipeline`` for ``task``; errors surface as ``takeone.core.errors`` classes."""
        if not isinstance(recipe.sampling, WanSampling) or recipe.pipeline not in PIPELINES or recipe.audio:
            wanted = f"{recipe.family} {recipe.pipeline!r} recipe (audio={recipe.audio})"
            raise GenerationFailed(f"Wan cannot run a {wanted}")
        if should_cancel():
            raise JobCancelled()
        seed = choose_seed(task.seed)
        try:
            pipe = self._ready(recipe)
            output = pipe(**arguments(task, recipe, seed, progress, should_cancel))
            latents = wan_denormalized(pipe.vae, output.frames)
        except TakeoneError:
            raise
        except Exception as exc:
            raise as_takeone_error(exc, self.device, f"Wan {recipe.pipeline} generation") from exc
        frames = guarded_stream(
            wan_frame_count(pipe.vae, latents),
            self._decoded(pipe, latents),
            self.device,
            f"Wan {recipe.pipeline} decode",
            should_cancel,
        )
        return Video(frames=frames, fps=recipe.gen_fps, audio=None, sample_rate=0, seed=seed)

    def _decoded(self, pipe: Pipeline, latents: torch.Tensor) -> Generator[Frames, None, None]:
        """The streamed decode; with offloading, the VAE goes back to host RAM afterwards."""
        try:
            yield from wan_frame_chunks(pipe, latents)
        finally:
            if self.offload:
                pipe.maybe_free_model_hooks()

    def _load(self, name: str) -> Pipeline:
        shared = {part: self.pipelines[BASE].components[part] for part in SHARED} if self.pipelines else {}
        # Passed components are neither read nor downloaded: the shared weights exist once.
        pipe = PIPELINES[name].from_pretrained(
            self.sources.repos[name], dtype=self.dtype, **shared, **self.sources.load_arguments(name)
        )
        pipe.set_progress_bar_config(disable=True)
        if not self.offload:
            pipe.to(self.device)
        return pipe

    def _ready(self, recipe: Recipe) -> Pipeline:
        """Load the recipe's pipeline, set its expert switch point and put it on the device."""
        pipe = self.pipeline(recipe.pipeline)
        assert isinstance(recipe.sampling, WanSampling)  # checked by generate
        apply_boundary(pipe, recipe.sampling.boundary_ratio)
        apply_flow_shift(pipe, recipe.sampling.flow_shift)
        if self.offload and self._placed != recipe.pipeline:
            # Re-hook for this pipeline's components (shared ones included) before it runs.
            pipe.enable_model_cpu_offload(device=self.device)
            self._placed = recipe.pipeline
        return pipe


def apply_boundary(pipe: Pipeline, ratio: float | None) -> None:
    """Make the pipeline switch experts where the recipe says (``None``: the checkpoint's own)."""
    if ratio is None or pipe.config.boundary_ratio == ratio:
        return
    if getattr(pipe, "transformer_2", None) is None:
        raise GenerationFailed(f"the recipe switches experts at {ratio}, but this checkpoint has one expert")
    pipe.register_to_config(boundary_ratio=ratio)


def apply_flow_shift(pipe: Pipeline, shift: float | None) -> None:
    """Give the pipeline a scheduler with the recipe's flow shift (``None``: the checkpoint's)."""
    if shift is None or pipe.scheduler.config.get("flow_shift") == shift:
        return
    pipe.scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config, flow_shift=shift)


def arguments(
    task: VideoTask, recipe: Recipe, seed: int, progress: ProgressFn, should_cancel: CancelFn
) -> dict[str, Any]:
    """Every pipeline keyword argument for one generation (Wan has no frame-rate input: it
    always runs at its trained 16 fps, and the recipe's frame count encodes that)."""
    return {
        "prompt": task.prompt,
        "negative_prompt": recipe.negative_prompt,
        "height": recipe.gen_height,
        "width": recipe.gen_width,
        "num_frames": recipe.gen_frames,
        "num_inference_steps": recipe.steps,
        **guidance_arguments(recipe),
        "max_sequence_length": recipe.max_sequence_length,
        "generator": seeded_generator(seed),
        "callback_on_step_end": step_callback(progress, should_cancel),
        "output_type": "latent",
        "return_dict": True,
        **conditioning(task, recipe),
    }


def guidance_arguments(recipe: Recipe) -> dict[str, Any]:
    """``guidance_scale`` and, for two-expert recipes with per-expert scales, ``guidance_scale_2``."""
    high, low = expert_guidance(recipe)
    return {"guidance_scale": high} if low is None else {"guidance_scale": high, "guidance_scale_2": low}


def conditioning(task: VideoTask, recipe: Recipe) -> dict[str, Any]:
    """First (and last) frame, center-cropped to the aspect ratio and scaled to the generation size."""
    if recipe.pipeline == "t2v":
        return {}
    size = (recipe.aspect_ratio, recipe.gen_width, recipe.gen_height)
    first = load_frame(require_image(task.first_frame, "first_frame"), *size)
    if recipe.pipeline == "i2v":
        return {"image": first}
    return {"image": first, "last_image": load_frame(require_image(task.last_frame, "last_frame"), *size)}
