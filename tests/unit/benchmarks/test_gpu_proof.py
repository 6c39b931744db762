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


def test_smoke_records_the_machine_and_both_paths_of_both_cases(
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
        assert case["plain"]["end_to_end_s"] > 0 and case["optimized"]["end_to_end_s"] > 0
    steps = [step["step"] for step in document["steps"]]
    plain, optimized = [f"{c} plain" for c in CASES], [f"{c} optimized" for c in CASES]
    assert steps == ["environment", "build", *plain, "warm-up", *optimized]
    assert document["compile"].startswith("not compiled")  # inductor is CUDA-only here


def test_smoke_prints_a_line_per_step_and_ends_with_one_figure(
    smoke: tuple[subprocess.CompletedProcess[str], dict[str, Any]],
) -> None:
    done, _document = smoke
    lines = done.stdout.strip().splitlines()
    assert sum(1 for line in lines if line.startswith("[")) == 7
    assert lines[-1].startswith("ltx-2 standard-t2v-audio-5s end to end: ")
    assert lines[-1].endswith("(cpu smoke, tiny models)")


def test_a_failing_compile_falls_back_and_still_measures(tmp_path: Path) -> None:
    done, document = proof(tmp_path, "--compile-backend", "proof_fail", "--cases", "fast-i2v-5s")
    assert done.returncode == 0, done.stderr[-2000:]
    assert document["compile"].startswith("fell back to uncompiled") and "BackendCompilerFailed" in document["compile"]
    assert document["cases"]["fast-i2v-5s"]["optimized"]["end_to_end_s"] > 0


def test_the_deadline_stops_it_and_keeps_what_it_has(tmp_path: Path) -> None:
    done, document = proof(tmp_path, "--deadline", "2")
    assert done.returncode == 3 and document["status"] == "deadline"
    assert "deadline of 2 s reached" in done.stdout and "optimized" not in json.dumps(document["cases"])
