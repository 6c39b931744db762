"""``benchmarks/gpu_generate.py`` where no GPU exists: its CPU smoke mode end to end in a
subprocess (as a user runs it), and its full-size builders on the meta device (no memory),
so the GPU-only code is at least constructed and sized before a GPU run is attempted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
SCRIPT = ROOT / "benchmarks" / "gpu_generate.py"
STAGES = ["text", "stage 1", "upsample", "stage 2", "vae decode", "audio decode", "encode"]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    out = tmp_path_factory.mktemp("bench") / "smoke.json"
    command = [sys.executable, str(SCRIPT), "--cpu-smoke", "--cases", "std,2.6-10s", "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(out.read_text()), done.stdout


def test_smoke_json_shape(smoke: tuple[dict[str, Any], str]) -> None:
    document, _stdout = smoke
    assert document["benchmark"] == "gpu_generate" and document["mode"] == "cpu-smoke"
    assert {"device", "date", "torch", "diffusers", "speedups", "warmup_s", "cases"} <= set(document)
    assert [row["key"] for row in document["cases"]] == ["std", "2.6-10s"]
    for row in document["cases"]:
        assert row["floor_s"] is None  # tiny models have no FLOP floor
        for path in ("plain", "optimized"):
            run = row[path]
            assert list(run["stages"]) == STAGES
            assert run["end_to_end_s"] > 0 and run["stages"]["stage 1"] > 0
        assert row["ratio_optimized_over_plain"] > 0


def test_smoke_last_line_is_one_figure(smoke: tuple[dict[str, Any], str]) -> None:
    _document, stdout = smoke
    last = stdout.strip().splitlines()[-1]
    assert last.startswith("ltx-2 2.1 std 5 s end to end: ") and last.endswith("(cpu smoke, tiny models)")


def test_full_size_builders_on_meta() -> None:
    """The real sizes, without memory: an 18.9B DiT, a 11.8B Gemma 3 text tower, and a VAE
    that the pipelines see as 32x / 8x compression."""
    import importlib

    import torch

    sys.path.insert(0, str(SCRIPT.parent))
    try:
        gpu_generate: Any = importlib.import_module("gpu_generate")
    finally:
        sys.path.remove(str(SCRIPT.parent))
    built = gpu_generate.build_full(torch.device("meta"), share_transformer=True, text_encoder="gemma")
    billions = {name: sum(p.numel() for p in built[name].parameters()) / 1e9
                for name in ("transformer", "text_encoder")}
    assert round(billions["transformer"], 1) == 18.9
    assert round(billions["text_encoder"], 1) == 11.8
    assert built["transformer_full"] is built["transformer"]
    assert (built["vae"].spatial_compression_ratio, built["vae"].temporal_compression_ratio) == (32, 8)
    assert next(built["transformer"].parameters()).dtype == torch.bfloat16
