"""The tiny profile's recipe table, checked case by case against the Kling rules.

Every combination of endpoint x mode x image x last frame x aspect ratio x duration x audio is
resolved, and the outcome (a recipe, or an ``InvalidRequest`` naming the right field) is
compared with an independent statement of the rules below.
"""

from __future__ import annotations

import dataclasses
import itertools
import subprocess
import sys
from typing import Any

import pytest

from takeone.core.errors import InvalidRequest
from takeone.generation import GenerationRequest
from takeone.models.profiles import PROFILES, Recipe, get_profile

ENDPOINTS = ("kling-2.1", "kling-2.6")
MODES = ("std", "pro", "master", "turbo")
ASPECTS = ("16:9", "9:16", "1:1", "4:3")
DURATIONS = (5, 10, 7)
TINY_OUTPUT = {"16:9": (256, 144), "9:16": (144, 256), "1:1": (144, 144)}
TINY_STEPS = {
    ("kling-2.1", "std"): 2,
    ("kling-2.1", "pro"): 3,
    ("kling-2.1", "master"): 4,
    ("kling-2.6", "pro"): 3,
}
OUTPUT_FRAMES = {5: 121, 10: 241}


def expected(req: GenerationRequest) -> str | dict[str, Any]:
    """The rules, stated independently: the field of the first error, or the recipe's key facts."""
    if (req.endpoint, req.mode) not in TINY_STEPS:
        return "mode"
    if req.endpoint == "kling-2.1":
        if req.image is None:
            return "image"
        pipeline, audio = ("condition" if req.image_tail else "i2v"), False
    else:
        if req.image_tail is not None:
            return "image_tail"
        pipeline, audio = ("i2v" if req.image else "t2v"), req.generate_audio
    if req.aspect_ratio not in TINY_OUTPUT:
        return "aspect_ratio"
    if req.duration not in OUTPUT_FRAMES:
        return "duration"
    width, height = TINY_OUTPUT[req.aspect_ratio]
    return {
        "pipeline": pipeline,
        "audio": audio,
        "output_width": width,
        "output_height": height,
        "output_frames": OUTPUT_FRAMES[req.duration],
        "output_fps": 24,
        "steps": TINY_STEPS[(req.endpoint, req.mode)],
    }


def all_requests() -> list[GenerationRequest]:
    images, tails, audios = (None, "a.png"), (None, "z.png"), (False, True)
    cases = itertools.product(ENDPOINTS, MODES, images, tails, ASPECTS, DURATIONS, audios)
    return [
        GenerationRequest(
            endpoint=endpoint,  # type: ignore[arg-type]
            prompt="a fox",
            mode=mode,
            image=image,
            image_tail=tail,
            aspect_ratio=aspect,
            duration=duration,
            generate_audio=audio,
        )
        for endpoint, mode, image, tail, aspect, duration, audio in cases
    ]


def case_id(req: GenerationRequest) -> str:
    given = (("img", req.image), ("tail", req.image_tail))
    inputs = "+".join(name for name, value in given if value) or "text"
    audio = "audio" if req.generate_audio else "silent"
    return f"{req.endpoint}-{req.mode}-{inputs}-{req.aspect_ratio}-{req.duration}s-{audio}"


@pytest.mark.parametrize("request_", all_requests(), ids=case_id)
def test_tiny_recipe_table(request_: GenerationRequest) -> None:
    outcome = expected(request_)
    if isinstance(outcome, str):
        with pytest.raises(InvalidRequest) as caught:
            get_profile("tiny").recipe_for(request_)
        assert caught.value.field == outcome
        assert str(caught.value).startswith(f"{outcome}:")
        return
    recipe = get_profile("tiny").recipe_for(request_)
    assert {key: getattr(recipe, key) for key in outcome} == outcome
    assert_model_valid(recipe)


def assert_model_valid(recipe: Recipe) -> None:
    """LTX-2 constraints the pipelines do not all check themselves."""
    assert recipe.family == "ltx2"
    assert recipe.gen_width % 32 == 0 and recipe.gen_height % 32 == 0
    assert (recipe.gen_frames - 1) % 8 == 0
    assert recipe.gen_fps * recipe.output_duration_s == pytest.approx(recipe.gen_frames)
    assert (recipe.gen_width > recipe.gen_height) == (recipe.output_width > recipe.output_height)
    assert recipe.stg_scale == 0.0 and recipe.max_sequence_length == 32


@pytest.mark.parametrize(
    ("cfg_scale", "guidance"), [(0.0, 1.0), (0.5, 2.0), (0.7, 2.4), (1.0, 3.0), (-1.0, 1.0), (2.0, 3.0)]
)
def test_cfg_scale_maps_linearly_onto_the_guidance_range(cfg_scale: float, guidance: float) -> None:
    req = GenerationRequest(endpoint="kling-2.6", prompt="a fox", cfg_scale=cfg_scale)
    assert get_profile("tiny").recipe_for(req).guidance_scale == pytest.approx(guidance)


def test_durations_are_exact_24fps_frame_counts() -> None:
    tiny = get_profile("tiny")
    recipes = [tiny.recipe_for(GenerationRequest(endpoint="kling-2.6", duration=d)) for d in (5, 10)]
    assert [r.output_duration_s for r in recipes] == pytest.approx([121 / 24, 241 / 24])


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown model profile 'nope'.*tiny"):
        get_profile("nope")
    assert {"tiny", "ltx-2"} <= set(PROFILES)


def test_profile_states_its_license_and_weights() -> None:
    tiny = get_profile("tiny")
    recipe = tiny.recipe_for(GenerationRequest(endpoint="kling-2.6"))
    assert tiny.license and tiny.description and recipe.license == tiny.license
    assert recipe.weights == tiny.weights == "builtin:tiny-ltx2"


def test_recipe_is_immutable() -> None:
    recipe = get_profile("tiny").recipe_for(GenerationRequest(endpoint="kling-2.6"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.steps = 99  # type: ignore[misc]


def test_profiles_import_no_heavy_libraries() -> None:
    """The API process imports profiles; torch, numpy and diffusers must stay out of it."""
    code = (
        "import sys, takeone.models, takeone.models.profiles;"
        "print(sorted(m for m in ('torch', 'numpy', 'diffusers', 'transformers') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
