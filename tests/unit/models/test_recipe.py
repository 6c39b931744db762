"""The tiny profile's recipe table, checked case by case against the profile rules.

Every combination of tier x kind x aspect ratio x duration x frame rate x audio is resolved,
and the outcome (a recipe, or an ``InvalidRequest`` naming the right task field) is compared
with an independent statement of the rules below.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from takeone.core.errors import InvalidRequest
from takeone.core.task import KINDS, TIERS, VideoTask
from takeone.models.ltx2.recipe import Ltx2Sampling
from takeone.models.recipe import Recipe
from takeone.models.registry import PROFILES, get_profile

ASPECTS = ("16:9", "9:16", "1:1", "4:3")
DURATIONS = (5, 10, 7, 1, 13, 20, 21)
RATES = (24, 30)
TINY_OUTPUT = {"16:9": (256, 144), "9:16": (144, 256), "1:1": (144, 144)}
TINY_STEPS = {"fast": 2, "standard": 3, "quality": 4}
PIPELINES = {"t2v": "t2v", "i2v": "i2v", "flf2v": "condition"}
SERVED = range(1, 21)  # every whole second from 1 to 20 s
# The standard and quality tiers' memory cap: 16:9 and 9:16 up to 12 s (1:1 up to 20 s).
CAPPED = {("standard", "16:9"): 12, ("standard", "9:16"): 12, ("quality", "16:9"): 12, ("quality", "9:16"): 12}


def expected(task: VideoTask) -> str | dict[str, Any]:
    """The rules, stated independently: the field of the first error, or the recipe's key facts."""
    if task.aspect_ratio not in TINY_OUTPUT:
        return "aspect_ratio"
    if task.fps != 24:
        return "fps"
    if task.seconds not in SERVED or task.seconds > CAPPED.get((task.tier, task.aspect_ratio), 20):
        return "seconds"
    width, height = TINY_OUTPUT[task.aspect_ratio]
    return {
        "pipeline": PIPELINES[task.kind],
        "audio": task.audio,
        "output_width": width,
        "output_height": height,
        "output_frames": 24 * task.seconds + 1,
        "output_fps": 24,
        "steps": TINY_STEPS[task.tier],
    }


def all_tasks() -> list[VideoTask]:
    cases = itertools.product(TIERS, KINDS, ASPECTS, DURATIONS, RATES, (False, True))
    return [
        VideoTask(
            kind=kind,
            tier=tier,
            prompt="a fox",
            aspect_ratio=aspect,
            seconds=seconds,
            fps=fps,
            audio=audio,
            first_frame="a.png" if kind != "t2v" else None,
            last_frame="z.png" if kind == "flf2v" else None,
        )
        for tier, kind, aspect, seconds, fps, audio in cases
    ]


def case_id(task: VideoTask) -> str:
    audio = "audio" if task.audio else "silent"
    return f"{task.tier}-{task.kind}-{task.aspect_ratio}-{task.seconds}s-{task.fps}fps-{audio}"


@pytest.mark.parametrize("task", all_tasks(), ids=case_id)
def test_tiny_recipe_table(task: VideoTask) -> None:
    outcome = expected(task)
    if isinstance(outcome, str):
        with pytest.raises(InvalidRequest) as caught:
            get_profile("tiny").recipe_for(task)
        assert caught.value.field == outcome
        assert str(caught.value).startswith(f"{outcome}:")
        return
    recipe = get_profile("tiny").recipe_for(task)
    assert {key: getattr(recipe, key) for key in outcome} == outcome
    assert_model_valid(recipe)


@pytest.mark.parametrize("size", ["256x144", "144x256", "144x144"])
def test_an_exact_output_size_is_served_like_its_aspect_ratio(size: str) -> None:
    recipe = get_profile("tiny").recipe_for(VideoTask(kind="t2v", aspect_ratio=None, size=size))
    assert f"{recipe.output_width}x{recipe.output_height}" == size


def test_an_unserved_size_names_the_size() -> None:
    with pytest.raises(InvalidRequest) as caught:
        get_profile("tiny").recipe_for(VideoTask(kind="t2v", aspect_ratio=None, size="640x480"))
    assert caught.value.field == "size" and "256x144" in str(caught.value)


def test_an_unserved_tier_names_the_tier() -> None:
    tiny = get_profile("tiny")
    fast_only = dataclasses.replace(tiny, qualities={"fast": tiny.qualities["fast"]})
    with pytest.raises(InvalidRequest) as caught:
        fast_only.recipe_for(VideoTask(kind="t2v", tier="quality"))
    assert caught.value.field == "tier" and "serves fast" in str(caught.value)


def assert_model_valid(recipe: Recipe) -> None:
    """LTX-2 constraints the pipelines do not all check themselves."""
    assert recipe.family == "ltx2"
    assert recipe.gen_width % 32 == 0 and recipe.gen_height % 32 == 0
    assert (recipe.gen_frames - 1) % 8 == 0
    assert recipe.gen_fps * recipe.output_duration_s == pytest.approx(recipe.gen_frames)
    assert (recipe.gen_width > recipe.gen_height) == (recipe.output_width > recipe.output_height)
    assert recipe.sampling == Ltx2Sampling() and recipe.max_sequence_length == 32


@pytest.mark.parametrize(("position", "guidance"), [(0.0, 1.0), (0.5, 2.0), (0.7, 2.4), (1.0, 3.0)])
def test_guidance_maps_linearly_onto_the_guidance_range(position: float, guidance: float) -> None:
    task = VideoTask(kind="t2v", prompt="a fox", guidance=position)
    assert get_profile("tiny").recipe_for(task).guidance_scale == pytest.approx(guidance)


@pytest.mark.parametrize(("position", "guidance"), [(-1.0, 1.0), (2.0, 3.0)])
def test_quality_clamps_a_position_outside_0_to_1(position: float, guidance: float) -> None:
    """A task cannot carry such a value (it is refused at the edge); the tier clamps anyway."""
    assert get_profile("tiny").qualities["standard"].guidance(position) == pytest.approx(guidance)


def test_durations_are_exact_24fps_frame_counts() -> None:
    tiny = get_profile("tiny")
    recipes = [tiny.recipe_for(VideoTask(kind="t2v", seconds=d)) for d in (5, 10)]
    assert [r.output_duration_s for r in recipes] == pytest.approx([121 / 24, 241 / 24])


def test_unknown_profile_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown model profile 'nope'.*tiny"):
        get_profile("nope")
    assert {"tiny", "ltx-2"} <= set(PROFILES)


def test_profile_states_its_license_and_weights() -> None:
    tiny = get_profile("tiny")
    recipe = tiny.recipe_for(VideoTask(kind="t2v"))
    assert tiny.license and tiny.description and recipe.license == tiny.license
    assert recipe.weights == tiny.weights == "builtin:tiny-ltx2"


def test_recipe_is_immutable() -> None:
    recipe = get_profile("tiny").recipe_for(VideoTask(kind="t2v"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        recipe.steps = 99  # type: ignore[misc]
