"""The ``wan-2.2`` profile: every tier served by Wan 2.x (Apache-2.0), silent, torch-free.

Which checkpoint serves which kind (``Recipe.weights`` names it):

- ``i2v``: ``Wan-AI/Wan2.2-I2V-A14B-Diffusers``, two experts, ``boundary_ratio`` 0.9.
- ``t2v``: ``Wan-AI/Wan2.2-T2V-A14B-Diffusers``, two experts, ``boundary_ratio`` 0.875.
- ``flf2v`` (pipeline ``condition``): ``Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers``, one expert
  plus a CLIP image encoder that sees both frames.

Recipe choices, and why:

- A14B content is 16 fps, so the clip is delivered at 16 fps, every generated frame once:
  16 s + 1 frames for every whole second from 1 to 15 s (81 for 5 s, 161 for 10 s), within a
  latent-token budget (:data:`MAX_TOKENS`: 720p up to 10 s, 480p up to 15 s). Resampling to 24 fps would repeat
  every other frame (a 1-2-1-2 judder). 161 frames is twice Wan's training length: expect
  weaker motion coherence on 10 s clips.
- Sizes: ``fast`` generates at Wan's 480p (832x480, 480x832, 624x624) and is upscaled to the
  720p output, except first-and-last-frame tasks: the FLF2V checkpoint is 720p-only, so it
  runs at 720p on every tier. ``standard`` and ``quality`` generate at 720p (1280x720,
  720x1280, and 960x960 for 1:1, the same token count as 1280x720) and deliver 1280x720,
  720x1280, 720x720. Wan's 720p is its maximum; 1080p is not offered.
- Steps: 40 (Wan's recipe) for ``fast`` and ``standard``; 50 for ``quality``.
- Guidance: ``guidance`` 0..1 maps linearly onto 1..5; at the default 0.5 (3.0) each expert
  gets Wan's reference scale: text to video 4.0 (high-noise expert) and 3.0 (low-noise), image
  to video 3.5 and 3.5; other values scale both alike (0 still turns classifier-free guidance
  off, at half the cost; see :func:`takeone.models.wan.recipe.expert_guidance`). FLF2V (one
  expert) takes the mapped value as it is.
- Scheduler shift: Wan's reference 12 for text to video and 5 for image to video (the
  diffusers repos ship 3.0); FLF2V keeps its checkpoint's.
- A task without a negative prompt gets Wan's reference default one (in Chinese, as Wan
  was trained with it).
- Wan makes no audio: a task asking for audio is refused with a 400 naming ``audio``.

Example::

    recipe = wan_22_profile().recipe_for(VideoTask(kind="t2v", prompt="fox"))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from takeone.core.task import Tier
from takeone.models.recipe import Profile, Quality, SecondsRange, Size, WeightSource
from takeone.models.wan.recipe import WanSampling

NAME = "wan-2.2"
LICENSE = "Apache-2.0"
I2V_REPO = "Wan-AI/Wan2.2-I2V-A14B-Diffusers"
T2V_REPO = "Wan-AI/Wan2.2-T2V-A14B-Diffusers"
FLF2V_REPO = "Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers"
REPOS: Mapping[str, str] = {"i2v": I2V_REPO, "t2v": T2V_REPO, "condition": FLF2V_REPO}
BOUNDARY_RATIOS: Mapping[str, float] = {"i2v": 0.9, "t2v": 0.875}
GEN_FPS = 16
# Every whole second from 1 to 15 s at 16 fps: 16 s + 1 frames, always 4k+1 (the Wan VAE's
# rule); latent tokens are 16 px a side (8x VAE, 2x2 patch) by 4 frames.
SECONDS = SecondsRange(1, 15, frame_multiple=4, latent=(16, 4))
# GPU memory: at most the latent tokens of 720p for 10 s (3,600 x 41 = 147,600), the longest
# clip it served before; 480p generation (fast) reaches 15 s within it. An estimate, not
# measured on a GPU.
MAX_TOKENS = 80 * 45 * 41
GUIDANCE_RANGE = (1.0, 5.0)
MAX_SEQUENCE_LENGTH = 512
# Wan's reference default negative prompt (its shared config), used when a task gives none.
NEGATIVE_PROMPT = (
    "色调艳丽，过曝，静态，细节模糊不清，字幕，风格，作品，画作，画面，静止，整体发灰，最差质量，低质量，"
    "JPEG压缩残留，丑陋的，残缺的，多余的手指，画得不好的手部，画得不好的脸部，畸形的，毁容的，形态畸形的肢体，"
    "手指融合，静止不动的画面，杂乱的背景，三条腿，背景人很多，倒着走"
)
SPATIAL_MULTIPLE = 16
SIZES_480P: Mapping[str, Size] = {
    "16:9": (832, 480, 1280, 720),
    "9:16": (480, 832, 720, 1280),
    "1:1": (624, 624, 720, 720),
}
SIZES_720P: Mapping[str, Size] = {
    "16:9": (1280, 720, 1280, 720),
    "9:16": (720, 1280, 720, 1280),
    "1:1": (960, 960, 720, 720),
}
# tier -> (steps, sizes)
_QUALITIES: Mapping[Tier, tuple[int, Mapping[str, Size]]] = {
    "fast": (40, SIZES_480P),
    "standard": (40, SIZES_720P),
    "quality": (50, SIZES_720P),
}
# Wan 2.2's reference (its generate.py configs): T2V guides the high-noise expert at 4.0 and the
# low-noise one at 3.0 with sample shift 12; I2V 3.5 and 3.5 with shift 5. The diffusers repos'
# schedulers carry shift 3.0. FLF2V (Wan 2.1, one expert) keeps its checkpoint's scheduler.
EXPERT_GUIDANCE: Mapping[str, tuple[float, float]] = {"t2v": (4.0, 3.0), "i2v": (3.5, 3.5)}
FLOW_SHIFTS: Mapping[str, float] = {"t2v": 12.0, "i2v": 5.0}
SAMPLING: Mapping[str, WanSampling] = {
    pipeline: WanSampling(boundary_ratio=BOUNDARY_RATIOS.get(pipeline), expert_guidance=EXPERT_GUIDANCE.get(pipeline),
                          flow_shift=FLOW_SHIFTS.get(pipeline))
    for pipeline in REPOS
}


# What each repo contributes: I2V brings the parts all three share; T2V and FLF2V only their
# own. (component, repo, folder, GiB in memory: bf16, VAE and CLIP image encoder float32)
_SOURCES: tuple[tuple[str, str, str, float], ...] = (
    ("tokenizer", I2V_REPO, "tokenizer", 0.0),
    ("text_encoder", I2V_REPO, "text_encoder", 10.6),
    ("vae", I2V_REPO, "vae", 0.5),
    ("scheduler", I2V_REPO, "scheduler", 0.0),
    ("transformer", I2V_REPO, "transformer", 26.6),
    ("transformer_2", I2V_REPO, "transformer_2", 26.6),
    ("t2v.scheduler", T2V_REPO, "scheduler", 0.0),
    ("t2v.transformer", T2V_REPO, "transformer", 26.6),
    ("t2v.transformer_2", T2V_REPO, "transformer_2", 26.6),
    ("flf2v.scheduler", FLF2V_REPO, "scheduler", 0.0),
    ("flf2v.transformer", FLF2V_REPO, "transformer", 30.5),
    ("flf2v.image_encoder", FLF2V_REPO, "image_encoder", 2.4),
    ("flf2v.image_processor", FLF2V_REPO, "image_processor", 0.0),
)


def sources() -> tuple[WeightSource, ...]:
    """Exactly what the Wan loader reads, so ``takeone pull wan-2.2`` skips the T2V and FLF2V
    repos' copies of the shared text encoder and VAE (~11 GiB each)."""
    folders = [WeightSource(name, repo, folder, gib) for name, repo, folder, gib in _SOURCES]
    indexes = [WeightSource(f"{name}.model_index", repo, None, 0.0, "model_index.json") for name, repo in REPOS.items()]
    return (*folders, *indexes)


