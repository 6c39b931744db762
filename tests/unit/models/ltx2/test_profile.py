"""The real ltx-2 recipe table at its real sizes, case by case, against an independent statement
of the rules (the CPU render tests run the same recipes at tiny sizes)."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from takeone.core.errors import InvalidRequest
from takeone.core.task import KINDS, TIERS, VideoTask
from takeone.models.ltx2.profile import (
    BASE_REPO,
    DISTILLED_REPO,
    DISTILLED_SIGMAS,
    STAGE_2_SIGMAS,
)
from takeone.models.ltx2.recipe import ltx2_sampling
from takeone.models.recipe import Recipe
from takeone.models.registry import get_profile
from tests.unit.models.ltx2.reference import full_model_schedule

P720 = {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (720, 720)}
P1080 = {"16:9": (1920, 1080), "9:16": (1080, 1920), "1:1": (1080, 1080)}
FRAMES = {5: 121, 10: 241}


def expected(task: VideoTask) -> dict[str, Any]:
    """What each case must get: stage-1 transformer, steps, output size, audio."""
    quality = task.tier == "quality"
    return {
        "pipeline": {"t2v": "t2v", "i2v": "i2v", "flf2v": "condition"}[task.kind],
        "stage1_transformer": "transformer_full" if quality else "transformer",
        "steps": 40 if quality else 8,
        "sigmas": pytest.approx(full_model_schedule(40)) if quality else DISTILLED_SIGMAS,
        "output": (P720 if task.tier == "fast" else P1080)[task.aspect_ratio or ""],
        "frames": FRAMES[task.seconds],
        "audio": task.audio,
    }


def requests() -> list[VideoTask]:
    """Every tier x kind x aspect ratio x duration x audio."""
    return [
        VideoTask(kind=kind, tier=tier, first_frame="a.png" if kind != "t2v" else None,
                  last_frame="z.png" if kind == "flf2v" else None, aspect_ratio=aspect, seconds=seconds,
                  audio=audio)
        for tier, kind, aspect, seconds, audio in itertools.product(TIERS, KINDS, P720, FRAMES, (False, True))
    ]


def case_id(task: VideoTask) -> str:
    return f"{task.tier}-{task.kind}-{task.aspect_ratio}-{task.seconds}s-audio{int(task.audio)}"


@pytest.mark.parametrize("req", requests(), ids=case_id)
def test_real_recipe_table(req: VideoTask) -> None:
    recipe = get_profile("ltx-2").recipe_for(req)
    sampling, want = ltx2_sampling(recipe), expected(req)
    assert recipe.pipeline == want["pipeline"] and sampling.stage1_transformer == want["stage1_transformer"]
    assert (recipe.steps, sampling.sigmas) == (want["steps"], want["sigmas"])
    assert (recipe.output_width, recipe.output_height) == want["output"]
    assert (recipe.output_frames, recipe.gen_frames, recipe.output_fps, recipe.gen_fps) == (
        want["frames"], want["frames"], 24, 24.0,
    )
    assert recipe.audio == want["audio"]
    assert_two_stage_valid(recipe)


def assert_two_stage_valid(recipe: Recipe) -> None:
    """Multiples of 64 (stage 1 at half size must be multiples of 32), nearest to the output,
    same orientation; 8k+1 frames; the distilled stage 2 everywhere; tiling past 720p x 5 s."""
    sampling = ltx2_sampling(recipe)
    assert sampling.two_stage and recipe.gen_width % 64 == 0 and recipe.gen_height % 64 == 0
    assert abs(recipe.gen_width - recipe.output_width) <= 32 and abs(recipe.gen_height - recipe.output_height) <= 32
    assert recipe.stage1_size == (recipe.gen_width // 2, recipe.gen_height // 2)
    assert (recipe.gen_frames - 1) % 8 == 0
    assert (sampling.stage2_steps, sampling.stage2_sigmas) == (3, STAGE_2_SIGMAS)
    assert sampling.stage2_noise_scale == STAGE_2_SIGMAS[0] and recipe.total_steps == recipe.steps + 3
    assert sampling.use_cross_timestep is False and recipe.max_sequence_length == 1024
    assert recipe.vae_tiling == (recipe.output_width * recipe.output_height > 1280 * 720 or recipe.gen_frames > 121)


def test_sigma_schedules_match_diffusers() -> None:
    """Copied so the API process never imports diffusers; they must stay diffusers' values."""
    from diffusers.pipelines.ltx2.utils import (
        DISTILLED_SIGMA_VALUES,
        STAGE_2_DISTILLED_SIGMA_VALUES,
    )

    assert list(DISTILLED_SIGMAS) == DISTILLED_SIGMA_VALUES
    assert list(STAGE_2_SIGMAS) == STAGE_2_DISTILLED_SIGMA_VALUES


@pytest.mark.parametrize("guidance", [0.0, 0.5, 1.0])
def test_distilled_recipes_ignore_guidance_and_quality_maps_it(guidance: float) -> None:
    profile = get_profile("ltx-2")
    for tier in ("fast", "standard"):
        req = VideoTask(kind="i2v", tier=tier, first_frame="a.png", guidance=guidance)  # type: ignore[arg-type]
        recipe = profile.recipe_for(req)
        sampling = ltx2_sampling(recipe)
        assert (recipe.guidance_scale, sampling.stg_scale, sampling.modality_scale) == (1.0, 0.0, 1.0)
    master = profile.recipe_for(VideoTask(kind="i2v", tier="quality", first_frame="a.png", guidance=guidance))
    assert master.guidance_scale == pytest.approx(2.0 + 2.0 * guidance)
    full = ltx2_sampling(master)
    assert (full.stg_scale, full.stg_blocks, full.modality_scale) == (1.0, (29,), 3.0)
    assert (full.audio_guidance_scale, full.guidance_rescale) == (7.0, 0.7)


