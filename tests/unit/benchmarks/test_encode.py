"""``benchmarks/encode.py`` on a tiny clip, run as a user runs it (a subprocess per encoder).

Speed is not asserted (figures live in BENCHMARKS.md); what is checked is that every encoder
really wrote a playable MP4 of the clip, that the quality and memory columns are measured
rather than filled in, and that the last line is the one figure a script reads.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "benchmarks" / "encode.py"
FRAMES = 9


def run(tmp_path: Path, kind: str, repeats: int) -> tuple[dict[str, Any], list[str]]:
    out = tmp_path / f"{kind}.json"
    command = [sys.executable, str(SCRIPT), "--frames", str(FRAMES), "--size", "96x64", "--input", kind,
               "--repeats", str(repeats), "--json", str(out)]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text()), done.stdout.strip().splitlines()


# Two runs per encoder give min, median and max something to pick from; the summary does not
# depend on the input kind, so the second kind runs each encoder once (every check still holds).
@pytest.mark.parametrize("kind,repeats", [("uint8", 2), ("stream", 1)])
def test_every_encoder_writes_the_clip_and_the_last_line_is_the_figure(tmp_path: Path, kind: str,
                                                                       repeats: int) -> None:
    document, lines = run(tmp_path, kind, repeats)
    runs = document["runs"]
    assert len(runs) == repeats * len({r["encoder"] for r in runs})
    encoders = {r["encoder"] for r in runs}
    assert {"diffusers", "takeone-medium", "takeone"} <= encoders  # export_to_video needs [bench]
    for r in runs:
        assert r["decoded_frames"] == FRAMES, r
        assert r["input"] == kind and (r["width"], r["height"]) == (96, 64)
        # A real encode of the clip: close to the source (a wrong frame or a blank file is < 15 dB).
        assert r["y_psnr_db"] > 30 and r["rgb_psnr_db"] > 25, r
        assert r["seconds"] > 0 and r["cpu_seconds"] > 0 and r["peak_mb"] > r["baseline_mb"] > 0
    assert set(document["speedups"]) == encoders - {"takeone"}
    assert re.fullmatch(r"encode speed-up vs diffusers \(by median; fastest runs \d+\.\d\dx,"
                        r" slowest runs \d+\.\d\dx\): \d+\.\d\dx", lines[-1])
    assert float(lines[-1].split()[-1][:-1]) == document["speedups"]["diffusers"]
    by = document["speedups_by"]
    assert by["median"] == document["speedups"] and set(by) == {"min", "median", "max"}
    assert f"fastest runs {by['min']['diffusers']:.2f}x" in lines[-1]
    for seconds in document["seconds"].values():
        assert 0 < seconds["min"] <= seconds["median"] <= seconds["max"]
