"""Which GPUs this machine has, found without importing torch (the API process never does)."""

from __future__ import annotations

import shutil
import subprocess


def count_gpus() -> int:
    """NVIDIA GPUs visible to ``nvidia-smi``; 0 where there is none or no driver."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return 0
    try:
        out = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.stdout.splitlines() if line.startswith("GPU "))
