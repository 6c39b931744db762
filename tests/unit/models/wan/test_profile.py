"""The ``wan-2.2`` recipe table at its real sizes, checked against Wan's constraints.

These tests import no torch: they check what the API process decides before queueing (every
case resolves to a recipe the Wan pipelines accept, or to a 400 naming the field), while
tests/unit/models/test_wan_render.py runs the recipes, shrunk, on tiny checkpoints.
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Any

import pytest

from takeone.core.errors import InvalidRequest
from takeone.core.task import KINDS, VideoTask
from takeone.edge.errors import HTTP_STATUS
from takeone.models.recipe import Recipe
from takeone.models.registry import get_profile
from takeone.models.wan.profile import FLF2V_REPO, I2V_REPO, T2V_REPO, shrink
from takeone.models.wan.recipe import WanSampling

OUTPUT = {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (720, 720)}
GEN_480P = {"16:9": (832, 480), "9:16": (480, 832), "1:1": (624, 624)}
GEN_720P = {"16:9": (1280, 720), "9:16": (720, 1280), "1:1": (960, 960)}
TIERS_ = {"fast": (40, GEN_480P), "standard": (40, GEN_720P), "quality": (50, GEN_720P)}
FRAMES = {1: (17, 17), 3: (49, 49), 5: (81, 81), 10: (161, 161)}  # 16 s + 1 at 16 fps, both
WEIGHTS = {"i2v": I2V_REPO, "t2v": T2V_REPO, "condition": FLF2V_REPO}
BOUNDARY = {"i2v": 0.9, "t2v": 0.875, "condition": None}
PIPELINES = {"t2v": "t2v", "i2v": "i2v", "flf2v": "condition"}


def servable_requests() -> list[VideoTask]:
    """Every distinct servable case: tier x kind x aspect x duration (silent)."""
    return [
        VideoTask(kind=kind, tier=tier, prompt="fox", first_frame="a.png" if kind != "t2v" else None,
                  last_frame="z.png" if kind == "flf2v" else None, aspect_ratio=aspect, seconds=seconds)
        for tier, kind, aspect, seconds in itertools.product(TIERS_, KINDS, OUTPUT, FRAMES)
    ]  # type: ignore[arg-type]


def case_id(req: VideoTask) -> str:
    return f"{req.tier}-{req.kind}-{req.aspect_ratio}-{req.seconds}s"


@pytest.mark.parametrize("request_", servable_requests(), ids=case_id)
def test_real_recipe_table(request_: VideoTask) -> None:
    recipe = get_profile("wan-2.2").recipe_for(request_)
    steps, gen_sizes = TIERS_[request_.tier]
    if request_.kind == "flf2v":
        gen_sizes = GEN_720P  # the FLF2V checkpoint is 720p-only, on every tier
    pipeline = PIPELINES[request_.kind]
    gen_frames, output_frames = FRAMES[request_.seconds]
    assert (recipe.family, recipe.pipeline, recipe.weights) == ("wan", pipeline, WEIGHTS[pipeline])
    assert (recipe.gen_width, recipe.gen_height) == gen_sizes[request_.aspect_ratio or ""]
    assert (recipe.output_width, recipe.output_height) == OUTPUT[request_.aspect_ratio or ""]
    assert (recipe.gen_frames, recipe.output_frames, recipe.output_fps) == (gen_frames, output_frames, 16)
    expert_guidance = {"t2v": (4.0, 3.0), "i2v": (3.5, 3.5)}.get(pipeline)
    sampling = WanSampling(BOUNDARY[pipeline], expert_guidance, {"t2v": 12.0, "i2v": 5.0}.get(pipeline))
    assert (recipe.steps, recipe.sampling, recipe.audio) == (steps, sampling, False)
    assert recipe.license == "Apache-2.0" and recipe.max_sequence_length == 512
    assert_wan_valid(recipe)


def assert_wan_valid(recipe: Recipe) -> None:
    """What Wan A14B needs and its pipelines do not all enforce (they round silently)."""
    assert recipe.gen_width % 16 == 0 and recipe.gen_height % 16 == 0
    assert (recipe.gen_frames - 1) % 4 == 0
    # Generated and delivered at A14B's trained 16 fps, every frame once (no 1-2-1-2 repeats).
    assert recipe.gen_fps == recipe.output_fps == 16 and recipe.gen_frames == recipe.output_frames
    assert (recipe.gen_frames - 1) / 16 == pytest.approx(recipe.output_duration_s, abs=0.07)
    assert (recipe.gen_width > recipe.gen_height) == (recipe.output_width > recipe.output_height)
    assert recipe.output_width % 2 == 0 and recipe.output_height % 2 == 0


@pytest.mark.parametrize("kind", ["t2v", "i2v"])
def test_audio_is_refused_with_a_400_naming_the_field(kind: str) -> None:
    request = VideoTask(kind=kind, prompt="fox", first_frame="a.png" if kind == "i2v" else None,  # type: ignore[arg-type]
                        audio=True)
    with pytest.raises(InvalidRequest) as caught:
        get_profile("wan-2.2").recipe_for(request)
    assert caught.value.field == "audio" and caught.value.value is True
    assert str(caught.value).startswith("audio:") and "silent videos only" in str(caught.value)
    assert HTTP_STATUS[type(caught.value)] == 400
    silent = dataclasses.replace(request, audio=False)
    assert get_profile("wan-2.2").recipe_for(silent).audio is False


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("aspect_ratio", {"aspect_ratio": "4:3"}),
        ("seconds", {"seconds": 16}),
        ("seconds", {"seconds": 11}),
        ("fps", {"fps": 24}),
        ("size", {"aspect_ratio": None, "size": "1920x1080"}),
    ],
)
def test_unservable_requests_name_their_field(field: str, changes: dict[str, Any]) -> None:
    request = dataclasses.replace(VideoTask(kind="i2v", first_frame="a.png"), **changes)
    with pytest.raises(InvalidRequest) as caught:
        get_profile("wan-2.2").recipe_for(request)
    assert caught.value.field == field


@pytest.mark.parametrize(("position", "guidance"), [(0.0, 1.0), (0.5, 3.0), (0.7, 3.8), (0.8, 4.2), (1.0, 5.0)])
def test_guidance_maps_onto_1_to_5(position: float, guidance: float) -> None:
    request = VideoTask(kind="i2v", first_frame="a.png", guidance=position)
    assert get_profile("wan-2.2").recipe_for(request).guidance_scale == pytest.approx(guidance)


def test_shrink_keeps_everything_but_sizes_frames_and_steps() -> None:
    real = get_profile("wan-2.2")
    small = shrink(real, gen_frames={5: 9, 10: 17}, steps=2)
    for request in (r for r in servable_requests() if r.seconds in (5, 10)):
        big, little = real.recipe_for(request), small.recipe_for(request)
        kept = ("family", "pipeline", "weights", "sampling", "guidance_scale", "audio", "output_frames")
        assert all(getattr(big, name) == getattr(little, name) for name in kept)
        assert little.steps == 2 and little.gen_frames == {5: 9, 10: 17}[request.seconds]
        assert little.gen_width % 16 == 0 and little.gen_height % 16 == 0
        assert (little.output_width, little.output_height) == (big.output_width // 8, big.output_height // 8)


def test_a_task_may_leave_fps_to_the_profile_or_ask_for_its_rate() -> None:
    task = VideoTask(kind="t2v", seconds=5)
    assert (get_profile("wan-2.2").recipe_for(task).output_fps, get_profile("ltx-2").recipe_for(task).output_fps) == (
        16, 24)
    assert get_profile("wan-2.2").recipe_for(dataclasses.replace(task, fps=16)).output_frames == 81
    with pytest.raises(InvalidRequest, match="must be 16"):
        get_profile("wan-2.2").recipe_for(dataclasses.replace(task, fps=24))


@pytest.mark.parametrize(("kind", "position", "scales"), [
    ("t2v", 0.5, (4.0, 3.0)), ("i2v", 0.5, (3.5, 3.5)),  # Wan 2.2's reference at the default guidance
    ("t2v", 0.0, (1.0, 1.0)), ("t2v", 1.0, (7.0, 5.0)), ("i2v", 0.75, (4.75, 4.75)),
    ("flf2v", 0.5, (3.0, None)),  # one expert: the mapped scale as it is
])  # fmt: skip
def test_each_expert_gets_the_references_guidance(kind: str, position: float, scales: tuple[float, Any]) -> None:
    from takeone.models.wan.recipe import expert_guidance, wan_sampling

    first, last = ("a.png" if kind != "t2v" else None), ("b.png" if kind == "flf2v" else None)
    request = VideoTask(kind=kind, first_frame=first, last_frame=last, guidance=position)  # type: ignore[arg-type]
    recipe = get_profile("wan-2.2").recipe_for(request)
    assert expert_guidance(recipe) == pytest.approx(scales) if scales[1] else expert_guidance(recipe) == scales
    shift = {"t2v": 12.0, "i2v": 5.0, "flf2v": None}[kind]
    assert wan_sampling(recipe).flow_shift == shift


def test_memory_caps_720p_at_10_s_and_480p_reaches_15() -> None:
    """The latent-token budget: 480p generation (fast) serves 15 s, 720p (standard, and the
    720p-only first+last-frame checkpoint on every tier) stops at 10 s, naming seconds."""
    wan = get_profile("wan-2.2")
    fast = wan.recipe_for(VideoTask(kind="i2v", tier="fast", first_frame="a.png", seconds=15))
    assert (fast.gen_frames, fast.output_frames) == (241, 241)
    for tier, kind in (("standard", "t2v"), ("fast", "flf2v")):
        task = VideoTask(kind=kind, tier=tier, seconds=11, first_frame="a.png" if kind == "flf2v" else None,
                         last_frame="z.png" if kind == "flf2v" else None)
        with pytest.raises(InvalidRequest) as caught:
            wan.recipe_for(task)
        assert caught.value.field == "seconds" and "at most 10" in caught.value.reason