def test_weights_and_license_are_stated() -> None:
    profile = get_profile("ltx-2")
    assert "LTX-2 Community License" in profile.license and "$10M" in profile.license
    master = profile.recipe_for(VideoTask(kind="i2v", tier="quality", first_frame="a.png"))
    pro = profile.recipe_for(VideoTask(kind="t2v"))
    assert pro.weights == DISTILLED_REPO and BASE_REPO in master.weights and pro.license == profile.license
    sources = {source.component: (source.repo, source.path) for source in profile.sources}
    assert sources["transformer"] == (DISTILLED_REPO, "transformer")
    assert sources["transformer_full"] == (BASE_REPO, "transformer")
    assert sources["latent_upsampler"] == (BASE_REPO, "latent_upsampler")


def test_ltx2_is_the_serve_default() -> None:
    from takeone.cli.main import build_parser

    assert build_parser().parse_args(["serve"]).profile == "ltx-2"


@pytest.mark.parametrize(
    ("field", "changes"),
    [("seconds", {"seconds": 21}), ("seconds", {"seconds": 13}), ("aspect_ratio", {"aspect_ratio": "4:3"}),
     ("fps", {"fps": 30}),
     ("size", {"aspect_ratio": None, "size": "1280x720"})],
)
def test_unservable_requests_name_the_field(field: str, changes: dict[str, Any]) -> None:
    """1280x720 is a fast-tier size; the standard tier delivers 1080p only."""
    task = dataclasses.replace(VideoTask(kind="i2v", first_frame="a.png"), **changes)
    with pytest.raises(InvalidRequest) as caught:
        get_profile("ltx-2").recipe_for(task)
    assert caught.value.field == field


def test_scaled_profile_changes_sizes_only() -> None:
    real = get_profile("ltx-2")
    sizes = {"16:9": (128, 64, 128, 72), "9:16": (64, 128, 72, 128), "1:1": (64, 64, 72, 72)}
    small = real.scaled(sizes, {5: 9, 10: 17}, 32, {"stg_blocks": (1,)})
    for req in requests():
        big, tiny = real.recipe_for(req), small.recipe_for(req)
        same = {f.name for f in dataclasses.fields(Recipe)} - {
            "gen_width", "gen_height", "gen_frames", "gen_fps", "output_width", "output_height",
            "max_sequence_length", "vae_tiling", "sampling",
        }
        assert {name: getattr(big, name) for name in same} == {name: getattr(tiny, name) for name in same}
        assert dataclasses.replace(ltx2_sampling(big), stg_blocks=(1,)) == tiny.sampling
        assert tiny.output_frames == big.output_frames and tiny.gen_width % 64 == 0
    assert small.sources == real.sources


def test_quality_schedule_is_the_references_fixed_one() -> None:
    recipe = get_profile("ltx-2").recipe_for(VideoTask(kind="i2v", tier="quality", first_frame="a.png"))
    sampling = ltx2_sampling(recipe)
    assert sampling.sigmas == pytest.approx(full_model_schedule(40)) and recipe.steps == 40  # as the reference
    assert sampling.sigmas is not None and sampling.sigmas[0] == 1.0 and sampling.sigmas[-1] == pytest.approx(0.1)


def test_guidance_half_way_is_the_references_cfg() -> None:
    """The reference runs CFG 3.0 with STG 1 and modality guidance 3 tuned around it."""
    quality = get_profile("ltx-2").qualities["quality"]
    assert quality.guidance(0.5) == 3.0 and quality.guidance_range == (2.0, 4.0)


@pytest.mark.parametrize("profile", ["ltx-2", "wan-2.2"])
def test_a_task_without_negative_prompt_gets_the_references_default(profile: str) -> None:
    reference = {"ltx-2": "blurry, out of focus, overexposed", "wan-2.2": "色调艳丽，过曝，静态"}[profile]
    task = VideoTask(kind="i2v", tier="quality", first_frame="a.png")
    assert reference in get_profile(profile).recipe_for(task).negative_prompt
    own = dataclasses.replace(task, negative_prompt="no rain")
    assert get_profile(profile).recipe_for(own).negative_prompt == "no rain"
    assert get_profile("tiny").recipe_for(task).negative_prompt == ""


@pytest.mark.parametrize(("tier", "aspect", "seconds", "frames"), [
    ("standard", "16:9", 4, 97), ("standard", "16:9", 12, 289), ("standard", "1:1", 20, 481),
    ("fast", "9:16", 20, 481), ("quality", "9:16", 1, 25),
])
def test_every_whole_second_within_the_memory_cap(tier: str, aspect: str, seconds: int, frames: int) -> None:
    """24 s + 1 frames (always 8k+1) generated and delivered, up to the tier's cap at that size."""
    task = VideoTask(kind="t2v", tier=tier, aspect_ratio=aspect, seconds=seconds)  # type: ignore[arg-type]
    recipe = get_profile("ltx-2").recipe_for(task)
    assert (recipe.gen_frames, recipe.output_frames, recipe.output_fps) == (frames, frames, 24)
    assert (recipe.gen_frames - 1) % 8 == 0
