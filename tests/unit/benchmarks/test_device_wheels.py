"""``benchmarks/device_wheels.py``: the wheels the GPU machine lacks, checked against its package
list, and the set installed the way the printed command installs it and run from there.

The install check downloads from the package index (CI reaches it). It installs the wheels
with ``pip install --no-index --no-deps --target`` into a bare folder, and runs the proof's CPU
smoke with ``python -S`` (no site-packages at all) on a path that holds only that folder,
``src/`` and a folder standing in for the GPU machine's image: the packages
``device_packages.txt`` lists, nothing else, at the versions read there where they are pure
Python (huggingface_hub, transformers, tokenizers, accelerate: downloaded at those versions)
and as installed here otherwise (torch, numpy, Pillow and the rest). The wheels are the same
files for Python 3.11 and 3.12 (pure Python or ``abi3``), so this runs the very set the GPU
machine gets.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "benchmarks"))
import device_wheels as dw  # noqa: E402


def test_the_wheels_are_exactly_what_the_machine_lacks() -> None:
    packages = dw.target_packages()
    assert packages["python"] == "3.12.3" and packages["torch"] == "2.11.0"
    carried = [str(canonicalize_name(spec.split("==")[0])) for spec in dw.WHEELS]
    assert dw.missing(packages) == carried == ["diffusers", "av", "torchao"]
    # A package the image gains or loses changes the set, visibly.
    assert dw.missing({**packages, "av": None}) == ["diffusers", "torchao"]
    assert "regex" not in dw.missing(packages) and "pyyaml" not in dw.missing(packages)


def test_wrong_tags_a_foreign_wheel_and_size_are_refused(tmp_path: Path) -> None:
    names = ["diffusers-0.42.1-py3-none-any.whl", "av-18.1.0-cp311-abi3-manylinux_2_28_x86_64.whl",
             "torchao-0.17.0-cp310-abi3-manylinux_2_24_x86_64.manylinux_2_28_x86_64.whl"]  # fmt: skip
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    wheels = dw.wheel_files(tmp_path)
    assert dw.check(wheels, "3.12", 0) == [] and dw.check(wheels, "3.11", 0) == []
    assert any("over 50 MiB" in problem for problem in dw.check(wheels, "3.12", 60 * dw.MIB))
    (tmp_path / "regex-2026.11.19-cp311-cp311-manylinux_2_17_x86_64.whl").write_bytes(b"x")
    problems = dw.check(dw.wheel_files(tmp_path), "3.12", 0)
    assert any(p.startswith("regex-2026.11.19-cp311") and "CPython 3.12" in p for p in problems)
    assert any("not exactly" in p for p in problems)
    (tmp_path / "av-18.1.0-cp311-abi3-manylinux_2_28_x86_64.whl").unlink()
    (tmp_path / "av-18.1.0-cp312-cp312-macosx_11_0_arm64.whl").write_bytes(b"x")
    assert any(p.startswith("av-18.1.0-cp312-cp312-macosx") for p in dw.check(dw.wheel_files(tmp_path), "3.12", 0))


def test_the_command_fits_and_uses_python3_and_a_bare_target() -> None:
    line = dw.command(".whl", "proof", 540)
    assert len(line) < 2000 and " python " not in f" {line}" and line.count("python3 ") == 2
    assert "--no-index --no-deps" in line and f"--target {dw.SITE} .whl/*.whl" in line
    assert f"PYTHONPATH={dw.SITE}:src python3 benchmarks/gpu_proof.py --out proof --deadline 540" in line
    with pytest.raises(ValueError, match="over 2000"):
        dw.command(".whl", "p" * 2000, 540)


def test_the_set_installs_bare_and_runs_the_cpu_smoke(tmp_path: Path) -> None:
    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    wheels = dw.download(tmp_path / "whl", python)
    assert dw.check(wheels, python, dw.tree_bytes()) == []
    assert dw.check(wheels, dw.TARGET_PYTHON, dw.tree_bytes()) == []  # the very files the GPU machine gets
    done = dw.simulate(tmp_path, wheels, [])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    image = tmp_path / "image"
    assert not (image / "diffusers").exists() and not (image / "av").exists() and not (image / "httpx2").exists()
    assert (tmp_path / "site" / "diffusers").is_dir() and (image / "torch").is_symlink()
    out = tmp_path / "proof"
    document = json.loads((out / "proof.json").read_text())
    assert document["status"] == "complete"
    environment = document["environment"]
    assert (environment["diffusers"], environment["av"], environment["torchao"]) == ("0.42.1", "18.1.0", "0.17.0")
    assert environment["transformers"] == "5.17.0"
    # The GPU run's full-size build (gpu_generate.build_full) with the image's transformers, on
    # the meta device: every class and config it needs exists there, at no memory.
    check = ("import sys, torch; sys.path.insert(0, 'benchmarks'); import gpu_generate as gg; "
             "c = gg.build_full(torch.device('meta'), True, 'gemma'); "
             "print(round(sum(p.numel() for p in c['transformer'].parameters()) / 1e9, 2))")  # fmt: skip
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "PYTHONPATH": f"{tmp_path / 'site'}:{image}:src"}
    built = subprocess.run([sys.executable, "-S", "-c", check], env=env, cwd=ROOT, capture_output=True, text=True,
                           timeout=240, check=False)  # fmt: skip
    assert built.returncode == 0 and built.stdout.strip() == "18.88", built.stderr[-3000:]
