"""The ``ltx-2.5`` profile: its recipe table, tiny checkpoints in its repo's layout loaded by
the class names of its ``model_index.json`` (Gemma 4, the 48 kHz vocoder), every case
rendered on CPU, the ancestral stage-1 sampler, and ``pull`` of a gated repo."""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from takeone.core.task import KINDS, TIERS, TaskKind, Tier, VideoTask
from takeone.engine.render import render
from takeone.models import weights
from takeone.models.loader import load_video_model
from takeone.models.ltx2.model import Ltx2Model
from takeone.models.ltx2.profile import DISTILLED_SIGMAS, REPO_25, STAGE_2_SIGMAS
from takeone.models.ltx2.recipe import ltx2_sampling
from takeone.models.ltx2.sampler import AncestralFlowMatchScheduler
from takeone.models.recipe import Profile
from takeone.models.registry import get_profile
from tests.mp4probe import probe
from tests.unit.models.callbacks import ignore, never
from tests.unit.models.conftest import TINY_LTX2_FRAMES, TINY_LTX2_SIZES
from tests.unit.models.ltx2.reference import full_model_schedule

FOLDERS_25 = ("tokenizer", "text_encoder", "connectors", "vae", "audio_vae", "vocoder", "scheduler",
              "latent_upsampler", "transformer", "transformer_full")


@pytest.fixture(scope="session")
def ltx25_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from takeone.models.ltx2.tiny import write_tiny_checkpoints

    cache = tmp_path_factory.mktemp("hf-home-25") / "hub"
    write_tiny_checkpoints(get_profile("ltx-2.5"), cache)
    return cache


@pytest.fixture(scope="session")
def scaled_ltx25() -> Profile:
    return get_profile("ltx-2.5").scaled(TINY_LTX2_SIZES, TINY_LTX2_FRAMES, 32, {"stg_blocks": (1,)})


@pytest.fixture(scope="session")
def ltx25_model(scaled_ltx25: Profile, ltx25_cache: Path) -> Ltx2Model:
    model = load_video_model(scaled_ltx25, "cpu", weights=ltx25_cache)
    assert isinstance(model, Ltx2Model)
    return model


# --- the recipe table (real sizes) ----------------------------------------------------------


@pytest.mark.parametrize(("tier", "kind"), list(itertools.product(TIERS, KINDS)))
def test_recipe_table_follows_the_reference(tier: Tier, kind: TaskKind) -> None:
    task = VideoTask(kind=kind, tier=tier, first_frame="a.png" if kind != "t2v" else None,
                     last_frame="z.png" if kind == "flf2v" else None)
    recipe = get_profile("ltx-2.5").recipe_for(task)
    sampling = ltx2_sampling(recipe)
    assert sampling.two_stage and sampling.use_cross_timestep and recipe.stage_steps[1] == 3
    assert sampling.stage2_sigmas == STAGE_2_SIGMAS and recipe.output_fps == 24
    if tier == "quality":
        assert (sampling.stage1_transformer, sampling.stage1_sampler, recipe.steps) == ("transformer_full", "euler", 30)
        assert sampling.sigmas == pytest.approx(full_model_schedule(30))
        assert (recipe.guidance_scale, sampling.stg_blocks, sampling.stg_scale, sampling.modality_scale) == (
            3.0, (28,), 1.0, 3.0)
        assert (sampling.audio_guidance_scale, sampling.guidance_rescale) == (7.0, 0.7)
    else:
        assert (sampling.stage1_transformer, sampling.stage1_sampler, sampling.sigmas) == (
            "transformer", "ancestral", DISTILLED_SIGMAS)
        assert recipe.guidance_scale == 1.0
    assert (recipe.output_width, recipe.output_height) == ((1280, 720) if tier == "fast" else (1920, 1080))


def test_every_weight_comes_from_the_one_lightricks_repo() -> None:
    profile = get_profile("ltx-2.5")
    assert {source.repo for source in profile.sources} == {REPO_25}
    need = weights.needs(profile)[0]
    assert need.folders == FOLDERS_25 and need.files == ("model_index.json",)
    assert "Community License" in profile.license and "$10M" in profile.license and "HF_TOKEN" in profile.description


def test_ltx2_stays_the_serve_default() -> None:
    from takeone.cli.main import build_parser

    assert build_parser().parse_args(["serve"]).profile == "ltx-2"


# --- tiny checkpoints in the real layout, loaded by class names -----------------------------


def _snapshot(cache: Path) -> Path:
    storage = cache / f"models--{REPO_25.replace('/', '--')}"
    return storage / "snapshots" / (storage / "refs" / "main").read_text()


def test_tiny_checkpoints_have_the_repos_layout(ltx25_cache: Path) -> None:
    snapshot = _snapshot(ltx25_cache)
    assert sorted(p.name for p in snapshot.iterdir()) == sorted((*FOLDERS_25, "model_index.json"))
    index = json.loads((snapshot / "model_index.json").read_text())
    assert index["_class_name"] == "LTX2Pipeline"
    assert index["text_encoder"] == ["transformers", "Gemma4UnifiedForConditionalGeneration"]
    assert index["vocoder"] == ["ltx2", "LTX2VocoderWithBWE"]
    assert weights.check(get_profile("ltx-2.5"), cache_dir=ltx25_cache) == []


