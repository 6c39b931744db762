"""The real ltx-2 recipe table at its real sizes, case by case, against an independent statement
of the rules (the CPU render tests run the same recipes at tiny sizes)."""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from takeone.core.errors import InvalidRequest
from takeone.generation import GenerationRequest
from takeone.models.ltx2_profile import (
    BASE_REPO,
    DISTILLED_REPO,
    DISTILLED_SIGMAS,
    STAGE_2_SIGMAS,
)
from takeone.models.profiles import Recipe, get_profile

P720 = {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (720, 720)}
P1080 = {"16:9": (1920, 1080), "9:16": (1080, 1920), "1:1": (1080, 1080)}
FRAMES = {5: 121, 10: 241}


def expected(req: GenerationRequest) -> dict[str, Any]:
    """What each case must get: stage-1 transformer, steps, output size, audio."""
    master = req.mode == "master"
    if req.endpoint == "kling-2.1":
        pipeline = "condition" if req.image_tail else "i2v"
    else:
        pipeline = "i2v" if req.image else "t2v"
    return {
        "pipeline": pipeline,
        "stage1_transformer": "transformer_full" if master else "transformer",
        "steps": 30 if master else 8,
        "sigmas": None if master else DISTILLED_SIGMAS,
        "output": (P720 if req.mode == "std" else P1080)[req.aspect_ratio],
        "frames": FRAMES[req.duration],
        "audio": req.endpoint == "kling-2.6" and req.generate_audio,
    }


def requests() -> list[GenerationRequest]:
    kling_21 = [
        GenerationRequest(endpoint="kling-2.1", mode=mode, image="a.png", image_tail=tail,
                          aspect_ratio=aspect, duration=duration)
        for mode, tail, aspect, duration in itertools.product(("std", "pro", "master"), (None, "z.png"), P720, FRAMES)
    ]
    kling_26 = [
        GenerationRequest(endpoint="kling-2.6", image=image, aspect_ratio=aspect, duration=duration,
                          generate_audio=audio)
        for image, aspect, duration, audio in itertools.product((None, "a.png"), P720, FRAMES, (False, True))
    ]
    return kling_21 + kling_26


def case_id(req: GenerationRequest) -> str:
    inputs = "+".join(n for n, v in (("img", req.image), ("tail", req.image_tail)) if v) or "text"
    return f"{req.endpoint}-{req.mode}-{inputs}-{req.aspect_ratio}-{req.duration}s-audio{int(req.generate_audio)}"


@pytest.mark.parametrize("req", requests(), ids=case_id)
def test_real_recipe_table(req: GenerationRequest) -> None:
    recipe = get_profile("ltx-2").recipe_for(req)
    want = expected(req)
    assert recipe.pipeline == want["pipeline"] and recipe.stage1_transformer == want["stage1_transformer"]
    assert (recipe.steps, recipe.sigmas) == (want["steps"], want["sigmas"])
    assert (recipe.output_width, recipe.output_height) == want["output"]
    assert (recipe.output_frames, recipe.gen_frames, recipe.output_fps, recipe.gen_fps) == (
        want["frames"], want["frames"], 24, 24.0,
    )
    assert recipe.audio == want["audio"]
    assert_two_stage_valid(recipe)


