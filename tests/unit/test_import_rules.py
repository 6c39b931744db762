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


# Each package and the packages it may import: the edge and the command line sit on top, then
# dispatch (which drives the engine), the engine (which runs the models), and the layers
# everything stands on. An import that is not listed runs against the direction.
MAY_IMPORT = {
    "core": set(),
    "backends": {"core"},
    "media": {"core"},
    "models": {"core", "media"},
    "engine": {"core", "backends", "media", "models"},
    "dispatch": {"core", "backends", "media", "models", "engine"},
    "edge": {"core", "backends", "media", "models", "dispatch"},
    "cli": {"core", "backends", "media", "models", "engine", "dispatch", "edge"},
}


def imports_against_the_direction(root: Path) -> list[str]:
    """``package/module.py -> package`` for each import of a takeone package that ``MAY_IMPORT``
    does not allow (module-level, inside functions and under ``TYPE_CHECKING`` alike)."""
    import ast

    found = []
    for package, allowed in MAY_IMPORT.items():
        for path in sorted((root / package).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text())):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0
                         else [])
                for name in names:
                    parts = name.split(".")
                    if parts[0] == "takeone" and len(parts) > 1 and parts[1] in MAY_IMPORT \
                            and parts[1] != package and parts[1] not in allowed:
                        found.append(f"{path.relative_to(root)} -> {parts[1]}")
    return found


def test_imports_run_one_way() -> None:
    """The engine owns its messages, config and render step, and knows nothing of who drives
    it; dispatch drives the engine; the edge hands the dispatcher settings, not engine types."""
    root = Path(__file__).resolve().parents[2] / "src" / "takeone"
    packages = {p.name for p in root.iterdir() if (p / "__init__.py").exists()}
    assert set(MAY_IMPORT) == packages, "give each package its place in MAY_IMPORT"
    assert imports_against_the_direction(root) == []


def test_the_direction_check_sees_a_reversed_import(tmp_path: Path) -> None:
    """The check above finds an engine module that imports dispatch, even inside a function."""
    for package in MAY_IMPORT:
        (tmp_path / package).mkdir()
    (tmp_path / "engine" / "worker.py").write_text(
        "def run():\n    from takeone.dispatch.messages import RunJob\n")
    (tmp_path / "edge" / "services.py").write_text("import takeone.engine.config\n")
    assert imports_against_the_direction(tmp_path) == ["engine/worker.py -> dispatch",
                                                       "edge/services.py -> engine"]


# Where the store's migrations name the dialect that rows written before dialects existed came
# through (the first PostgreSQL schema's default, dropped by version 4; SQLite's fill of old
# rows): history a migration must keep, not a default of new jobs.
MIGRATIONS_NAME_THE_FIRST_DIALECT = {"backends/postgres/db.py", "backends/sqlite/db.py"}


def test_core_and_backends_know_no_dialect() -> None:
    """No module of core/ or backends/ imports a dialect or names one in its code (comments
    and docstrings may tell history): a dialect is a folder under edge/dialects/, added
    without touching the store."""
    import ast
    import re

    root = Path(__file__).resolve().parents[2] / "src" / "takeone"
    names = sorted(p.parent.name for p in (root / "edge" / "dialects").glob("*/dialect.py"))
    assert "segmind" in names and len(names) >= 6
    word = re.compile(r"\b(" + "|".join(names) + r")\b", re.I)
    found = set()
    for path in [*(root / "core").rglob("*.py"), *(root / "backends").rglob("*.py")]:
        tree = ast.parse(path.read_text())
        docstrings = {id(body[0].value) for node in ast.walk(tree)
                      if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                      and (body := node.body) and isinstance(body[0], ast.Expr)
                      and isinstance(body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            imported = (node.module or "" if isinstance(node, ast.ImportFrom)
                        else " ".join(a.name for a in node.names) if isinstance(node, ast.Import) else "")
            if "takeone.edge" in imported or (isinstance(node, ast.Constant) and isinstance(node.value, str)
                                              and id(node) not in docstrings and word.search(node.value)):
                found.add(str(path.relative_to(root)))
    assert found <= MIGRATIONS_NAME_THE_FIRST_DIALECT, found - MIGRATIONS_NAME_THE_FIRST_DIALECT
