"""Which files a profile needs, whether they are on disk, and whether it fits on a card.

Real files on disk throughout: tiny checkpoints written with ``save_pretrained`` into a Hugging
Face cache layout or ``<root>/<org>/<name>`` folders. Nothing is downloaded.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from takeone.models import weights
from takeone.models.ltx2.profile import BASE_REPO, DISTILLED_REPO
from takeone.models.recipe import WeightSource
from takeone.models.registry import get_profile
from takeone.models.weights import InsufficientGpuMemory, RepoNeed, WeightsMissing

LTX2_FOLDERS = ("tokenizer", "text_encoder", "connectors", "vae", "audio_vae", "vocoder", "scheduler",
                "latent_upsampler", "transformer")


def snapshot(cache: Path, repo: str) -> Path:
    storage = cache / f"models--{repo.replace('/', '--')}"
    return storage / "snapshots" / (storage / "refs" / "main").read_text()


@pytest.fixture
def cache_copy(ltx2_cache: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny cache that a test may damage."""
    return Path(shutil.copytree(ltx2_cache, tmp_path / "hub", symlinks=True))


def test_ltx2_needs_exactly_its_folders() -> None:
    needs = weights.needs(get_profile("ltx-2"))
    assert needs == [RepoNeed(BASE_REPO, LTX2_FOLDERS), RepoNeed(DISTILLED_REPO, ("transformer",))]
    assert needs[1].allow_patterns == ["transformer/*"]
    assert "transformer/" in needs[1].describe()


def test_builtin_profile_needs_nothing_and_always_passes(tmp_path: Path) -> None:
    assert weights.needs(get_profile("tiny")) == []
    weights.require_weights("tiny", root=tmp_path, cache_dir=tmp_path)


def test_profile_without_sources_needs_its_whole_repos() -> None:
    profile = dataclasses.replace(get_profile("tiny"), weights="org/model", pipeline_weights={"t2v": "org/other"})
    assert weights.needs(profile) == [RepoNeed("org/model"), RepoNeed("org/other")]
    assert weights.needs(profile)[0].allow_patterns is None


def test_tiny_checkpoints_in_a_cache_are_complete(ltx2_cache: Path) -> None:
    profile = get_profile("ltx-2")
    assert weights.check(profile, cache_dir=ltx2_cache) == []
    assert weights.check(profile, root=ltx2_cache) == []  # --weights naming a cache works too
    paths = weights.resolve(profile, cache_dir=ltx2_cache)
    assert paths["transformer"] == snapshot(ltx2_cache, DISTILLED_REPO) / "transformer"
    assert paths["transformer_full"] == snapshot(ltx2_cache, BASE_REPO) / "transformer"


def test_missing_weights_name_the_repos_and_the_pull_command(tmp_path: Path) -> None:
    with pytest.raises(WeightsMissing) as caught:
        weights.require_weights("ltx-2", cache_dir=tmp_path)
    message = str(caught.value)
    assert f"{BASE_REPO}/text_encoder/" in message and f"{DISTILLED_REPO}/transformer/" in message
    assert "takeone pull ltx-2" in message


def test_a_missing_folder_is_reported_alone(cache_copy: Path) -> None:
    shutil.rmtree(snapshot(cache_copy, BASE_REPO) / "vocoder")
    assert weights.check(get_profile("ltx-2"), cache_dir=cache_copy) == [f"{BASE_REPO}/vocoder/"]


def test_a_dangling_cache_link_is_missing(cache_copy: Path) -> None:
    """Interrupted downloads leave links to blobs that never arrived."""
    folder = snapshot(cache_copy, BASE_REPO) / "vae"
    weights_file = next(folder.glob("*.safetensors"))
    weights_file.unlink()
    weights_file.symlink_to(cache_copy / "blobs" / "never-downloaded")
    assert weights.check(get_profile("ltx-2"), cache_dir=cache_copy) == [f"{BASE_REPO}/vae/"]


def test_a_missing_shard_is_missing(cache_copy: Path) -> None:
    folder = snapshot(cache_copy, DISTILLED_REPO) / "transformer"
    index = {"weight_map": {"a": "diffusion_pytorch_model-00001-of-00002.safetensors",
                            "b": "diffusion_pytorch_model-00002-of-00002.safetensors"}}
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps(index))
    (folder / "diffusion_pytorch_model-00001-of-00002.safetensors").write_bytes(b"")
    assert weights.check(get_profile("ltx-2"), cache_dir=cache_copy) == [f"{DISTILLED_REPO}/transformer/"]


def test_local_folders_under_a_weights_root(ltx2_cache: Path, tmp_path: Path) -> None:
    """``--weights DIR`` with ``DIR/<org>/<name>`` folders, as ``hf download --local-dir`` makes."""
    for repo in (BASE_REPO, DISTILLED_REPO):
        shutil.copytree(snapshot(ltx2_cache, repo), tmp_path / repo)
    paths = weights.resolve(get_profile("ltx-2"), root=tmp_path, cache_dir=tmp_path / "empty")
    assert paths["vae"] == tmp_path / BASE_REPO / "vae"


