"""Model profiles: which open-weight model serves each video task, and with which recipe.

A *profile* is a deployment choice (one model family, one set of weights, one license). Its
:meth:`Profile.recipe_for` turns a :class:`~takeone.core.task.VideoTask` into a
:class:`Recipe`: the exact pipeline, generation size, frame count, steps and guidance, and
the exact output size, frame rate and frame count the client receives. The API process
imports this module to reject tasks a profile cannot serve before queueing them, so it must
stay free of torch, numpy and diffusers.

Rules shared by every profile:

- ``t2v`` runs the text-to-video pipeline, ``i2v`` the image-to-video one, and ``flf2v``
  (first and last frame) the ``condition`` pipeline.
- A profile serves the tiers it has a :class:`Quality` for, the durations in its
  ``gen_frames`` table and the sizes in each quality's table; anything else is an
  ``InvalidRequest`` naming the task field (the dialect renames it to its own).
- Output is 24 fps; ``s`` seconds are ``24 s + 1`` frames (121 for 5 s, 241 for 10 s), the
  ``8k + 1`` counts LTX-2 generates natively.
- ``guidance`` (0..1) maps linearly onto the tier's guidance range:
  ``guidance = low + task.guidance * (high - low)``. Step-distilled recipes have
  ``low == high == 1`` and so ignore it.

Example::

    recipe = get_profile("tiny").recipe_for(VideoTask(kind="t2v", prompt="fox"))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from takeone.core.errors import InvalidRequest
from takeone.core.task import Tier, VideoTask
from takeone.models.ltx2_profile import ltx2_profile
from takeone.models.speedups import Speedups
from takeone.models.wan_profile import wan_22_profile

OUTPUT_FPS = 24
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
PIPELINE_OF_KIND: Mapping[str, str] = {"t2v": "t2v", "i2v": "i2v", "flf2v": "condition"}


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
    def aspect_ratio(self) -> str:
        """The output's ``"W:H"``: conditioning images are center-cropped to it."""
        return f"{self.output_width}:{self.output_height}"

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
    """What one tier gets: steps, guidance range and sizes per aspect ratio.

    ``sizes`` maps an aspect ratio to ``(gen_width, gen_height, output_width, output_height)``.
    ``recipe_fields`` sets further :class:`Recipe` fields (sigmas, STG, two-stage...) on
    every recipe of this quality, so a family's sampler knobs need no new Quality field.
    """

    steps: int
    sizes: Mapping[str, tuple[int, int, int, int]]
    guidance_range: tuple[float, float] = (1.0, 1.0)
    recipe_fields: Mapping[str, Any] = field(default_factory=dict)

    def guidance(self, position: float) -> float:
        """The guidance scale at ``position`` (0..1) of this tier's range."""
        low, high = self.guidance_range
        return low + min(max(position, 0.0), 1.0) * (high - low)

    def size_for(self, task: VideoTask) -> tuple[int, int, int, int]:
        """``(gen_w, gen_h, out_w, out_h)`` for the task's aspect ratio or exact size."""
        if task.size is not None:
            return self._by_size(task.size)
        if task.aspect_ratio not in self.sizes:
            allowed = ", ".join(a for a in ASPECT_RATIOS if a in self.sizes)
            raise InvalidRequest("aspect_ratio", task.aspect_ratio, f"must be one of {allowed}")
        return self.sizes[task.aspect_ratio]

    def output_sizes(self) -> list[str]:
        """The exact output sizes this tier serves, as ``WIDTHxHEIGHT``."""
        return [f"{s[2]}x{s[3]}" for s in self.sizes.values()]

    def _by_size(self, size: str) -> tuple[int, int, int, int]:
        for entry in self.sizes.values():
            if f"{entry[2]}x{entry[3]}" == size:
                return entry
        raise InvalidRequest("size", size, f"must be one of {', '.join(self.output_sizes())}")


@dataclass(frozen=True)
class Profile:
    """One deployable model choice: its weights, license and per-case recipes.

    ``qualities`` is keyed by tier; a missing key means the profile does not serve that
    tier. ``gen_frames`` maps a duration in seconds to the generated frame count
    (``8k + 1``). ``weights`` names where the loader gets the components: a Hugging Face repo
    id, a local directory, or ``builtin:<name>`` for components built in-process.
    """

    name: str
    family: str
    license: str
    description: str
    weights: str
    qualities: Mapping[Tier, Quality]
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

    def recipe_for(self, task: VideoTask) -> Recipe:
        """Pick the recipe for ``task``; raise ``InvalidRequest`` naming the task field if unservable."""
        quality = self._quality(task)
        pipeline = PIPELINE_OF_KIND[task.kind]
        if task.audio and not self.has_audio:
            raise InvalidRequest("audio", True, f"profile {self.name!r} makes silent videos only")
        gen_w, gen_h, out_w, out_h = quality.size_for(task)
        gen_frames, out_frames = self._frames(task)
        guidance = quality.guidance(task.guidance)
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
            audio=task.audio,
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

    def _quality(self, task: VideoTask) -> Quality:
        quality = self.qualities.get(task.tier)
        if quality is None:
            served = ", ".join(self.qualities)
            raise InvalidRequest("tier", task.tier, f"profile {self.name!r} serves {served}")
        return quality

    def _frames(self, task: VideoTask) -> tuple[int, int]:
        if task.fps != OUTPUT_FPS:
            raise InvalidRequest("fps", task.fps, f"must be {OUTPUT_FPS}")
        if task.seconds not in self.gen_frames:
            allowed = ", ".join(str(d) for d in self.durations())
            raise InvalidRequest("seconds", task.seconds, f"must be one of {allowed}")
        return self.gen_frames[task.seconds], task.seconds * OUTPUT_FPS + 1

    def durations(self) -> tuple[int, ...]:
        """The clip lengths in seconds this profile serves."""
        return tuple(sorted(self.gen_frames))


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
        "fast": Quality(2, _TINY_SIZES, _TINY_GUIDANCE),
        "standard": Quality(3, _TINY_SIZES, _TINY_GUIDANCE),
        "quality": Quality(4, _TINY_SIZES, _TINY_GUIDANCE),
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