def assert_two_stage_valid(recipe: Recipe) -> None:
    """Multiples of 64 (stage 1 at half size must be multiples of 32), nearest to the output,
    same orientation; 8k+1 frames; the distilled stage 2 everywhere; tiling past 720p x 5 s."""
    assert recipe.two_stage and recipe.gen_width % 64 == 0 and recipe.gen_height % 64 == 0
    assert abs(recipe.gen_width - recipe.output_width) <= 32 and abs(recipe.gen_height - recipe.output_height) <= 32
    assert recipe.stage1_size == (recipe.gen_width // 2, recipe.gen_height // 2)
    assert (recipe.gen_frames - 1) % 8 == 0
    assert (recipe.stage2_steps, recipe.stage2_sigmas) == (3, STAGE_2_SIGMAS)
    assert recipe.stage2_noise_scale == STAGE_2_SIGMAS[0] and recipe.total_steps == recipe.steps + 3
    assert recipe.use_cross_timestep is False and recipe.max_sequence_length == 1024
    assert recipe.vae_tiling == (recipe.output_width * recipe.output_height > 1280 * 720 or recipe.gen_frames > 121)


def test_sigma_schedules_match_diffusers() -> None:
    """Copied so the API process never imports diffusers; they must stay diffusers' values."""
    from diffusers.pipelines.ltx2.utils import (
        DISTILLED_SIGMA_VALUES,
        STAGE_2_DISTILLED_SIGMA_VALUES,
    )

    assert list(DISTILLED_SIGMAS) == DISTILLED_SIGMA_VALUES
    assert list(STAGE_2_SIGMAS) == STAGE_2_DISTILLED_SIGMA_VALUES


@pytest.mark.parametrize("cfg_scale", [0.0, 0.5, 1.0])
def test_distilled_recipes_ignore_cfg_scale_and_master_maps_it(cfg_scale: float) -> None:
    profile = get_profile("ltx-2")
    for mode in ("std", "pro"):
        req = GenerationRequest(endpoint="kling-2.1", mode=mode, image="a.png", cfg_scale=cfg_scale)
        recipe = profile.recipe_for(req)
        assert (recipe.guidance_scale, recipe.stg_scale, recipe.modality_scale) == (1.0, 0.0, 1.0)
    master = profile.recipe_for(GenerationRequest(endpoint="kling-2.1", mode="master", image="a.png",
                                                  cfg_scale=cfg_scale))
    assert master.guidance_scale == pytest.approx(2.0 + 4.0 * cfg_scale)
    assert (master.stg_scale, master.stg_blocks, master.modality_scale) == (1.0, (29,), 3.0)
    assert (master.audio_guidance_scale, master.guidance_rescale) == (7.0, 0.7)


def test_weights_and_license_are_stated() -> None:
    profile = get_profile("ltx-2")
    assert "LTX-2 Community License" in profile.license and "$10M" in profile.license
    master = profile.recipe_for(GenerationRequest(endpoint="kling-2.1", mode="master", image="a.png"))
    pro = profile.recipe_for(GenerationRequest(endpoint="kling-2.6"))
    assert pro.weights == DISTILLED_REPO and BASE_REPO in master.weights and pro.license == profile.license
    sources = {source.component: (source.repo, source.path) for source in profile.sources}
    assert sources["transformer"] == (DISTILLED_REPO, "transformer")
    assert sources["transformer_full"] == (BASE_REPO, "transformer")
    assert sources["latent_upsampler"] == (BASE_REPO, "latent_upsampler")


def test_ltx2_is_the_serve_default() -> None:
    from takeone.cli import build_parser

    assert build_parser().parse_args(["serve"]).profile == "ltx-2"


def test_unservable_requests_name_the_field() -> None:
    profile = get_profile("ltx-2")
    with pytest.raises(InvalidRequest) as caught:
        profile.recipe_for(GenerationRequest(endpoint="kling-2.6", mode="master"))
    assert caught.value.field == "mode"
    with pytest.raises(InvalidRequest) as caught:
        profile.recipe_for(GenerationRequest(endpoint="kling-2.1", image="a.png", duration=7))
    assert caught.value.field == "duration"


def test_scaled_profile_changes_sizes_only() -> None:
    real = get_profile("ltx-2")
    sizes = {"16:9": (128, 64, 128, 72), "9:16": (64, 128, 72, 128), "1:1": (64, 64, 72, 72)}
    small = real.scaled(sizes, {5: 9, 10: 17}, 32, {"stg_blocks": (1,)})
    for req in requests():
        big, tiny = real.recipe_for(req), small.recipe_for(req)
        same = {f.name for f in dataclasses.fields(Recipe)} - {
            "gen_width", "gen_height", "gen_frames", "gen_fps", "output_width", "output_height",
            "max_sequence_length", "stg_blocks", "vae_tiling",
        }
        assert {name: getattr(big, name) for name in same} == {name: getattr(tiny, name) for name in same}
        assert tiny.output_frames == big.output_frames and tiny.gen_width % 64 == 0
    assert small.sources == real.sources