def test_a_single_file_source(tmp_path: Path) -> None:
    lora = WeightSource("lora", "org/model", filename="lora.safetensors")
    profile = dataclasses.replace(get_profile("ltx-2"), sources=(lora,))
    assert weights.needs(profile)[0].allow_patterns == ["lora.safetensors"]
    (tmp_path / "org" / "model").mkdir(parents=True)
    assert weights.check(profile, root=tmp_path) == ["org/model/lora.safetensors"]
    (tmp_path / "org" / "model" / "lora.safetensors").write_bytes(b"x")
    assert weights.check(profile, root=tmp_path) == []


def test_pull_asks_for_exactly_the_needed_files(monkeypatch: pytest.MonkeyPatch, ltx2_cache: Path) -> None:
    """No network here: record what ``pull`` asks the Hub client for."""
    calls: list[tuple[str, object, object]] = []

    def record(repo: str, **kwargs: object) -> str:
        calls.append((repo, kwargs.get("allow_patterns"), kwargs.get("local_dir")))
        return str(ltx2_cache)

    monkeypatch.setattr(weights, "snapshot_download", record)
    weights.pull(get_profile("ltx-2"), root=Path("/w"), cache_dir=ltx2_cache)
    assert calls[0] == (BASE_REPO, [f"{name}/*" for name in LTX2_FOLDERS], Path("/w") / BASE_REPO)
    assert calls[1] == (DISTILLED_REPO, ["transformer/*"], Path("/w") / DISTILLED_REPO)


def test_weights_root_from_env(tmp_path: Path) -> None:
    assert weights.root_from_env({"TAKEONE_WEIGHTS": str(tmp_path)}) == tmp_path
    assert weights.root_from_env({}) is None


@pytest.mark.parametrize(
    ("card_gib", "mode", "offloaded"),
    [
        (141.0, "auto", set()),
        (141.0, "none", set()),
        (80.0, "auto", {"transformer_full"}),
        (60.0, "auto", {"transformer_full", "text_encoder"}),
        (141.0, "group", {"transformer_full", "text_encoder", "transformer"}),
        (40.0, "group", {"transformer_full", "text_encoder", "transformer"}),
    ],
)
def test_offload_plan(card_gib: float, mode: str, offloaded: set[str]) -> None:
    assert weights.plan_offload(get_profile("ltx-2"), card_gib, mode) == offloaded


@pytest.mark.parametrize(("card_gib", "mode", "hint"), [(80.0, "none", "offload"), (20.0, "auto", "more memory")])
def test_a_profile_that_cannot_fit_fails_clearly(card_gib: float, mode: str, hint: str) -> None:
    with pytest.raises(InsufficientGpuMemory, match=rf"'ltx-2' needs about 115 GiB.*{hint}"):
        weights.plan_offload(get_profile("ltx-2"), card_gib, mode)


FP8 = {"transformer", "transformer_full"}


@pytest.mark.parametrize(
    ("card_gib", "fp8", "offloaded"),
    [
        # An 80 GB card has about 79 GiB free: in bf16 the text encoder must stream too.
        (79.0, set(), {"transformer_full", "text_encoder"}),
        (79.0, FP8, {"transformer_full"}),
        (85.0, set(), {"transformer_full"}),
        (85.0, FP8, set()),
    ],
)
def test_offload_plan_counts_fp8_transformers_at_their_float8_size(
    card_gib: float, fp8: set[str], offloaded: set[str]
) -> None:
    assert weights.plan_offload(get_profile("ltx-2"), card_gib, "auto", fp8) == offloaded


def test_fp8_sizes_only_shrink_resident_components() -> None:
    profile = get_profile("ltx-2")
    shrink = 35.4 * (1 - weights.FP8_SIZE_SHARE)
    assert weights.weights_gib(profile, (), FP8) == pytest.approx(weights.weights_gib(profile) - 2 * shrink)
    streamed = {"transformer_full"}
    assert weights.weights_gib(profile, streamed, FP8) == pytest.approx(
        weights.weights_gib(profile, streamed) - shrink
    )
    with pytest.raises(InsufficientGpuMemory, match=r"'ltx-2' needs about 81 GiB"):
        weights.plan_offload(profile, 60.0, "none", FP8)


def test_unknown_offload_mode() -> None:
    with pytest.raises(ValueError, match="offload must be one of"):
        weights.plan_offload(get_profile("ltx-2"), 80.0, "sometimes")


