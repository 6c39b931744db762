"""What every profile is made of, free of torch: weights, tiers, recipes and speed-up choices.

A *profile* (:class:`Profile`) is a deployment choice: one model family, one set of weights,
one license. :meth:`Profile.recipe_for` turns a :class:`~takeone.core.task.VideoTask` into a
:class:`Recipe`: the exact pipeline, generation size, frame count, steps and guidance, the
exact output size, frame rate and frame count the client receives, and one typed,
family-specific :class:`Sampling` part (LTX-2's stages and guidance terms, Wan's experts).
The API process imports this module to refuse tasks a profile cannot serve before queueing
them, so it imports neither torch, numpy nor diffusers.

Rules shared by every profile:

- ``t2v`` runs the text-to-video pipeline, ``i2v`` the image-to-video one, and ``flf2v``
  (first and last frame) the ``condition`` pipeline.
- A profile serves the tiers it has a :class:`Quality` for, the seconds of its
  :class:`SecondsRange` (every ``step`` seconds from ``low`` to ``high``) and the sizes in each
  quality's table; anything else is an ``InvalidRequest`` naming the task field (the dialect
  renames it to its own).
- Memory: a quality may cap the latent tokens of one clip (``max_tokens``); a longer clip at
  that size is an ``InvalidRequest`` naming ``seconds`` that states the longest one served.
  :meth:`Profile.max_seconds` gives the cap per tier and generation size.
- Output is at the profile's ``output_fps`` (24, or 16 for Wan A14B, whose content is 16 fps:
  repeating frames to reach 24 would judder); ``s`` seconds are ``fps * s + 1`` frames (121 for
  5 s at 24 fps). A task may leave ``fps`` unset (the profile's rate) or ask for exactly it.
- ``guidance`` (0..1) maps linearly onto the tier's guidance range:
  ``guidance = low + task.guidance * (high - low)``. Step-distilled recipes have
  ``low == high == 1`` and so ignore it.

Example::

    recipe = get_profile("tiny").recipe_for(VideoTask(kind="t2v", prompt="fox"))
    recipe.sampling        # Ltx2Sampling(...): the family's own knobs, typed
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from takeone.core.errors import InvalidRequest
from takeone.core.task import TaskKind, Tier, VideoTask

OUTPUT_FPS = 24
ASPECT_RATIOS = ("16:9", "9:16", "1:1")
PipelineKind = Literal["t2v", "i2v", "condition"]
PIPELINE_OF_KIND: Mapping[TaskKind, PipelineKind] = {"t2v": "t2v", "i2v": "i2v", "flf2v": "condition"}
Size = tuple[int, int, int, int]
"""``(gen_width, gen_height, output_width, output_height)``."""
COMPILE_MODES = ("off", "regional")
VAE_TILING_MODES = ("auto", "on", "off")
CACHE_KINDS = (None, "first_block", "taylorseer")
OFFLOAD_MODES = ("none", "auto", "group")


@dataclass(frozen=True)
class WeightSource:
    """One component's weights: a folder (``subfolder``) or one file (``filename``) of a repo.

    ``gib`` is its size in memory at the serving dtype (bf16), used to check that a profile
    fits on a card before loading. ``revision`` pins the repo's commit (``None``: unpinned,
    the branch head when pulled and whatever snapshot the cache's ``refs/main`` names when
    loaded). Example: ``WeightSource("vae", "Lightricks/LTX-2", "vae", 1.5)``.
    """

    component: str
    repo: str
    subfolder: str | None = None
    gib: float = 0.0
    filename: str | None = None
    revision: str | None = None

    @property
    def path(self) -> str:
        """The folder or file inside the repo (``""`` for the whole repo)."""
        return self.filename or self.subfolder or ""


@dataclass(frozen=True)
class Speedups:
    """Which GPU speed-ups a profile's model gets; the defaults are all off (the plain pipelines).

    ``compile="regional"`` compiles the repeated transformer block; ``fp8`` quantizes the
    blocks' linear layers; ``attention_backend`` picks diffusers' attention backend
    (``"auto"``: the fastest installed); ``vae_tiling`` is ``auto``/``on``/``off``; ``cache``
    is a feature cache on the guided stage. ``cache_threshold`` is FirstBlockCache's relative
    residual change below which the other blocks are skipped; ``cache_interval`` is how many
    TaylorSeer steps share one full pass after the first ``cache_warmup_steps`` full steps.
    How a family applies them is its own (see :mod:`takeone.models.ltx2.speedups`).

    Example::

        Speedups(compile="regional", compile_backend="aot_eager")  # a cheap CPU check
    """

    compile: str = "off"
    compile_backend: str = "inductor"
    compile_mode: str | None = None
    fp8: bool = False
    attention_backend: str | None = None
    vae_tiling: str = "auto"
    cache: str | None = None
    cache_threshold: float = 0.05
    cache_interval: int = 3
    cache_warmup_steps: int = 5

    def __post_init__(self) -> None:
        _check_choice("compile", self.compile, COMPILE_MODES)
        _check_choice("vae_tiling", self.vae_tiling, VAE_TILING_MODES)
        _check_choice("cache", self.cache, CACHE_KINDS)
        if self.cache_interval < 1 or self.cache_warmup_steps < 0 or self.cache_threshold < 0:
            raise ValueError("cache_interval must be >= 1, cache_warmup_steps and cache_threshold >= 0")


def _check_choice(name: str, value: object, allowed: tuple[object, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"Speedups.{name} must be one of {allowed}, not {value!r}")


@dataclass(frozen=True)
class SecondsRange:
    """The clip lengths a profile serves, and the frames it generates for each.

    Every ``step`` seconds from ``low`` to ``high``. ``s`` seconds generate the smallest
    ``frame_multiple * k + 1`` frames covering ``s * gen_fps`` (``gen_fps`` None: the output
    rate), the frame rule of the family's VAE (8k+1 for LTX-2, 4k+1 for Wan). ``latent`` is
    ``(pixels per token side, frames per latent frame)``, for counting a clip's latent tokens.

    Example::

        SecondsRange(1, 20).gen_frames(4, 24)       # 97 (8 * 12 + 1)
        SecondsRange(1, 20, gen_fps=3.2).gen_frames(5, 24)   # 17
    """

    low: int
    high: int
    step: int = 1
    frame_multiple: int = 8
    gen_fps: float | None = None
    latent: tuple[int, int] = (32, 8)

    def __post_init__(self) -> None:
        if not (1 <= self.low <= self.high and self.step >= 1 and self.frame_multiple >= 1):
            raise ValueError(f"bad seconds range {self.low}..{self.high} step {self.step}")

    def seconds(self) -> tuple[int, ...]:
        return tuple(range(self.low, self.high + 1, self.step))

    def gen_frames(self, seconds: int, output_fps: int) -> int:
        wanted = seconds * (self.gen_fps or output_fps)
        return self.frame_multiple * math.ceil(wanted / self.frame_multiple - 1e-9) + 1

    def tokens(self, width: int, height: int, frames: int) -> int:
        """Latent tokens of a ``width`` x ``height`` x ``frames`` clip."""
        spatial, temporal = self.latent
        return (width // spatial) * (height // spatial) * ((frames - 1) // temporal + 1)

    def label(self) -> str:
        every = "" if self.step == 1 else f" every {self.step}"
        return f"{self.low}-{self.high} s{every}"


@dataclass(frozen=True)
class Sampling:
    """A family's own sampler settings for one recipe (subclassed per family, typed).

    The base class is a plain one-stage sampler with the pipeline's own schedule. A family
    overrides :meth:`stages` when it denoises in more than one stage and
    :attr:`stage1_divisor` when the first stage runs at a fraction of the generation size.
    """

    family: ClassVar[str] = "plain"

    def stages(self, steps: int) -> tuple[int, ...]:
        """Steps per denoising stage, first stage first (``steps`` is the first stage's)."""
        return (steps,)

    @property
    def stage1_divisor(self) -> int:
        return 1


@dataclass(frozen=True)
class Recipe:
    """Everything the worker needs to run one generation and deliver the video.

    ``gen_*`` describe what the model generates; ``output_*`` what the client receives. The
    generation size is the nearest model-valid size of the output's aspect ratio; the render
    step scales to the exact output size and spreads the generated frames over the output
    frames. ``gen_fps`` is passed to the pipelines that take a frame rate, so generated
    audio lasts ``gen_frames / gen_fps``. ``negative_prompt`` is the task's, or the profile's
    default when the task gives none. ``sampling`` holds the family's own knobs.

    Example::

        recipe.total_steps, recipe.stage1_size, recipe.sampling.family
    """

    pipeline: PipelineKind
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
    negative_prompt: str = ""
    max_sequence_length: int = 1024
    vae_tiling: bool = False
    sampling: Sampling = field(default_factory=Sampling)

    @property
    def family(self) -> str:
        """The model family whose pipelines run this recipe (``ltx2``, ``wan``)."""
        return self.sampling.family

    @property
    def output_duration_s(self) -> float:
        return self.output_frames / self.output_fps

    @property
    def aspect_ratio(self) -> str:
        """The output's ``"W:H"``: conditioning images are center-cropped to it."""
        return f"{self.output_width}:{self.output_height}"

    @property
    def stage_steps(self) -> tuple[int, ...]:
        """Denoising steps per stage (``(8, 3)`` for a two-stage distilled LTX-2 recipe)."""
        return self.sampling.stages(self.steps)

    @property
    def total_steps(self) -> int:
        """Denoising steps over all stages: what progress reports count up to."""
        return sum(self.stage_steps)

    @property
    def stage1_size(self) -> tuple[int, int]:
        """``(width, height)`` of the first (or only) denoising stage."""
        divisor = self.sampling.stage1_divisor
        return self.gen_width // divisor, self.gen_height // divisor


@dataclass(frozen=True)
class Quality:
    """What one tier gets: steps, guidance range, sizes per aspect ratio and sampler part.

    ``sizes`` maps an aspect ratio to ``(gen_width, gen_height, output_width, output_height)``;
    ``pipeline_sizes`` and ``pipeline_sampling`` override ``sizes`` and ``sampling`` for one
    pipeline (a checkpoint that serves one size only, an expert switch per checkpoint).
    ``weights`` names the checkpoints the tier runs, for the recipe table (``None``: the
    profile's). ``max_tokens`` caps one clip's latent tokens (GPU memory; ``None``: no cap
    below the profile's longest duration).
    """

    steps: int
    sizes: Mapping[str, Size]
    guidance_range: tuple[float, float] = (1.0, 1.0)
    sampling: Sampling = field(default_factory=Sampling)
    weights: str | None = None
    pipeline_sizes: Mapping[str, Mapping[str, Size]] = field(default_factory=dict)
    pipeline_sampling: Mapping[str, Sampling] = field(default_factory=dict)
    max_tokens: int | None = None

    def guidance(self, position: float) -> float:
        """The guidance scale at ``position`` (0..1) of this tier's range."""
        low, high = self.guidance_range
        return low + min(max(position, 0.0), 1.0) * (high - low)

    def sampling_for(self, pipeline: str) -> Sampling:
        return self.pipeline_sampling.get(pipeline, self.sampling)

    def sizes_for(self, pipeline: str) -> Mapping[str, Size]:
        return self.pipeline_sizes.get(pipeline, self.sizes)

    def size_for(self, task: VideoTask, pipeline: str | None = None) -> Size:
        """``(gen_w, gen_h, out_w, out_h)`` for the task's aspect ratio or exact size."""
        sizes = self.sizes_for(pipeline or PIPELINE_OF_KIND[task.kind])
        if task.size is not None:
            return _by_size(sizes, task.size)
        if task.aspect_ratio is None or task.aspect_ratio not in sizes:
            allowed = ", ".join(a for a in ASPECT_RATIOS if a in sizes)
            raise InvalidRequest("aspect_ratio", task.aspect_ratio, f"must be one of {allowed}")
        return sizes[task.aspect_ratio]

    def output_sizes(self) -> list[str]:
        """The exact output sizes this tier serves, as ``WIDTHxHEIGHT``."""
        return _output_sizes(self.sizes)


def _output_sizes(sizes: Mapping[str, Size]) -> list[str]:
    return [f"{s[2]}x{s[3]}" for s in sizes.values()]


def _by_size(sizes: Mapping[str, Size], size: str) -> Size:
    for entry in sizes.values():
        if f"{entry[2]}x{entry[3]}" == size:
            return entry
    raise InvalidRequest("size", size, f"must be one of {', '.join(_output_sizes(sizes))}")


@dataclass(frozen=True)
class Profile:
    """One deployable model choice: its weights, license and per-tier recipes.

    ``family`` is the registry key of the code that loads it (:mod:`.registry`).
    ``qualities`` is keyed by tier; a missing key means the profile does not serve that
    tier. ``seconds`` is the range of clip lengths served and their frame rule;
    ``gen_frames``, when given, replaces it with an explicit table (seconds -> generated
    frames), which test-sized profiles use.
    ``weights`` names where the loader gets the components: a Hugging Face repo id, a local
    directory, or ``builtin:<name>`` for components built in-process; ``sources`` lists
    exactly which repo folders it reads (see :mod:`.weights`).

    Example::

        get_profile("ltx-2").recipe_for(VideoTask(kind="i2v", tier="fast", first_frame="a.png"))
    """

    name: str
    family: str
    license: str
    description: str
    weights: str
    qualities: Mapping[Tier, Quality]
    seconds: SecondsRange = field(default_factory=lambda: SecondsRange(5, 10, 5))
    gen_frames: Mapping[int, int] = field(default_factory=dict)
    has_audio: bool = True
    max_sequence_length: int = 1024
    # Used where guidance runs and the task gives no negative prompt (the model family's
    # reference default).
    negative_prompt: str = ""
    # Per pipeline ("t2v", "i2v", "condition"): another checkpoint than ``weights``.
    pipeline_weights: Mapping[str, str] = field(default_factory=dict)
    sources: tuple[WeightSource, ...] = ()
    # GPU memory: "none" keeps every component on the card, "group" streams the large ones
    # from host RAM, "auto" streams only what does not fit. ``activation_gib`` is the
    # headroom a job needs beside the weights. Recipes over ``vae_tiling_above`` generated
    # pixels x frames decode in tiles (when ``speedups.vae_tiling`` is "auto").
    offload: str = "auto"
    # The delivered frame rate (a task's fps must be unset or equal to it).
    output_fps: int = OUTPUT_FPS
    activation_gib: float = 0.0
    vae_tiling_above: int | None = None
    speedups: Speedups = field(default_factory=Speedups)

    def recipe_for(self, task: VideoTask) -> Recipe:
        """Pick the recipe for ``task``; raise ``InvalidRequest`` naming the task field if unservable."""
        quality = self._quality(task)
        pipeline = PIPELINE_OF_KIND[task.kind]
        if task.audio and not self.has_audio:
            raise InvalidRequest("audio", True, f"profile {self.name!r} makes silent videos only")
        gen_w, gen_h, out_w, out_h = quality.size_for(task, pipeline)
        gen_frames, out_frames = self._frames(task)
        self._check_memory(task, quality, (gen_w, gen_h, out_w, out_h), gen_frames)
        recipe = Recipe(
            pipeline=pipeline,
            steps=quality.steps,
            gen_width=gen_w,
            gen_height=gen_h,
            gen_frames=gen_frames,
            gen_fps=gen_frames * self.output_fps / out_frames,
            output_width=out_w,
            output_height=out_h,
            output_fps=self.output_fps,
            output_frames=out_frames,
            audio=task.audio,
            guidance_scale=quality.guidance(task.guidance),
            weights=quality.weights or self.pipeline_weights.get(pipeline, self.weights),
            license=self.license,
            negative_prompt=task.negative_prompt or self.negative_prompt,
            max_sequence_length=self.max_sequence_length,
            sampling=quality.sampling_for(pipeline),
        )
        return dataclasses.replace(recipe, vae_tiling=self._tiled(recipe))

    def recipes_for(self, task: VideoTask) -> tuple[Recipe, ...]:
        """One recipe per shot, in order (one for a single-shot task). A shot that cannot be
        served raises ``InvalidRequest`` naming ``shots.<i>.<field>``."""
        if not task.shots:
            return (self.recipe_for(task),)
        recipes = []
        for index, shot in enumerate(task.shot_tasks()):
            try:
                recipes.append(self.recipe_for(shot))
            except InvalidRequest as exc:
                raise type(exc)(f"shots.{index}.{exc.field}", exc.value, exc.reason) from None
        return tuple(recipes)

    def _tiled(self, recipe: Recipe) -> bool:
        """``speedups.vae_tiling`` "on"/"off" force it; "auto" tiles above ``vae_tiling_above``
        generated pixels x frames, where a one-pass decode would not fit beside the weights."""
        if self.speedups.vae_tiling != "auto":
            return self.speedups.vae_tiling == "on"
        pixels = recipe.gen_width * recipe.gen_height * recipe.gen_frames
        return self.vae_tiling_above is not None and pixels > self.vae_tiling_above

    def scaled(
        self,
        sizes: Mapping[str, Size],
        gen_frames: Mapping[int, int],
        max_sequence_length: int | None = None,
        sampling_changes: Mapping[str, Any] | None = None,
    ) -> Profile:
        """The same profile at a size a CPU test can afford.

        Pipelines, stages, steps, sigmas, guidance, conditioning and weights stay as they are;
        only the sizes, frame counts and prompt length shrink, and ``sampling_changes`` may
        adapt what depends on the model's depth (e.g. the STG blocks of a 2-layer test
        transformer). Real sizes are checked on the unscaled recipe tables.
        """
        changes = dict(sampling_changes or {})

        def shrink(quality: Quality) -> Quality:
            return dataclasses.replace(
                quality,
                sizes=sizes,
                pipeline_sizes={},
                sampling=dataclasses.replace(quality.sampling, **changes),
                pipeline_sampling={k: dataclasses.replace(s, **changes) for k, s in quality.pipeline_sampling.items()},
            )

        qualities = {key: shrink(quality) for key, quality in self.qualities.items()}
        length = max_sequence_length or self.max_sequence_length
        return dataclasses.replace(self, qualities=qualities, gen_frames=gen_frames, max_sequence_length=length)

    def with_revisions(self, revisions: Mapping[str, str]) -> Profile:
        """The same profile with ``revisions`` (repo id -> commit) pinned over the table's pins."""
        unknown = sorted(set(revisions) - {source.repo for source in self.sources})
        if unknown:
            raise ValueError(f"profile {self.name!r} reads no repo {', '.join(unknown)}")
        sources = tuple(
            dataclasses.replace(source, revision=revisions.get(source.repo, source.revision))
            for source in self.sources
        )
        return dataclasses.replace(self, sources=sources)

    def _quality(self, task: VideoTask) -> Quality:
        quality = self.qualities.get(task.tier)
        if quality is None:
            served = ", ".join(self.qualities)
            raise InvalidRequest("tier", task.tier, f"profile {self.name!r} serves {served}")
        return quality

    def _frames(self, task: VideoTask) -> tuple[int, int]:
        if task.fps is not None and task.fps != self.output_fps:
            raise InvalidRequest("fps", task.fps, f"must be {self.output_fps} (profile {self.name!r})")
        if task.seconds not in self.durations():
            raise InvalidRequest("seconds", task.seconds, f"must be one of {self.durations_label()}")
        return self.frames_for(task.seconds), task.seconds * self.output_fps + 1

    def frames_for(self, seconds: int) -> int:
        """The frames generated for a clip of ``seconds``."""
        if self.gen_frames:
            return self.gen_frames[seconds]
        return self.seconds.gen_frames(seconds, self.output_fps)

    def durations(self) -> tuple[int, ...]:
        """The clip lengths in seconds this profile serves (before any memory cap)."""
        return tuple(sorted(self.gen_frames)) if self.gen_frames else self.seconds.seconds()

    def durations_label(self) -> str:
        """``"1-20 s"``, or the explicit list of a test-sized profile."""
        if self.gen_frames:
            return ", ".join(str(d) for d in self.durations())
        return self.seconds.label()

    def _check_memory(self, task: VideoTask, quality: Quality, size: Size, frames: int) -> None:
        width, height, out_w, out_h = size
        if quality.max_tokens is None or self.seconds.tokens(width, height, frames) <= quality.max_tokens:
            return
        longest = self.max_seconds(task.tier, width, height)
        raise InvalidRequest("seconds", task.seconds,
                             f"must be at most {longest} for tier {task.tier} at {out_w}x{out_h}"
                             f" (profile {self.name!r}: GPU memory)")

    def max_seconds(self, tier: Tier, width: int, height: int) -> int:
        """The longest clip served at generation size ``width`` x ``height`` on ``tier``
        (0: none). Example: ``get_profile("ltx-2").max_seconds("standard", 1920, 1088)``  # 12"""
        quality = self.qualities[tier]
        fits = [s for s in self.durations()
                if quality.max_tokens is None
                or self.seconds.tokens(width, height, self.frames_for(s)) <= quality.max_tokens]
        return max(fits, default=0)
