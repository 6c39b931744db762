"""Counting GPUs without torch: what ``nvidia-smi -L`` lists, and 0 where it is missing or fails."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from takeone.dispatch.local.devices import count_gpus


def on_path(monkeypatch: pytest.MonkeyPatch, folder: Path, script: str | None) -> None:
    folder.mkdir()
    if script is not None:
        exe = folder / "nvidia-smi"
        exe.write_text("#!/bin/sh\n" + script)
        exe.chmod(0o755)
    monkeypatch.setenv("PATH", str(folder))


def test_the_listed_gpus_are_counted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    on_path(monkeypatch, tmp_path / "bin", '[ "$1" = "-L" ] || exit 3\n'
            'echo "GPU 0: NVIDIA H100 (UUID: GPU-1)"\necho "  MIG 1g.10gb Device 0: (UUID: MIG-1)"\n'
            'echo "GPU 1: NVIDIA H100 (UUID: GPU-2)"\n')
    assert count_gpus() == 2


@pytest.mark.parametrize("script", [None, "echo 'NVIDIA-SMI has failed' >&2\nexit 9\n", "exit 0\n"])
def test_no_driver_no_tool_or_no_gpu_is_zero(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                             script: str | None) -> None:
    on_path(monkeypatch, tmp_path / "bin", script)
    assert count_gpus() == 0
    assert os.environ["PATH"] == str(tmp_path / "bin")
