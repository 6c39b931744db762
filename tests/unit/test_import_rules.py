"""The API process never imports torch, numpy or the model libraries (architecture rule 1):
they load in worker processes only. Checked in a fresh interpreter that builds the app and
serves a few requests, so a lazy import on a request path is caught too."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HEAVY = ("torch", "numpy", "diffusers", "transformers", "accelerate", "av", "safetensors")

SCRIPT = """
import json, sys
from pathlib import Path
from fastapi.testclient import TestClient
from takeone.core.settings import Settings
from takeone.edge.app import create_app
import takeone.cli.main, takeone.cli.keys, takeone.cli.serve, takeone.cli.profiles

app = create_app(Settings(data_dir=Path(sys.argv[1]), profile="tiny", run_workers=False))
with TestClient(app) as client:
    codes = [client.get("/healthz").status_code, client.get("/openapi.json").status_code,
             client.post("/v2/kling-2.6", json={"prompt": "x"}).status_code]
print(json.dumps({"codes": codes, "heavy": [m for m in sys.argv[2:] if m in sys.modules]}))
"""


def test_the_api_side_imports_no_heavy_library(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), *HEAVY],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["codes"] == [503, 200, 401]  # the app really served requests
    assert result["heavy"] == []


def test_the_word_of_one_dialect_stays_in_its_folder() -> None:
    """Only the dialects whose model names name Kling models (Segmind's slugs, Replicate's and
    fal's model ids) and Kling's own API dialect may speak of Kling; everything else, the
    dialect registry included, stays neutral."""
    root = Path(__file__).resolve().parents[2] / "src" / "takeone"
    allowed = [root / "edge" / "dialects" / name for name in ("segmind", "kling", "replicate", "fal")]
    found = [str(p.relative_to(root)) for p in root.rglob("*")
             if p.is_file() and p.suffix in (".py", ".js", ".html", ".css", ".toml")
             and not any(p.is_relative_to(folder) for folder in allowed)
             and "kling" in p.read_text(errors="replace").lower()]
    assert found == []


def test_the_layers_below_the_edge_never_import_it() -> None:
    """core, backends, dispatch, engine, models and media run in workers and actors too: they
    must not pull in the HTTP edge (FastAPI, the dialects) or the command line."""
    import re

    root = Path(__file__).resolve().parents[2] / "src" / "takeone"
    upward = re.compile(r"^\s*(from|import)\s+takeone\.(edge|cli)\b", re.M)
    found = [str(p.relative_to(root)) for folder in ("core", "backends", "dispatch", "engine", "models", "media")
             for p in (root / folder).rglob("*.py") if upward.search(p.read_text())]
    assert found == []