def test_components_load_as_the_classes_the_repo_names(ltx25_model: Ltx2Model) -> None:
    parts = ltx25_model.components
    assert type(parts["text_encoder"]).__name__ == "Gemma4UnifiedForConditionalGeneration"
    assert type(parts["vocoder"]).__name__ == "LTX2VocoderWithBWE" and ltx25_model.sample_rate == 48_000
    assert parts["transformer"].config.gated_attn and parts["transformer_full"].config.perturbed_attn
    assert parts["transformer"] is not parts["transformer_full"]
    assert type(ltx25_model.upsampler).__name__ == "LTX2LatentUpsamplePipeline"


def test_a_class_from_outside_the_allowed_libraries_is_refused(ltx25_cache: Path, tmp_path: Path,
                                                              scaled_ltx25: Profile) -> None:
    """A repo's files pick among diffusers' and transformers' classes, never other code."""
    copy = Path(shutil.copytree(ltx25_cache, tmp_path / "hub", symlinks=False))
    index_file = _snapshot(copy) / "model_index.json"
    index = json.loads(index_file.read_text())
    index["vocoder"] = ["os", "system"]
    index_file.write_text(json.dumps(index))
    with pytest.raises(ValueError, match="from 'os'; takeone loads classes of transformers, diffusers, ltx2 only"):
        load_video_model(scaled_ltx25, "cpu", weights=copy)


# --- every case renders ---------------------------------------------------------------------


@pytest.mark.parametrize(("tier", "kind"), list(itertools.product(TIERS, KINDS)))
def test_every_case_renders_with_48khz_audio(
    tier: Tier, kind: TaskKind, ltx25_model: Ltx2Model, scaled_ltx25: Profile,
    make_png: Callable[..., str], out_file: Path,
) -> None:
    task = VideoTask(kind=kind, tier=tier, prompt="a red fox runs through snow", audio=True, seed=4,
                     first_frame=make_png(400, 300, 1) if kind != "t2v" else None,
                     last_frame=make_png(300, 400, 2) if kind == "flf2v" else None)
    info = render(ltx25_model, scaled_ltx25, task, out_file, ignore, never)
    mp4 = probe(out_file.read_bytes())
    assert (mp4.codec, mp4.width, mp4.height, mp4.fps, mp4.frames) == ("h264", 128, 72, 24.0, 121)
    assert mp4.audio_codec == "aac" and info.has_audio
    assert mp4.audio_duration == pytest.approx(121 / 24, abs=0.07)


# --- the ancestral stage-1 sampler ---------------------------------------------------------


def test_distilled_stage_one_samples_ancestrally_and_reproducibly(
    ltx25_model: Ltx2Model, scaled_ltx25: Profile
) -> None:
    task = VideoTask(kind="t2v", tier="fast", prompt="a fox", seed=9)
    recipe = scaled_ltx25.recipe_for(task)
    first, again = (ltx25_model.generate(task, recipe, ignore, never).all_frames() for _ in range(2))
    euler = dataclasses.replace(recipe, sampling=dataclasses.replace(ltx2_sampling(recipe), stage1_sampler="euler"))
    plain = ltx25_model.generate(task, euler, ignore, never).all_frames()
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, plain)


def test_the_ancestral_step_is_the_references_eta_1_step() -> None:
    """Stated independently: down to sigma_down = s_next^2 / s, then renoise to s_next with
    the variance-preserving rescale (alpha = 1 - sigma); the last step returns x0."""
    scheduler = AncestralFlowMatchScheduler(shift=1.0)
    scheduler.set_timesteps(sigmas=[0.8, 0.4], device="cpu")
    scheduler.noise_seed = 3
    x, velocity = torch.full((1, 4), 0.5), torch.full((1, 4), 0.25)
    stepped = scheduler.step(velocity, scheduler.timesteps[0], x, return_dict=False)[0]
    s, n = 0.8, 0.4
    x0, down = x - s * velocity, n * n / s
    moved = (down / s) * x + (1 - down / s) * x0
    renoise = (n**2 - down**2 * (1 - n) ** 2 / (1 - down) ** 2) ** 0.5
    noise = torch.randn((1, 4), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(stepped, ((1 - n) / (1 - down)) * moved + renoise * noise)
    last = scheduler.step(velocity, scheduler.timesteps[1], stepped, return_dict=False)[0]
    torch.testing.assert_close(last, stepped - n * velocity)


# --- pulling a gated repo -------------------------------------------------------------------


def test_pull_without_access_says_what_to_do(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Hub answers 401/403 for a gated repo without an accepted-terms token."""
    import httpx2
    from huggingface_hub.errors import GatedRepoError

    from takeone.cli.main import main

    def refuse(repo: str, **_: object) -> str:
        response = httpx2.Response(403, request=httpx2.Request("GET", f"https://huggingface.co/api/models/{repo}"))
        raise GatedRepoError(f"403 Client Error. Cannot access gated repo for url {repo}.", response=response)

    monkeypatch.setattr(weights, "snapshot_download", refuse)
    with pytest.raises(PermissionError, match="Accept its terms at https://huggingface.co/Lightricks/LTX-2.5-Diffusers"):
        weights.pull(get_profile("ltx-2.5"))
    assert main(["pull", "ltx-2.5"]) == 1
    err = capsys.readouterr().err
    assert "access to Lightricks/LTX-2.5-Diffusers is not granted" in err and "HF_TOKEN" in err


def test_warm_up_runs_every_code_path(ltx25_model: Ltx2Model) -> None:
    assert ltx25_model.warmup() == len(ltx25_model.warmup_recipes) == 6
