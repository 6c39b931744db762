"""Model profiles: which open-weight model serves each Kling request, and with which recipe.

A *profile* is a deployment choice (one model family, one set of weights, one license). Its
:meth:`Profile.recipe_for` turns a validated :class:`~takeone.generation.GenerationRequest`
into a :class:`Recipe`: the exact pipeline, generation size, frame count, steps and guidance,
and the exact output size, frame rate and frame count the client receives. The API process
imports this module to reject requests a profile cannot serve before queueing them, so it
must stay free of torch, numpy and diffusers.

Kling semantics shared by every profile:

- ``kling-2.1`` is image-to-video: ``image`` is required; with ``image_tail`` the video runs
  from the first to the last frame (pipeline ``condition``). Modes ``std``, ``pro``,
  ``master``. It never has an audio track.
- ``kling-2.6`` (mode ``pro``) is text-to-video, or image-to-video with ``image``; no last
  frame. It has an audio track exactly when ``generate_audio`` is true.
- Output is 24 fps; 5 s is 121 frames (5.04 s) and 10 s is 241 frames (10.04 s), the
  ``8k + 1`` counts LTX-2 generates natively.
- ``cfg_scale`` (0..1) maps linearly onto the quality's guidance range:
  ``guidance = low + cfg_scale * (high - low)``. Step-distilled recipes have
  ``low == high == 1`` and so ignore it.

Example::

    recipe = get_profile("tiny").recipe_for(GenerationRequest(endpoint="kling-2.6", prompt="fox"))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from takeone.errors import InvalidRequest
from takeone.generation import ASPECT_RATIOS, DURATIONS, GenerationRequest
from takeone.models.ltx2_profile import ltx2_profile
from takeone.models.speedups import Speedups
from takeone.models.wan_profile import wan_22_profile

OUTPUT_FPS = 24
OUTPUT_FRAMES = {5: 121, 10: 241}
KLING_MODES: Mapping[str, tuple[str, ...]] = {
    "kling-2.1": ("std", "pro", "master"),
    "kling-2.6": ("pro",),
}


@dataclass(frozen=True)
class WeightSource:
    """One component's weights: a folder (``subfolder``) or one file (``filename``) of a repo.

    ``gib`` is its size in memory at the serving dtype (bf16), used to check that a profile
    fits on a card before loading. Example: ``WeightSource("vae", "Lightricks/LTX-2", "vae", 1.5)``.
    """

    component: str
    repo: str
    subfolder: str | None = None
    gib: float = 0.0
    filename: str | None = None

    @property
    def path(self) -> str:
        """The folder or file inside the repo (``""`` for the whole repo)."""
        return self.filename or self.subfolder or ""


@dataclass(frozen=True)
class Recipe:
    """Everything the worker needs to run one generation and deliver the video.

    ``gen_*`` describe what the model generates; ``output_*`` what the client receives. The
    generation size is the nearest model-valid size of the output's aspect ratio; the render
    step picks the nearest frame in time and scales to the exact output size (undoing the
    small stretch, since conditioning images were scaled the other way). ``gen_fps`` is
    passed to the pipeline as its frame rate, so the generated audio lasts
    ``gen_frames / gen_fps`` ~= ``output_duration_s``. The sampler knobs after ``license``
    default to plain sampling (no STG, no modality guidance, no rescale, the pipeline's own
    sigmas), which is what the tiny and distilled recipes use.
    """

    family: str
    pipeline: str  # "t2v" | "i2v" | "condition"
    steps: int
    gen_width: int
    gen_height: int
    gen_frames: int
    gen_fps: float
    output_width: int
    output_height: int
    output_fps: int
    output_frames: int
    audio: bool
    guidance_scale: float
    weights: str
    license: str
    audio_guidance_scale: float | None = None  # None: same as guidance_scale
    guidance_rescale: float = 0.0
    stg_scale: float = 0.0
    stg_blocks: tuple[int, ...] = ()
    modality_scale: float = 1.0
    sigmas: tuple[float, ...] | None = None
    max_sequence_length: int = 1024
    use_cross_timestep: bool = True
    boundary_ratio: float | None = None  # two-expert Wan: switch to transformer_2 below this t/1000
    # Two-stage recipes (LTX-2): stage 1 at half the generation size, a 2x latent upsample,
    # then ``stage2_steps`` steps at the generation size re-noised to ``stage2_noise_scale``.
    # ``stage1_transformer`` names the component that runs stage 1 (or the only stage);
    # stage 2 always runs ``transformer``. Sigmas given here are used as they are (no shift).
    two_stage: bool = False
    stage1_transformer: str = "transformer"
    stage2_steps: int = 0
    stage2_sigmas: tuple[float, ...] | None = None
    stage2_noise_scale: float = 0.0
    vae_tiling: bool = False  # decode in tiles: bounds VAE memory at 1080p and for 10 s clips

    @property
    def output_duration_s(self) -> float:
        return self.output_frames / self.output_fps

    @property
    def total_steps(self) -> int:
        """Denoising steps over all stages: what progress reports count up to."""
        return self.steps + (self.stage2_steps if self.two_stage else 0)

    @property
    def stage1_size(self) -> tuple[int, int]:
        """``(width, height)`` of the first (or only) denoising stage."""
        if self.two_stage:
            return self.gen_width // 2, self.gen_height // 2
        return self.gen_width, self.gen_height


@dataclass(frozen=True)
class Quality:
    """What one (endpoint, mode) pair gets: steps, guidance range and sizes per aspect ratio.

    ``sizes`` maps an aspect ratio to ``(gen_width, gen_height, output_width, output_height)``.
    ``recipe_fields`` sets further :class:`Recipe` fields (sigmas, STG, two-stage...) on
    every recipe of this quality, so a family's sampler knobs need no new Quality field.
    """

    steps: int
    sizes: Mapping[str, tuple[int, int, int, int]]
    guidance_range: tuple[float, float] = (1.0, 1.0)
    recipe_fields: Mapping[str, Any] = field(default_factory=dict)

    def guidance(self, cfg_scale: float) -> float:
        low, high = self.guidance_range
        return low + min(max(cfg_scale, 0.0), 1.0) * (high - low)


@dataclass(frozen=True)
class Profile:
    """One deployable model choice: its weights, license and per-case recipes.

    ``qualities`` is keyed by ``(endpoint, mode)``; a missing key means the profile does not
    serve that mode. ``gen_frames`` maps a duration in seconds to the generated frame count
    (``8k + 1``). ``weights`` names where the loader gets the components: a Hugging Face repo
    id, a local directory, or ``builtin:<name>`` for components built in-process.
    """

    name: str
    family: str
    license: str
    description: str
    weights: str
    qualities: Mapping[tuple[str, str], Quality]
    gen_frames: Mapping[int, int]
    has_audio: bool = True
    max_sequence_length: int = 1024
    # Per pipeline ("t2v", "i2v", "condition"): another checkpoint than ``weights``, and
    # the two-expert switch point (Wan 2.2 A14B); missing keys mean ``weights`` / none.
    pipeline_weights: Mapping[str, str] = field(default_factory=dict)
    boundary_ratios: Mapping[str, float] = field(default_factory=dict)
    # Exactly which files the loader reads (see takeone.models.weights); empty for built-ins.
    sources: tuple[WeightSource, ...] = ()
    # GPU memory: "none" keeps every component on the card, "group" streams the large ones
    # from host RAM, "auto" streams only what does not fit. ``activation_gib`` is the
    # headroom a job needs beside the weights. Recipes over ``vae_tiling_above`` generated
    # pixels x frames decode in tiles (when ``speedups.vae_tiling`` is "auto").
    offload: str = "auto"
    activation_gib: float = 0.0
    vae_tiling_above: int | None = None
    # GPU speed-ups (compile, fp8, attention backend, VAE tiling, feature cache); all off
    # by default. See takeone.models.speedups.
    speedups: Speedups = field(default_factory=Speedups)

    def recipe_for(self, request: GenerationRequest) -> Recipe:
        """Pick the recipe for ``request``; raise ``InvalidRequest`` naming the field if unservable."""
        quality = self._quality(request)
        pipeline = pipeline_for(request)
        audio = wants_audio(request)
        if audio and not self.has_audio:
            reason = (
                f"profile {self.name!r} makes silent videos only; "
                "send generate_audio: false (kling-2.6 defaults to true)"
            )
            raise InvalidRequest("generate_audio", True, reason)
        gen_w, gen_h, out_w, out_h = quality.sizes[_aspect(request, quality)]
        gen_frames, out_frames = self._frames(request)
        guidance = quality.guidance(request.cfg_scale)
        recipe = Recipe(
            family=self.family,
            pipeline=pipeline,
            steps=quality.steps,
            gen_width=gen_w,
            gen_height=gen_h,
            gen_frames=gen_frames,
            gen_fps=gen_frames * OUTPUT_FPS / out_frames,
            output_width=out_w,
            output_height=out_h,
            output_fps=OUTPUT_FPS,
            output_frames=out_frames,
            audio=audio,
            guidance_scale=guidance,
            weights=self.pipeline_weights.get(pipeline, self.weights),
            license=self.license,
            max_sequence_length=self.max_sequence_length,
            boundary_ratio=self.boundary_ratios.get(pipeline),
        )
        return self._tuned(recipe, quality)

    def _tuned(self, recipe: Recipe, quality: Quality) -> Recipe:
        """Apply the quality's sampler fields and this profile's VAE tiling choice."""
        return dataclasses.replace(recipe, **{"vae_tiling": self._tiled(recipe), **quality.recipe_fields})

    def _tiled(self, recipe: Recipe) -> bool:
        """``speedups.vae_tiling`` "on"/"off" force it; "auto" tiles above ``vae_tiling_above``
        generated pixels x frames, where a one-pass decode would not fit beside the weights."""
        if self.speedups.vae_tiling != "auto":
            return self.speedups.vae_tiling == "on"
        pixels = recipe.gen_width * recipe.gen_height * recipe.gen_frames
        return self.vae_tiling_above is not None and pixels > self.vae_tiling_above

    def scaled(
        self,
        sizes: Mapping[str, tuple[int, int, int, int]],
        gen_frames: Mapping[int, int],
        max_sequence_length: int | None = None,
        recipe_fields: Mapping[str, Any] | None = None,
    ) -> Profile:
        """The same profile at a size a CPU test can afford.

        Pipelines, stages, steps, sigmas, guidance, conditioning and weights stay as they are;
        only the sizes, frame counts and prompt length shrink, and ``recipe_fields`` may adapt
        what depends on the model's depth (e.g. STG blocks of a 2-layer test transformer).
        Real sizes are checked on the unscaled recipe tables.
        """
        extra = dict(recipe_fields or {})
        qualities = {
            key: dataclasses.replace(quality, sizes=sizes, recipe_fields={**quality.recipe_fields, **extra})
            for key, quality in self.qualities.items()
        }
        length = max_sequence_length or self.max_sequence_length
        return dataclasses.replace(self, qualities=qualities, gen_frames=gen_frames, max_sequence_length=length)

    def _quality(self, request: GenerationRequest) -> Quality:
        modes = KLING_MODES.get(request.endpoint)
        if modes is None:
            raise InvalidRequest("endpoint", request.endpoint, f"must be one of {', '.join(KLING_MODES)}")
        if request.mode not in modes:
            raise InvalidRequest("mode", request.mode, f"{request.endpoint} supports {', '.join(modes)}")
        quality = self.qualities.get((request.endpoint, request.mode))
        if quality is None:
            raise InvalidRequest("mode", request.mode, f"profile {self.name!r} does not serve this mode")
        return quality

    def _frames(self, request: GenerationRequest) -> tuple[int, int]:
        if request.duration not in DURATIONS or request.duration not in self.gen_frames:
            allowed = ", ".join(str(d) for d in DURATIONS)
            raise InvalidRequest("duration", request.duration, f"must be one of {allowed}")
        return self.gen_frames[request.duration], OUTPUT_FRAMES[request.duration]


def pipeline_for(request: GenerationRequest) -> str:
    """Which conditioning a Kling request needs: ``t2v``, ``i2v`` or ``condition`` (first+last)."""
    if request.endpoint == "kling-2.1":
        if not request.has_image:
            raise InvalidRequest("image", None, "kling-2.1 is image-to-video: an image is required")
        return "condition" if request.has_last_frame else "i2v"
    if request.has_last_frame:
        raise InvalidRequest("image_tail", "<image>", f"{request.endpoint} does not take a last frame")
    return "i2v" if request.has_image else "t2v"


def wants_audio(request: GenerationRequest) -> bool:
    """Only kling-2.6 delivers audio, and only when asked; kling-2.1 videos are always silent."""
    return request.endpoint == "kling-2.6" and request.generate_audio


def _aspect(request: GenerationRequest, quality: Quality) -> str:
    if request.aspect_ratio not in ASPECT_RATIOS or request.aspect_ratio not in quality.sizes:
        allowed = ", ".join(ASPECT_RATIOS)
        raise InvalidRequest("aspect_ratio", request.aspect_ratio, f"must be one of {allowed}")
    return request.aspect_ratio


# The tiny profile: random weights built in-process (see takeone.models.tiny). It generates at
# 32x compression on a 160x96-class canvas and at about 3.4 fps (17 frames for 5 s, 33 for
# 10 s) so that a whole clip costs a fraction of a second on CPU; the render step then
# resamples to the same 24 fps output real profiles deliver.
_TINY_SIZES = {
    "16:9": (160, 96, 256, 144),
    "9:16": (96, 160, 144, 256),
    "1:1": (96, 96, 144, 144),
}
_TINY_GUIDANCE = (1.0, 3.0)
TINY = Profile(
    name="tiny",
    family="ltx2",
    license="Apache-2.0 (random weights, for tests only)",
    description="Tiny random-weight LTX-2 built in-process: real pipelines, meaningless pixels.",
    weights="builtin:tiny-ltx2",
    qualities={
        ("kling-2.1", "std"): Quality(2, _TINY_SIZES, _TINY_GUIDANCE),
        ("kling-2.1", "pro"): Quality(3, _TINY_SIZES, _TINY_GUIDANCE),
        ("kling-2.1", "master"): Quality(4, _TINY_SIZES, _TINY_GUIDANCE),
        ("kling-2.6", "pro"): Quality(3, _TINY_SIZES, _TINY_GUIDANCE),
    },
    gen_frames={5: 17, 10: 33},
    max_sequence_length=32,
)

PROFILES: Mapping[str, Profile] = {
    profile.name: profile for profile in (ltx2_profile(), TINY, wan_22_profile())
}


def get_profile(name: str) -> Profile:
    """The registered profile called ``name``; a ``ValueError`` lists the known ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown model profile {name!r}; known profiles: {known}") from None
