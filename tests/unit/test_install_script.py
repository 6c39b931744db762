"""scripts/install.sh (shared by ./run and .ci/run) picks the torch build from what
``nvidia-smi -L`` says, and TAKEONE_TORCH overrides it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "install.sh"
BASH = shutil.which("bash") or "/bin/bash"


def torch_choice(tmp_path: Path, nvidia_smi: str | None, override: str | None = None) -> str:
    """``takeone_torch_choice`` in a bash whose PATH holds grep and, if given, an nvidia-smi
    that runs ``nvidia_smi`` as its body."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    grep = shutil.which("grep")
    assert grep is not None
    (bin_dir / "grep").symlink_to(grep)
    if nvidia_smi is not None:
        tool = bin_dir / "nvidia-smi"
        tool.write_text(f"#!{BASH}\n{nvidia_smi}\n")
        tool.chmod(0o755)
    env = {"PATH": str(bin_dir)} | ({"TAKEONE_TORCH": override} if override is not None else {})
    run = subprocess.run([BASH, "-c", f". '{SCRIPT}' && takeone_torch_choice"], env=env,
                         capture_output=True, text=True, timeout=30)
    assert run.returncode == 0, run.stderr
    return run.stdout.strip()


GPU = 'echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0c7e)"'
NO_DRIVER = ('echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."; exit 9')


@pytest.mark.parametrize(("nvidia_smi", "override", "expected"), [
    (GPU, None, "cuda"),
    (None, None, "cpu"),          # no nvidia-smi at all
    (NO_DRIVER, None, "cpu"),     # nvidia-smi without a driver lists no GPU
    ("exit 0", None, "cpu"),      # nor does one that prints nothing
    (GPU, "auto", "cuda"),
    (GPU, "cpu", "cpu"),
    (None, "cuda", "cuda"),
    (None, "torch==2.13.0", "torch==2.13.0"),  # a pip requirement, used as it is
])
def test_the_torch_build_follows_nvidia_smi_unless_overridden(
        tmp_path: Path, nvidia_smi: str | None, override: str | None, expected: str) -> None:
    assert torch_choice(tmp_path, nvidia_smi, override) == expected
