"""Every ltx-2 recipe, run on CPU from tiny checkpoints on disk through the real loading code.

The profile is the real one scaled down (:meth:`Profile.scaled`): the same pipelines, two
stages, step counts, sigmas, guidance (CFG + STG + modality on the quality tier), conditioning, latent
upsampling, audio handling and MP4 muxing, at 128x64-class sizes and 9 or 17 generated
frames. Forward hooks (real torch hooks, nothing mocked) count which transformer ran how often.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from takeone.core.errors import GenerationFailed
from takeone.core.task import TaskKind, Tier, VideoTask
from takeone.engine.render import render
from takeone.models.base import VideoModel
from takeone.models.loader import load_video_model
from takeone.models.ltx2.model import Ltx2Model
from takeone.models.ltx2.profile import DISTILLED_SIGMAS, STAGE_2_SIGMAS
from takeone.models.recipe import Profile
from tests.mp4probe import probe
from tests.unit.models.callbacks import ignore, never, whole
from tests.unit.models.ltx2.reference import full_model_schedule

SIZES = {"16:9": (128, 72), "9:16": (72, 128), "1:1": (72, 72)}
ASPECTS = tuple(SIZES)
FRAMES = {5: 121, 10: 241}




@dataclass(frozen=True)
class Case:
    kind: TaskKind
    tier: Tier
    seconds: int
    audio: bool
    aspect_ratio: str

    def __str__(self) -> str:
        sound = "audio" if self.audio else "silent"
        return f"{self.kind}-{self.tier}-{self.seconds}s-{sound}-{self.aspect_ratio}"

    def request(self, make_png: Callable[..., str], seed: int = 7) -> VideoTask:
        return VideoTask(
            kind=self.kind, tier=self.tier, prompt="a red fox runs through snow", negative_prompt="blurry",
            aspect_ratio=self.aspect_ratio, seconds=self.seconds, audio=self.audio,
            first_frame=make_png(400, 300, 1) if self.kind != "t2v" else None,
            last_frame=make_png(300, 400, 2) if self.kind == "flf2v" else None, seed=seed,
        )


def cases() -> list[Case]:
    """fast/standard/quality x i2v/flf2v x 5 s / 10 s (silent), and standard t2v / i2v x audio
    on / off x 5 s / 10 s, plus quality text to video with audio; aspect ratios rotate so each
    appears in every group."""
    framed = [(tier, kind, seconds) for tier in ("fast", "standard", "quality") for kind in ("i2v", "flf2v")
              for seconds in (5, 10)]
    standard = [(kind, audio, seconds) for kind in ("t2v", "i2v") for audio in (False, True) for seconds in (5, 10)]
    return [
        Case(kind, tier, seconds, False, ASPECTS[i % 3])  # type: ignore[arg-type]
        for i, (tier, kind, seconds) in enumerate(framed)
    ] + [
        Case(kind, "standard", seconds, audio, ASPECTS[i % 3])  # type: ignore[arg-type]
        for i, (kind, audio, seconds) in enumerate(standard)
    ] + [Case("t2v", "quality", 5, True, "1:1")]


@contextmanager
def forward_counts(model: Ltx2Model) -> Iterator[dict[str, int]]:
    """How many times each transformer, the latent upsampler and the text encoder ran."""
    counts = {"transformer": 0, "transformer_full": 0, "latent_upsampler": 0, "text_encoder": 0}
    handles = []
    for name in counts:

        def hook(*_: object, key: str = name) -> None:
            counts[key] += 1

        handles.append(model.components[name].register_forward_hook(hook))
    try:
        yield counts
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.parametrize("case", cases(), ids=str)
def test_every_recipe_renders(
    case: Case, ltx2_model: VideoModel, scaled_ltx2: Profile, make_png: Callable[..., str], out_file: Path
) -> None:
    assert isinstance(ltx2_model, Ltx2Model)
    request = case.request(make_png)
    recipe = scaled_ltx2.recipe_for(request)
    calls: list[tuple[int, int]] = []
    with forward_counts(ltx2_model) as counts:
        info = render(ltx2_model, scaled_ltx2, request, out_file, lambda d, t: calls.append((d, t)), never)

    width, height = SIZES[case.aspect_ratio]
    frames, has_audio = FRAMES[case.seconds], case.audio
    mp4 = probe(out_file.read_bytes())
    assert (mp4.codec, mp4.pix_fmt, mp4.width, mp4.height, mp4.fps, mp4.frames) == (
        "h264", "yuv420p", width, height, 24.0, frames,
    )
    assert mp4.audio_codec == ("aac" if has_audio else None)
    if has_audio:
        assert mp4.audio_duration == pytest.approx(frames / 24, abs=0.07)
    assert (info.width, info.height, info.frames, info.has_audio, info.seed) == (width, height, frames, has_audio, 7)
    total = recipe.steps + 3 + 1  # stage 1, 3 distilled stage-2 steps, then decode and MP4
    assert calls == [(done, total) for done in range(1, total + 1)]
    # Quality: 40 full-model steps, each a CFG pair (one batched pass) + STG + modality pass.
    quality = case.tier == "quality"
    full_passes = 40 * 3 if quality else 0
    distilled_passes = 3 if quality else 8 + 3
    # The prompt is encoded once per job (twice when guided: prompt and negative prompt).
    text_passes = 2 if quality else 1
    assert counts == {"transformer": distilled_passes, "transformer_full": full_passes, "latent_upsampler": 1,
                      "text_encoder": text_passes}


def test_variants_share_every_module(ltx2_model: VideoModel) -> None:
    assert isinstance(ltx2_model, Ltx2Model)
    assert len(ltx2_model.variants) == 6
    for (kind, transformer), pipe in ltx2_model.variants.items():
        assert pipe.transformer is ltx2_model.components[transformer], (kind, transformer)
        for name in ("text_encoder", "connectors", "vae", "audio_vae", "vocoder", "tokenizer"):
            assert getattr(pipe, name) is ltx2_model.components[name], (kind, name)
    assert ltx2_model.upsampler is not None and ltx2_model.upsampler.vae is ltx2_model.components["vae"]
    assert ltx2_model.components["transformer"] is not ltx2_model.components["transformer_full"]


def stage_timesteps(model: Ltx2Model, transformer: str, run: Callable[[], object]) -> list[float]:
    """The timestep of each denoising step ``transformer`` ran (guidance passes of one step share it)."""
    seen: list[float] = []

    def hook(_module: object, _args: object, kwargs: dict[str, Any]) -> None:
        value = float(kwargs["timestep"].flatten()[0])
        if not seen or seen[-1] != value:
            seen.append(value)

    handle = model.components[transformer].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        run()
    finally:
        handle.remove()
    return seen


@pytest.mark.parametrize("aspect_ratio", ["16:9", "1:1"])
def test_quality_stage_one_runs_the_references_fixed_schedule_at_any_size(
    aspect_ratio: str, ltx2_model: VideoModel, scaled_ltx2: Profile
) -> None:
    """The tiny scheduler shifts by token count like LTX-2's; the reference's full-model
    schedule does not (it is computed as for 4,096 tokens), so two sizes see the same one."""
    assert isinstance(ltx2_model, Ltx2Model)
    task = VideoTask(kind="t2v", tier="quality", prompt="a fox", aspect_ratio=aspect_ratio, seed=2)
    recipe = scaled_ltx2.recipe_for(task)
    steps = stage_timesteps(ltx2_model, "transformer_full", lambda: ltx2_model.generate(task, recipe, ignore, never))
    assert steps == pytest.approx([1000 * sigma for sigma in full_model_schedule(40)], rel=1e-5)


def test_distilled_sigmas_are_used_unshifted(ltx2_model: VideoModel, scaled_ltx2: Profile) -> None:
    assert isinstance(ltx2_model, Ltx2Model)
    task = VideoTask(kind="t2v", tier="fast", prompt="a fox", seed=2)
    recipe = scaled_ltx2.recipe_for(task)
    steps = stage_timesteps(ltx2_model, "transformer", lambda: ltx2_model.generate(task, recipe, ignore, never))
    assert steps == pytest.approx([1000 * s for s in (*DISTILLED_SIGMAS, *STAGE_2_SIGMAS)], rel=1e-5)


def test_same_seed_same_video(ltx2_model: VideoModel, scaled_ltx2: Profile) -> None:
    request = VideoTask(kind="t2v", prompt="a fox", audio=True, seed=11)
    recipe = scaled_ltx2.recipe_for(request)
    first, second = (whole(ltx2_model.generate(request, recipe, ignore, never)) for _ in range(2))
    other = whole(ltx2_model.generate(dataclasses.replace(request, seed=12), recipe, ignore, never))
    assert np.array_equal(first.frames, second.frames) and not np.array_equal(first.frames, other.frames)
    assert first.frames.shape == (recipe.gen_frames, recipe.gen_height, recipe.gen_width, 3)
    assert first.audio is not None and second.audio is not None and np.array_equal(first.audio, second.audio)


def test_tiled_decode_for_large_recipes(
    ltx2_model: VideoModel, scaled_ltx2: Profile, out_file: Path
) -> None:
    """The tiling threshold scaled to zero: the 17-frame decode runs in temporal tiles."""
    assert isinstance(ltx2_model, Ltx2Model)
    tiled = dataclasses.replace(scaled_ltx2, vae_tiling_above=0)
    request = VideoTask(kind="t2v", prompt="a fox", seconds=10, seed=1)
    assert tiled.recipe_for(request).vae_tiling
    info = render(ltx2_model, tiled, request, out_file, ignore, never)
    assert info.frames == 241 and ltx2_model.components["vae"].use_tiling
    render(ltx2_model, scaled_ltx2, request, out_file, ignore, never)
    assert not ltx2_model.components["vae"].use_tiling


def test_group_offloading_gives_the_same_video(
    ltx2_model: VideoModel, scaled_ltx2: Profile, ltx2_cache: Path
) -> None:
    """Streaming the large components block by block (here CPU to CPU) changes nothing."""
    offloaded = load_video_model(scaled_ltx2, "cpu", weights=ltx2_cache, offload="group")
    assert isinstance(offloaded, Ltx2Model)
    assert offloaded.offloaded == {"transformer", "transformer_full", "text_encoder"}
    request = VideoTask(kind="t2v", prompt="a fox", seed=3)
    recipe = scaled_ltx2.recipe_for(request)
    expected = ltx2_model.generate(request, recipe, ignore, never).all_frames()
    assert np.array_equal(offloaded.generate(request, recipe, ignore, never).all_frames(), expected)


def test_a_two_stage_recipe_needs_the_upsampler(tiny_model: VideoModel, scaled_ltx2: Profile) -> None:
    recipe = scaled_ltx2.recipe_for(VideoTask(kind="t2v", prompt="a fox", seed=1))
    with pytest.raises(GenerationFailed, match="no latent upsampler"):
        tiny_model.generate(VideoTask(kind="t2v"), recipe, ignore, never)


def test_allocation_failure_in_stage_one_becomes_out_of_memory(ltx2_model: VideoModel, scaled_ltx2: Profile) -> None:
    from takeone.core.errors import OutOfMemory

    request = VideoTask(kind="t2v", prompt="a fox", seed=1)
    huge = dataclasses.replace(scaled_ltx2.recipe_for(request), gen_width=2**28, gen_height=2**28)
    with pytest.raises(OutOfMemory, match="out of cpu memory"):
        ltx2_model.generate(request, huge, ignore, never)


def test_cancel_between_stages_skips_stage_two(ltx2_model: VideoModel, scaled_ltx2: Profile) -> None:
    """Polls: once before generating, once per stage-1 step, once after the upsample."""
    from takeone.core.errors import JobCancelled

    assert isinstance(ltx2_model, Ltx2Model)
    request = VideoTask(kind="t2v", prompt="a fox", seed=1)
    recipe = scaled_ltx2.recipe_for(request)
    polls: list[int] = []

    def cancel_after_stage_one() -> bool:
        polls.append(1)
        return len(polls) == 1 + recipe.steps + 1

    with forward_counts(ltx2_model) as counts, pytest.raises(JobCancelled):
        ltx2_model.generate(request, recipe, ignore, cancel_after_stage_one)
    assert counts == {"transformer": recipe.steps, "transformer_full": 0, "latent_upsampler": 1, "text_encoder": 1}


def test_no_negative_prompt_means_the_references_default(ltx2_model: VideoModel, scaled_ltx2: Profile) -> None:
    """Where CFG runs (quality), an empty negative prompt is the reference's default one."""
    from takeone.models.ltx2.profile import NEGATIVE_PROMPT

    empty = VideoTask(kind="t2v", tier="quality", prompt="a fox", negative_prompt="", seed=5)
    default = dataclasses.replace(empty, negative_prompt=NEGATIVE_PROMPT)
    first, second = (ltx2_model.generate(t, scaled_ltx2.recipe_for(t), ignore, never).all_frames()
                     for t in (empty, default))
    np.testing.assert_array_equal(first, second)


@pytest.mark.parametrize("tier", ["fast", "quality"])
def test_image_to_video_stage_two_re_encodes_the_first_frame_at_full_size(
    tier: str, ltx2_model: VideoModel, scaled_ltx2: Profile, make_png: Callable[..., str]
) -> None:
    """As the reference does: stage 1 encodes the first frame at half size, stage 2 again at
    the generation size (diffusers' image-to-video pipeline would reuse the upsampled latent)."""
    assert isinstance(ltx2_model, Ltx2Model)
    task = VideoTask(kind="i2v", tier=tier, first_frame=make_png(400, 300, 1), prompt="a fox", seed=3)  # type: ignore[arg-type]
    recipe = scaled_ltx2.recipe_for(task)
    sizes: list[tuple[int, int]] = []
    encoder = ltx2_model.components["vae"].encoder
    handle = encoder.register_forward_pre_hook(lambda _m, args: sizes.append(tuple(args[0].shape[-2:])))
    try:
        ltx2_model.generate(task, recipe, ignore, never).close()
    finally:
        handle.remove()
    assert sizes == [(recipe.gen_height // 2, recipe.gen_width // 2), (recipe.gen_height, recipe.gen_width)]
