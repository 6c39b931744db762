"""``benchmarks/overhead.py`` with two rounds, run as a user runs it: a real ``takeone serve``
subprocess, the in-process direct child and both HTTP paths. Latency is not asserted (the
figures live in BENCHMARKS.md); the three paths must each complete every round, and the last
line must be the figure the JSON holds."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "benchmarks" / "overhead.py"


def test_two_rounds_of_every_path(tmp_path: Path) -> None:
    out = tmp_path / "overhead.json"
    command = [sys.executable, str(SCRIPT), "--repeats", "2", "--warmup", "1", "--json", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    document = json.loads(out.read_text())
    timings = {t["path"]: t for t in document["timings"]}
    assert list(timings) == ["direct", "blocking", "queued"]
    for timing in timings.values():
        assert timing["runs"] == 2 and 0 < timing["min_ms"] <= timing["median_ms"] <= timing["p90_ms"]
        assert timing["p90_ms"] <= timing["max_ms"]
    last = done.stdout.strip().splitlines()[-1]
    assert re.fullmatch(r"serving overhead \(blocking median - direct median\): -?\d+\.\d ms", last)
    assert float(last.split()[-2]) == document["added_median_ms"]["blocking"]
