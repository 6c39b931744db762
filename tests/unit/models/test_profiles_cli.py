"""``takeone profiles`` and ``takeone pull`` (src/takeone/cli/profiles.py), run through ``main``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from takeone.cli import main


def test_profiles_table_lists_every_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "--all"]) == 0
    out = capsys.readouterr().out
    assert "ltx-2:" in out and "tiny:" in out and "LTX-2 Community License" in out
    assert "weights: Lightricks/LTX-2 @ unpinned" in out and "none is invented" in out
    master = next(line for line in out.splitlines() if line.startswith("quality   flf2v "))
    assert "condition 2-stage" in master and "40+3" in master and "1920x1088 | 1088x1920 | 1088x1088" in master
    assert "24->24" in master and "121->121 | 241->241 (5 | 10 s)" in master
    assert "  1-12 (16:9, 9:16), 1-20 (1:1)  " in master  # 1080p's memory cap, per size
    fast = next(line for line in out.splitlines() if line.startswith("fast      t2v "))
    assert "  1-20  " in fast


def test_profiles_json_has_one_row_per_case(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "--json"]) == 0
    profiles = {item["name"]: item for item in json.loads(capsys.readouterr().out)}
    ltx2 = profiles["ltx-2"]
    # 3 tiers x 5 cases (t2v, t2v+audio, i2v, i2v+audio, flf2v) x 3 aspect ratios x 20 durations,
    # less 13-20 s of 16:9 and 9:16 on the 1080p tiers (standard, quality): GPU memory
    assert len(ltx2["recipes"]) == 3 * 5 * 3 * 20 - 2 * 5 * 2 * 8
    assert ltx2["max_seconds"]["standard"] == {"16:9": 12, "9:16": 12, "1:1": 20}
    assert ltx2["max_seconds"]["fast"] == {"16:9": 20, "9:16": 20, "1:1": 20}
    row = next(r for r in ltx2["recipes"] if r["tier"] == "fast" and r["case"] == "i2v")
    assert (row["generation"], row["output"], row["steps"], row["fps"]) == ("1280x704", "1280x720", "8+3", 24)
    assert {r["audio"] for r in ltx2["recipes"] if r["case"].endswith("+audio")} == {True}
    assert ltx2["weights"][1] == {"repo": "rootonchair/LTX-2-19b-distilled", "revision": None,
                                  "folders": ["transformer"], "files": []}
    assert profiles["tiny"]["weights"] == []


def test_pull_of_a_builtin_profile_downloads_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pull", "tiny"]) == 0
    assert "needs no download" in capsys.readouterr().out


def test_pull_of_an_unknown_profile(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pull", "nope"]) == 2
    assert "unknown model profile 'nope'" in capsys.readouterr().err


def test_pull_offline_fails_with_a_clear_message(tmp_path: Path) -> None:
    """HF_HUB_OFFLINE is read when huggingface_hub is imported: run the real command."""
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "takeone.cli", "pull", "ltx-2"]
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert run.returncode == 1
    assert "pulling Lightricks/LTX-2 (tokenizer/" in run.stdout
    assert "download failed" in run.stderr and "HF_TOKEN" in run.stderr


def test_pinned_revisions_show_in_the_table(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TAKEONE_REVISIONS", "Lightricks/LTX-2=" + "a" * 40)
    assert main(["profiles", "ltx-2"]) == 0
    assert "weights: Lightricks/LTX-2 @ " + "a" * 40 in capsys.readouterr().out


def test_profiles_say_which_speed_ups_this_machine_can_give(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked for, then what this machine makes of it: no C compiler and no torchao here (an
    empty PATH, a CC that does not exist), then a torchao package on the path."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CC", str(tmp_path / "no-such-cc"))
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not (Path(p) / "torchao").exists()])
    assert main(["profiles", "ltx-2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    asked = lines.index("speed-ups: regional compile (inductor), fp8, attention auto")
    assert "fp8 falls back to bf16 (torchao not installed)" in lines[asked + 1]
    assert "compile falls back to uncompiled (no C compiler found)" in lines[asked + 1]
    (tmp_path / "torchao").mkdir()
    (tmp_path / "torchao" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["profiles", "ltx-2"]) == 0
    assert "fp8 via torchao on GPUs of compute capability >= 8.9" in capsys.readouterr().out
    assert main(["profiles", "tiny"]) == 0
    assert "speed-ups:" not in capsys.readouterr().out  # tiny asks for none