def test_weights_and_profiles_import_no_torch_and_honour_hf_home(ltx2_cache: Path, tmp_path: Path) -> None:
    """The serve command checks weights before any worker starts: torch-free, with HF_HOME."""
    code = (
        "import sys; from takeone.models.weights import require_weights, WeightsMissing\n"
        "try:\n    require_weights('ltx-2'); print('present')\n"
        "except WeightsMissing:\n    print('missing')\n"
        "print(sorted(m for m in ('torch', 'diffusers', 'transformers') if m in sys.modules))"
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("HF_HUB_CACHE", None)
    results = []
    for home in (ltx2_cache.parent, tmp_path):
        env["HF_HOME"] = str(home)
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        results.append(run.stdout.split())
    assert results == [["present", "[]"], ["missing", "[]"]]



def test_fp8_components_only_where_fp8_runs() -> None:
    import torch

    from takeone.models.ltx2.load import fp8_components

    profile = get_profile("ltx-2")
    assert profile.speedups.fp8
    assert fp8_components(profile, torch.device("cpu")) == frozenset()  # no fp8 GEMMs on a CPU


# --- pinned revisions ----------------------------------------------------------------------

PIN_B, PIN_C = "b" * 40, "c" * 40


def test_a_pinned_revision_reads_that_snapshot(cache_copy: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two snapshots of the base repo in one cache; ``refs/main`` names the first. A pin
    (``TAKEONE_REVISIONS``, read when called) makes the loaders read the other, and a pin to a
    snapshot that is not there is missing, named with its commit."""
    head = snapshot(cache_copy, BASE_REPO)
    shutil.copytree(head, head.parent / PIN_B, symlinks=True)
    profile = get_profile("ltx-2")
    assert weights.resolve(profile, cache_dir=cache_copy)["vae"] == head / "vae"
    monkeypatch.setenv("TAKEONE_REVISIONS", f"{BASE_REPO}={PIN_B}")
    paths = weights.resolve(profile, cache_dir=cache_copy)
    assert paths["vae"] == head.parent / PIN_B / "vae" and paths["transformer"].parent.name != PIN_B
    monkeypatch.setenv("TAKEONE_REVISIONS", f"{BASE_REPO}={PIN_C}")
    missing = weights.check(profile, cache_dir=cache_copy)
    assert missing[0] == f"{BASE_REPO}@{PIN_C}/tokenizer/" and len(missing) == len(LTX2_FOLDERS)


def test_pins_in_the_profile_table_and_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    pinned = get_profile("ltx-2").with_revisions({BASE_REPO: PIN_B})
    assert {n.repo: n.revision for n in weights.needs(pinned)} == {BASE_REPO: PIN_B, DISTILLED_REPO: None}
    monkeypatch.setenv("TAKEONE_REVISIONS", f"{BASE_REPO}={PIN_C}, other/repo={PIN_B}")  # other: not read
    assert weights.needs(pinned)[0].revision == PIN_C
    with pytest.raises(ValueError, match="reads no repo other/repo"):
        get_profile("ltx-2").with_revisions({"other/repo": PIN_B})
    monkeypatch.setenv("TAKEONE_REVISIONS", "no-equals-sign")
    with pytest.raises(ValueError, match="org/name=<commit>"):
        weights.needs(pinned)


def test_pull_asks_for_the_pinned_commit(monkeypatch: pytest.MonkeyPatch, ltx2_cache: Path) -> None:
    revisions: list[object] = []

    def record(repo: str, **kwargs: object) -> str:
        revisions.append(kwargs.get("revision"))
        return str(ltx2_cache)

    monkeypatch.setattr(weights, "snapshot_download", record)
    monkeypatch.setenv("TAKEONE_REVISIONS", f"{DISTILLED_REPO}={PIN_B}")
    weights.pull(get_profile("ltx-2"), cache_dir=ltx2_cache)
    assert revisions[:2] == [None, PIN_B]


def test_a_local_folder_recorded_at_another_commit_is_missing(ltx2_cache: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """``hf download --local-dir`` records each file's commit; a pinned folder must match it."""
    for repo in (BASE_REPO, DISTILLED_REPO):
        shutil.copytree(snapshot(ltx2_cache, repo), tmp_path / repo)
    record = tmp_path / BASE_REPO / ".cache" / "huggingface" / "download" / "vae" / "config.json.metadata"
    record.parent.mkdir(parents=True)
    record.write_text(f"{PIN_B}\netag\n0\n")
    monkeypatch.setenv("TAKEONE_REVISIONS", f"{BASE_REPO}={PIN_B}")
    assert weights.check(get_profile("ltx-2"), root=tmp_path, cache_dir=tmp_path / "empty") == []
    monkeypatch.setenv("TAKEONE_REVISIONS", f"{BASE_REPO}={PIN_C}")
    assert weights.check(get_profile("ltx-2"), root=tmp_path, cache_dir=tmp_path / "empty")[0].startswith(
        f"{BASE_REPO}@{PIN_C}/")


def test_transformers_requirement_admits_only_versions_the_ltx2_pipelines_import() -> None:
    """diffusers 0.42.1's LTX-2 pipelines import Gemma4UnifiedForConditionalGeneration at module
    level; transformers has it from 5.10.1 (5.9.0 has none), so ">=5.0" admitted broken installs."""
    import tomllib
    from importlib.metadata import version

    from packaging.requirements import Requirement
    from transformers import Gemma4UnifiedForConditionalGeneration  # noqa: F401 - the import is the check

    root = Path(__file__).resolve().parents[3]
    dependencies = tomllib.loads((root / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(Requirement(d) for d in dependencies if Requirement(d).name == "transformers").specifier
    assert "5.9.0" not in spec and "5.0.0" not in spec and "5.10.1" in spec
    assert version("transformers") in spec
