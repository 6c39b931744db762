"""Which weights ran: the commit each repo resolved to, recorded by ``pull``, read back from the
snapshots on disk, named by ``takeone profiles``, the worker's ready line and each job's
metrics, and pinned by ``--revision``. Real files on disk (tiny checkpoints in a Hugging Face
cache layout or ``<root>/<org>/<name>`` folders); the Hub client is replaced only where ``pull``
would reach the network."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest

from takeone.cli import main
from takeone.core.blobs import output_key
from takeone.core.task import VideoTask
from takeone.engine.messages import FromWorker, JobDone, RunJob, Shutdown, ToWorker, WorkerReady
from takeone.engine.worker import JobRunner, WorkerConfig, run_worker
from takeone.models import registry, weights
from takeone.models.ltx2.profile import BASE_REPO, DISTILLED_REPO
from takeone.models.recipe import Profile
from takeone.models.registry import get_profile

PIN_B, PIN_C = "b" * 40, "c" * 40


def snapshot(cache: Path, repo: str) -> Path:
    storage = cache / f"models--{repo.replace('/', '--')}"
    return storage / "snapshots" / (storage / "refs" / "main").read_text()


def test_pull_records_the_commit_each_repo_resolved_to(monkeypatch: pytest.MonkeyPatch, ltx2_cache: Path,
                                                       tmp_path: Path) -> None:  # fmt: skip
    cache = Path(shutil.copytree(ltx2_cache, tmp_path / "hub", symlinks=True))
    heads = {repo: snapshot(cache, repo) for repo in (BASE_REPO, DISTILLED_REPO)}
    real = weights.snapshot_download

    def offline(repo: str, **kwargs: object) -> str:  # what the Hub client returns: the snapshot
        return str(heads[repo]) if not kwargs.get("local_files_only") else str(real(repo, **kwargs))

    monkeypatch.setattr(weights, "snapshot_download", offline)
    (cache / weights.REVISIONS_FILE).write_text(json.dumps({"other/repo": PIN_C}))
    assert weights.pull(get_profile("ltx-2"), cache_dir=cache) == []
    recorded = json.loads((cache / weights.REVISIONS_FILE).read_text())
    assert recorded == {BASE_REPO: heads[BASE_REPO].name, DISTILLED_REPO: heads[DISTILLED_REPO].name,
                        "other/repo": PIN_C}  # fmt: skip
    assert weights.revisions(get_profile("ltx-2"), cache_dir=cache) == {r: h.name for r, h in heads.items()}


def test_local_folders_name_their_commit_or_fall_back_to_the_record(ltx2_cache: Path, tmp_path: Path) -> None:
    for repo in (BASE_REPO, DISTILLED_REPO):
        shutil.copytree(snapshot(ltx2_cache, repo), tmp_path / repo)
    record = tmp_path / BASE_REPO / ".cache" / "huggingface" / "download" / "vae" / "config.json.metadata"
    record.parent.mkdir(parents=True)
    record.write_text(f"{PIN_B}\netag\n0\n")
    profile = get_profile("ltx-2")
    assert weights.revisions(profile, tmp_path) == {BASE_REPO: PIN_B, DISTILLED_REPO: weights.UNKNOWN_REVISION}
    weights.record_revisions({DISTILLED_REPO: PIN_C}, tmp_path)
    assert weights.revisions(profile, tmp_path) == {BASE_REPO: PIN_B, DISTILLED_REPO: PIN_C}
    assert weights.revisions(profile, tmp_path / "empty", tmp_path / "no-cache") == {}


def test_profiles_name_the_commits_here_and_the_revision_flag_pins(
    ltx2_cache: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAKEONE_REVISIONS", "")  # restored after the test: --revision writes it
    base = snapshot(ltx2_cache, BASE_REPO).name
    assert main(["profiles", "ltx-2", "--weights", str(ltx2_cache)]) == 0
    out = capsys.readouterr().out
    assert f"weights here: {BASE_REPO} at {base}" in out and f"weights: {BASE_REPO} @ unpinned" in out
    assert main(["profiles", "ltx-2", "--weights", str(ltx2_cache), "--revision", f"{BASE_REPO}={PIN_B}"]) == 0
    out = capsys.readouterr().out
    assert f"weights: {BASE_REPO} @ {PIN_B}" in out and f"weights here: {BASE_REPO}" not in out  # not on disk
    assert main(["profiles", "ltx-2", "--revision", "no-equals"]) == 2
    assert "--revision: expected ORG/NAME=COMMIT (got 'no-equals')" in capsys.readouterr().err


class Transport:
    def __init__(self) -> None:
        self.sent: list[FromWorker] = []

    def send(self, message: FromWorker) -> None:
        self.sent.append(message)

    def recv(self) -> ToWorker:
        return Shutdown()


def test_the_worker_and_each_job_name_the_weights_that_ran(
    scaled_ltx2: Profile, ltx2_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAKEONE_REVISIONS", "")  # restored after the test: --revision writes it
    profile = dataclasses.replace(scaled_ltx2, name="ltx-2-named")
    monkeypatch.setitem(registry.PROFILES, profile.name, profile)  # type: ignore[index]
    config = WorkerConfig(profile=profile.name, device="cpu", weights_dir=str(ltx2_cache),
                          blobs_root=str(tmp_path), scratch_dir=str(tmp_path / "tmp"))  # fmt: skip
    heads = {repo: snapshot(ltx2_cache, repo).name for repo in (BASE_REPO, DISTILLED_REPO)}
    transport = Transport()
    run_worker(transport, config)
    ready = transport.sent[0]
    assert isinstance(ready, WorkerReady)
    assert [note for note in ready.notes if note.startswith("weights: ")] == [
        f"weights: {repo} at {commit}" for repo, commit in heads.items()]  # fmt: skip
    runner = JobRunner(Transport(), config)
    task = VideoTask(kind="t2v", prompt="a fox", tier="fast", seed=3)
    result = runner._run(RunJob("job-w", task.to_dict(), output_key("job-w")))
    assert isinstance(result, JobDone), result
    assert result.metrics["weights"] == heads


def test_the_start_banner_names_the_speed_ups_and_the_weights_here(
    ltx2_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from takeone.cli.serve import _profile_lines
    from takeone.core.settings import Settings

    monkeypatch.setenv("TAKEONE_REVISIONS", "")
    lines = _profile_lines(Settings(data_dir=tmp_path, profile="ltx-2", weights_dir=ltx2_cache))
    assert lines[0] == "speed-ups: regional compile (inductor), fp8, attention auto"
    assert lines[-2:] == [f"weights here: {repo} at {snapshot(ltx2_cache, repo).name}"
                          for repo in (BASE_REPO, DISTILLED_REPO)]  # fmt: skip
    assert _profile_lines(Settings(data_dir=tmp_path, profile="tiny")) == []
