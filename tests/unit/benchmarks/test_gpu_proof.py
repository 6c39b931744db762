"""``benchmarks/gpu_proof.py`` where no GPU exists: its CPU smoke mode end to end in a
subprocess, as a user runs it, including the compile fallback and the deadline."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "benchmarks" / "gpu_proof.py"
CASES = ["fast-i2v-5s", "standard-t2v-audio-5s"]


def proof(out: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    command = [sys.executable, str(SCRIPT), "--cpu-smoke", "--out", str(out), *extra]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180, cwd=ROOT, check=False)
    return done, json.loads((out / "proof.json").read_text())


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    return proof(tmp_path_factory.mktemp("proof"))


def test_smoke_records_the_machine_then_the_cheap_figures_first(
    smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    done, document = smoke
    assert done.returncode == 0, done.stderr[-2000:]
    assert (document["benchmark"], document["mode"], document["status"]) == ("gpu_proof", "cpu-smoke", "complete")
    environment = document["environment"]
    assert {"python", "torch", "diffusers", "transformers", "c_compiler", "attention_backend"} <= set(environment)
    assert environment["attention_backend"] == "native SDPA"  # nothing better on CPU
    assert list(document["cases"]) == CASES
    for case in document["cases"].values():
        assert case["speed-ups"]["end_to_end_s"] > 0 and case["compiled"]["end_to_end_s"] > 0
    steps = [step["step"] for step in document["steps"]]
    speedups = [f"{c} speed-ups" for c in CASES]
    compiled = [name for c in CASES for name in (f"{c} compiled (first)", f"{c} compiled")]
    assert steps == ["environment", "build", f"{CASES[0]} plain", "speed-ups", *speedups,
                     "compile graph", "compile graph", "compile", *compiled, *[f"mp4 {c}" for c in CASES],
                     "batch", "loras", "gpus"]
    assert document["steps"][-1]["note"] == "one GPU here"  # 1 vs all GPUs only where there are several
    assert set(document["cases"][CASES[0]]) == {"plain", "speed-ups", "compiled"}
    assert set(document["cases"][CASES[1]]) == {"speed-ups", "compiled"}  # the plain baseline: one case
    assert document["compile"].startswith("not compiled")  # inductor is CUDA-only here
    assert document["errors"] == [] and [s["path"] for s in document["steps"] if s["step"] == "compile graph"] == [
        "t2v/128x128x9", "i2v/128x128x9"]
    batch = document["batch"]  # the fast tier alone, then four such jobs in one batched run
    assert batch["jobs"] == 4 and batch["alone"]["end_to_end_s"] > 0 and batch["batched"]["end_to_end_s"] > 0
    lora = document["loras"]  # 8 resident LoRAs, switched warm, then one job with a LoRA at the tiny size
    assert lora["resident"] == 8 and 0 < lora["switch_p50_ms"] <= lora["switch_max_ms"]
    assert lora["job"]["end_to_end_s"] > 0 and lora["case"] == CASES[0]
    build = document["steps"][1]
    assert build["seconds"] > 0 and "free_gib_before" in build and "free_gib_after" in build


def test_smoke_checks_each_delivered_mp4_against_its_recipe(
    smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    _done, document = smoke
    fast, standard = (document["mp4"][c] for c in CASES)
    assert fast["problems"] == [] and fast["found"]["frames"] == fast["wanted"]["frames"] == 121
    assert fast["found"]["size"] == fast["wanted"]["size"] and fast["found"]["audio_rate"] is None
    assert standard["problems"] == [] and standard["found"]["audio_rate"] == standard["wanted"]["audio_rate"]
    assert abs(standard["found"]["audio_s"] - standard["wanted"]["audio_s"]) < 0.15


def test_smoke_prints_a_line_per_step_and_ends_with_one_figure(
    smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    done, _document = smoke
    lines = done.stdout.strip().splitlines()
    assert sum(1 for line in lines if line.startswith("[")) == 18  # the last: "gpus: gpus=0, note=one GPU here"
    assert any(line.endswith("gpus: gpus=0, note=one GPU here") for line in lines)
    assert lines[-1].startswith("ltx-2 standard-t2v-audio-5s compiled end to end: ")
    assert lines[-1].endswith("(cpu smoke, tiny models)")


def test_a_failing_step_is_recorded_and_the_rest_still_runs(tmp_path: Path) -> None:
    done, document = proof(tmp_path, "--fail-step", "speed-ups")
    assert done.returncode == 1 and document["status"] == "errors"
    (error,) = document["errors"]
    assert error["step"] == "speed-ups" and "failed on purpose" in error["error"] and "Traceback" in error["traceback"]
    assert set(document["cases"][CASES[0]]) == {"plain", "compiled"} and set(document["cases"][CASES[1]]) == {
        "compiled"}  # fmt: skip
    assert document["compile"].startswith("not compiled")  # tried all the same: it builds its own model
    assert document["mp4"][CASES[0]]["found"]["path"] == "compiled" and document["mp4"][CASES[0]]["problems"] == []
    assert done.stdout.strip().splitlines()[-1].startswith(f"ltx-2 {CASES[1]} compiled end to end: ")


def test_a_failing_build_stops_after_the_environment(tmp_path: Path) -> None:
    done, document = proof(tmp_path, "--fail-step", "build")
    assert done.returncode == 1 and document["status"] == "errors" and "environment" in document
    assert [error["step"] for error in document["errors"]] == ["build"] and document["cases"] == {}
    assert done.stdout.strip().splitlines()[-1].endswith("(errors)")


def test_a_failing_compile_falls_back_and_still_measures(tmp_path: Path) -> None:
    done, document = proof(tmp_path, "--compile-backend", "proof_fail", "--cases", "fast-i2v-5s")
    assert done.returncode == 0, done.stderr[-2000:]
    assert document["compile"].startswith("fell back to uncompiled") and "BackendCompilerFailed" in document["compile"]
    assert document["cases"]["fast-i2v-5s"]["compiled"]["end_to_end_s"] > 0


def test_an_attention_kernel_failing_falls_back_and_still_measures(tmp_path: Path) -> None:
    """cuDNN attention has no CPU kernel: its first call raises, as a flash kernel refusing a GPU would."""
    done, document = proof(tmp_path, "--attention-backend", "_native_cudnn", "--cases", "fast-i2v-5s")
    assert done.returncode == 0 and document["status"] == "complete", done.stderr[-2000:]
    skipped = document["speedups"]["skipped"]
    assert any(line.startswith("transformer: attention backend failed during warm-up") for line in skipped)
    assert document["cases"]["fast-i2v-5s"]["compiled"]["end_to_end_s"] > 0 and document["errors"] == []


def test_the_deadline_stops_it_and_keeps_what_it_has(tmp_path: Path) -> None:
    done, document = proof(tmp_path, "--deadline", "2")
    assert done.returncode == 3 and document["status"] == "deadline"
    assert "deadline of 2 s reached" in done.stdout and "compiled" not in json.dumps(document["cases"])
