"""``takeone --help`` and a command's own ``--help`` import only the argument parser's needs:
not the HTTP stack, the dispatcher, PIL or torch (each command imports its own when it runs)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("fastapi", "uvicorn", "starlette", "httpx", "PIL", "torch", "numpy", "takeone.dispatch",
         "takeone.edge.app", "takeone.edge.dialects.registry", "takeone.edge.dialects.segmind.registry",
         "takeone.models.registry")
PROBE = """
import contextlib, io, json, sys
from takeone.cli import main
with contextlib.redirect_stdout(io.StringIO()) as out:
    try:
        main(sys.argv[1:])
    except SystemExit:
        pass
print(json.dumps({"help": out.getvalue(), "modules": sorted(sys.modules)}))
"""


def _imports(*argv: str) -> tuple[str, set[str]]:
    run = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True,
                         check=True, timeout=120)
    seen = json.loads(run.stdout)
    return seen["help"], set(seen["modules"])


@pytest.mark.parametrize("argv", [("--help",), ("generate", "--help"), ("serve", "--help"),
                                  ("keys", "--help"), ("keys", "create", "--help"), ("db", "--help")])
def test_help_imports_no_heavy_library(argv: tuple[str, ...]) -> None:
    text, modules = _imports(*argv)
    assert "usage: takeone" in text
    loaded = sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))
    assert loaded == [], f"takeone {' '.join(argv)} imported {loaded}"


def test_the_first_example_slug_takes_a_prompt_alone() -> None:
    """The slug in ``takeone --help``'s first example is a constant; it must still run as
    written (no image), and be a slug the dialect knows."""
    from takeone.cli.main import EXAMPLES
    from takeone.edge.dialects.segmind.example import PROMPT_ONLY_SLUG
    from takeone.edge.dialects.segmind.registry import ENDPOINTS

    spec = ENDPOINTS[PROMPT_ONLY_SLUG]
    assert (spec.first_frame_field is None
            or not spec.schema.model_fields[spec.first_frame_field].is_required())
    assert "{slug}" in EXAMPLES.splitlines()[0]


def test_generate_names_an_unknown_slug() -> None:
    run = subprocess.run([sys.executable, "-m", "takeone.cli", "generate", "no-such-model", "--profile", "tiny"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    assert "unknown slug 'no-such-model'" in run.stderr and "known:" in run.stderr
