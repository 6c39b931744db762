"""``benchmarks/batching.py`` in its CI-sized form, run as a user runs it: two real ``takeone
serve --profile tiny`` subprocesses (batch 1, then 2), one burst of two requests each.
Speed is not asserted (the figures live in BENCHMARKS.md); every job must complete, and the
last line must be the figure the JSON holds."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "benchmarks" / "batching.py"


def test_one_small_burst_at_batch_one_and_two(tmp_path: Path) -> None:
    out = tmp_path / "batching.json"
    command = [sys.executable, str(SCRIPT), "--jobs", "2", "--rounds", "1", "--max-batch", "2",
               "--window-ms", "1000", "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(out.read_text())
    rows = document["rows"]
    assert [(r["max_batch"], r["jobs"]) for r in rows] == [(1, 2), (2, 2)]
    assert all(r["jobs_per_s"] > 0 and 0 < r["p50_s"] <= r["p95_s"] for r in rows)
    last = done.stdout.strip().splitlines()[-1]
    match = re.fullmatch(r"batching: (\d+\.\d\d)x jobs/s at batch 2 vs 1 \(p95 latency (\d+\.\d\d)x\)", last)
    assert match is not None, done.stdout
    assert abs(float(match[1]) - document["jobs_per_s_ratio"]) <= 0.0051  # printed to 2 places, kept to 3
    assert abs(float(match[2]) - document["p95_ratio"]) <= 0.0051
