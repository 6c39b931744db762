"""GPU speed-up options on CPU with tiny models: each switches per profile, keeps the output's
shape, attaches where it should, and steps aside cleanly where this machine cannot use it.

Speed itself is not tested here (no wall-clock assertions); ``benchmarks/gpu_generate.py``
measures it on a GPU.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch

from takeone.core.errors import JobCancelled
from takeone.core.task import VideoTask
from takeone.models.base import Video
from takeone.models.ltx2.model import Ltx2Model
from takeone.models.ltx2.profile import SPEEDUPS
from takeone.models.ltx2.recipe import ltx2_sampling
from takeone.models.ltx2.speedups import fp8_unavailable_reason
from takeone.models.ltx2.tiny import build_tiny_components, build_tiny_ltx2_components
from takeone.models.ltx2.warmup import shrunk, warmup_recipes, warmup_sizes
from takeone.models.recipe import Profile, Recipe, Speedups
from takeone.models.registry import get_profile
from tests.unit.models.callbacks import whole

CPU = torch.device("cpu")


def _run(model: Ltx2Model, request: VideoTask, recipe: Recipe, cancel_after: int | None = None) -> Video:
    steps = [0]

    def progress(done: int, _total: int) -> None:
        steps[0] = done

    def cancel() -> bool:
        return cancel_after is not None and steps[0] >= cancel_after

    return whole(model.generate(request, recipe, progress, cancel))


@pytest.fixture
def master(scaled_ltx2: Profile, make_png: Callable[..., str]) -> tuple[VideoTask, Recipe]:
    """Image to video, tier quality, at a tiny size: the guided full-model stage 1 plus distilled stage 2."""
    request = VideoTask(kind="i2v", tier="quality", first_frame=make_png(80, 45), seed=3)
    return request, scaled_ltx2.recipe_for(request)


def _shapes(video: Video) -> tuple[Any, ...]:
    return video.all_frames().shape, None if video.audio is None else video.audio.shape


# --- options and profiles --------------------------------------------------------------


@pytest.mark.parametrize(
    "fields", [{"compile": "full"}, {"vae_tiling": "sometimes"}, {"cache": "teacache"}, {"cache_interval": 0}]
)
def test_bad_options_are_rejected(fields: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="must be"):
        Speedups(**fields)


def test_each_profile_has_its_own_speedups() -> None:
    assert get_profile("tiny").speedups == Speedups()
    assert get_profile("wan-2.2").speedups == Speedups()
    ltx2 = get_profile("ltx-2").speedups
    assert ltx2 == SPEEDUPS
    assert (ltx2.compile, ltx2.fp8, ltx2.attention_backend, ltx2.vae_tiling, ltx2.cache) == (
        "regional",
        True,
        "auto",
        "auto",
        None,
    )


def test_scaled_profiles_keep_their_speedups(scaled_ltx2: Profile) -> None:
    assert scaled_ltx2.speedups == SPEEDUPS


@pytest.mark.parametrize(
    ("mode", "fast_720p", "standard_1080p"), [("auto", False, True), ("on", True, True), ("off", False, False)]
)
def test_vae_tiling_option(mode: str, fast_720p: bool, standard_1080p: bool) -> None:
    profile = dataclasses.replace(get_profile("ltx-2"), speedups=Speedups(vae_tiling=mode))
    image = "first.png"
    fast = profile.recipe_for(VideoTask(kind="i2v", tier="fast", first_frame=image))
    standard = profile.recipe_for(VideoTask(kind="i2v", tier="standard", first_frame=image))
    assert (fast.vae_tiling, standard.vae_tiling) == (fast_720p, standard_1080p)


# --- fp8 -------------------------------------------------------------------------------


def test_fp8_is_skipped_on_cpu_with_a_reason() -> None:
    model = Ltx2Model(build_tiny_components(), CPU, speedups=Speedups(fp8=True))
    assert model.speedup_report.applied == []
    assert model.speedup_report.skipped == [
        "transformer: fp8 needs a CUDA GPU with compute capability >= 8.9; this device is cpu"
    ]
    assert model.components["transformer"].transformer_blocks[0].attn1.to_q.weight.dtype == torch.float32


def test_fp8_needs_sm89_and_torchao() -> None:
    cuda = torch.device("cuda")
    assert "sm_80" in str(fp8_unavailable_reason(cuda, (8, 0)))
    try:
        importlib.import_module("torchao")
    except ImportError:
        assert "pip install torchao" in str(fp8_unavailable_reason(cuda, (9, 0)))
    else:
        assert fp8_unavailable_reason(cuda, (9, 0)) is None


def test_loaded_profile_reports_what_cpu_skips(ltx2_model: Any) -> None:
    """The real ltx-2 speed-ups, loaded by the real loader on CPU: compile and fp8 step aside,
    ``auto`` attention finds nothing better than SDPA, and nothing is applied."""
    report = ltx2_model.speedup_report
    assert report.applied == [] and not report.compiled
    assert any("fp8" in line for line in report.skipped)
    assert any("compilation runs on CUDA only" in line for line in report.skipped)


# --- attention backend -----------------------------------------------------------------


def test_attention_backend_skips_masked_cross_attention(master: tuple[VideoTask, Recipe]) -> None:
    request, recipe = master
    plain = Ltx2Model(build_tiny_ltx2_components(), CPU)
    fast = Ltx2Model(build_tiny_ltx2_components(), CPU, speedups=Speedups(attention_backend="_native_math"))
    block = fast.components["transformer"].transformer_blocks[0]
    assert str(block.attn1.processor._attention_backend.value) == "_native_math"
    assert str(block.audio_to_video_attn.processor._attention_backend.value) == "_native_math"
    assert block.attn2.processor._attention_backend is None
    assert block.audio_attn2.processor._attention_backend is None
    assert _shapes(_run(fast, request, recipe)) == _shapes(_run(plain, request, recipe))


def test_unknown_or_missing_attention_backend_falls_back() -> None:
    model = Ltx2Model(build_tiny_components(), CPU, speedups=Speedups(attention_backend="flash"))
    assert any("'flash' is not usable" in line for line in model.speedup_report.skipped) or torch.cuda.is_available()
    auto = Ltx2Model(build_tiny_components(), CPU, speedups=Speedups(attention_backend="auto"))
    assert auto.speedup_report.applied == []


# --- feature caches --------------------------------------------------------------------


@pytest.mark.parametrize("cache", ["first_block", "taylorseer"])
def test_cache_attaches_to_master_stage_1_only(cache: str, master: tuple[VideoTask, Recipe]) -> None:
    request, recipe = master
    model = Ltx2Model(build_tiny_ltx2_components(), CPU, speedups=Speedups(cache=cache))
    assert model.components["transformer_full"].is_cache_enabled
    assert not model.components["transformer"].is_cache_enabled
    plain = Ltx2Model(build_tiny_ltx2_components(), CPU)
    assert _shapes(_run(model, request, recipe)) == _shapes(_run(plain, request, recipe))


@pytest.mark.parametrize("cache", ["first_block", "taylorseer"])
def test_cache_state_does_not_leak_from_a_cancelled_job(cache: str, master: tuple[VideoTask, Recipe]) -> None:
    """A cancelled job stops mid-denoise, before the pipeline resets its hooks; the next job
    must still start from a clean cache and give the same video as before. (TaylorSeer
    would otherwise count steps on from the cancelled job and extrapolate stale features.)"""
    request, recipe = master
    model = Ltx2Model(build_tiny_ltx2_components(), CPU, speedups=Speedups(cache=cache))
    first = _run(model, request, recipe)
    with pytest.raises(JobCancelled):
        _run(model, request, recipe, cancel_after=recipe.steps - 2)
    again = _run(model, request, recipe)
    np.testing.assert_array_equal(first.frames, again.frames)


# --- compilation -----------------------------------------------------------------------


def test_regional_compile_keeps_the_output(tiny_profile: Profile) -> None:
    """Compiles the repeated block with dynamo's ``eager`` backend: the same graph capture
    path as on a GPU without inductor's CPU code generation (minutes on 2 cores). One
    single-stage tiny recipe keeps the number of traced graphs (and the test) small."""
    request = VideoTask(kind="t2v", prompt="fox", seed=5)
    recipe = dataclasses.replace(tiny_profile.recipe_for(request), steps=2)
    compiled = Ltx2Model(build_tiny_components(), CPU, speedups=Speedups(compile="regional", compile_backend="eager"))
    assert compiled.speedup_report.compiled
    block = compiled.components["transformer"].transformer_blocks[0]
    assert block._compiled_call_impl is not None
    plain = Ltx2Model(build_tiny_components(), CPU)
    assert _shapes(_run(compiled, request, recipe)) == _shapes(_run(plain, request, recipe))


def test_inductor_compile_is_skipped_on_cpu() -> None:
    model = Ltx2Model(build_tiny_components(), CPU, speedups=Speedups(compile="regional"))
    assert not model.speedup_report.compiled
    assert model.components["transformer"].transformer_blocks[0]._compiled_call_impl is None


# --- warm-up ---------------------------------------------------------------------------


def test_warmup_recipes_cover_each_code_path_once() -> None:
    """Every kind on the distilled DiT (fast, standard) and on the full one (quality)."""
    recipes = warmup_recipes(get_profile("ltx-2"))
    paths = {(r.pipeline, ltx2_sampling(r).stage1_transformer) for r in recipes}
    assert paths == {
        ("t2v", "transformer"),
        ("i2v", "transformer"),
        ("condition", "transformer"),
        ("t2v", "transformer_full"),
        ("i2v", "transformer_full"),
        ("condition", "transformer_full"),
    }


def test_warmup_sizes_and_shrunk_recipes() -> None:
    assert warmup_sizes(32, 8, compiled=False) == [(128, 128, 9)]
    assert warmup_sizes(32, 8, compiled=True) == [(128, 128, 9), (192, 128, 17)]
    recipes = warmup_recipes(get_profile("ltx-2"))
    master = next(r for r in recipes if ltx2_sampling(r).stage1_transformer == "transformer_full")
    small = shrunk(master, 128, 128, 9)
    assert (small.stage_steps, small.gen_frames, small.vae_tiling) == ((2, 1), 9, False)
    big, little = ltx2_sampling(master), ltx2_sampling(small)
    assert (small.guidance_scale, little.stg_blocks, little.two_stage) == (master.guidance_scale, big.stg_blocks, True)


def test_warmup_runs_each_path_of_the_loaded_profile(ltx2_model: Any) -> None:
    assert ltx2_model.warmup() == len(ltx2_model.warmup_recipes) == 6


def test_warmup_without_a_plan_does_nothing(tiny_model: Any) -> None:
    assert tiny_model.warmup() == 0