def wan_22_profile() -> Profile:
    """Build the ``wan-2.2`` profile."""
    qualities = {
        key: Quality(steps, sizes, GUIDANCE_RANGE, pipeline_sampling=SAMPLING,
                     pipeline_sizes={"condition": SIZES_720P}, max_tokens=MAX_TOKENS)
        for key, (steps, sizes) in _QUALITIES.items()
    }
    return Profile(
        name=NAME,
        family="wan",
        license=LICENSE,
        description="Wan 2.2 A14B (text/image to video) and Wan 2.1 FLF2V (first+last frame), silent.",
        weights=I2V_REPO,
        qualities=qualities,
        seconds=SECONDS,
        has_audio=False,
        output_fps=GEN_FPS,
        max_sequence_length=MAX_SEQUENCE_LENGTH,
        negative_prompt=NEGATIVE_PROMPT,
        pipeline_weights=REPOS,
        sources=sources(),
    )


def shrink(
    profile: Profile,
    *,
    gen_divisor: int = 16,
    output_divisor: int = 8,
    gen_frames: Mapping[int, int] | None = None,
    steps: int = 2,
    max_sequence_length: int | None = None,
) -> Profile:
    """The same profile at a size a CPU test can afford: same pipelines, experts, boundaries,
    guidance and conditioning, but generation sizes divided by ``gen_divisor`` (kept
    multiples of 16), output sizes by ``output_divisor`` (kept even for yuv420p), fewer
    frames and ``steps`` steps. Real sizes are checked on the unshrunk recipe tables.
    """

    def smaller(sizes: Mapping[str, Size]) -> dict[str, Size]:
        return {aspect: _shrink_size(size, gen_divisor, output_divisor) for aspect, size in sizes.items()}

    qualities = {
        key: dataclasses.replace(
            quality,
            steps=min(quality.steps, steps),
            sizes=smaller(quality.sizes),
            pipeline_sizes={pipeline: smaller(sizes) for pipeline, sizes in quality.pipeline_sizes.items()},
        )
        for key, quality in profile.qualities.items()
    }
    return dataclasses.replace(
        profile,
        qualities=qualities,
        gen_frames=gen_frames if gen_frames is not None else profile.gen_frames,
        max_sequence_length=max_sequence_length or profile.max_sequence_length,
    )


def _shrink_size(size: Size, gen_divisor: int, output_divisor: int) -> Size:
    gen_w, gen_h, out_w, out_h = size
    return (
        _multiple(gen_w / gen_divisor, SPATIAL_MULTIPLE),
        _multiple(gen_h / gen_divisor, SPATIAL_MULTIPLE),
        _multiple(out_w / output_divisor, 2),
        _multiple(out_h / output_divisor, 2),
    )


def _multiple(value: float, step: int) -> int:
    """The nearest positive multiple of ``step``."""
    return max(step, round(value / step) * step)
