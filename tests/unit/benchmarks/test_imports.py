"""The benchmarks stand on their own: none imports the test suite (what both need lives
under benchmarks/services/, which the tests import instead)."""

from __future__ import annotations

import ast
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"


def imported_modules(path: Path) -> list[str]:
    names: list[str] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_no_benchmark_imports_the_tests() -> None:
    files = sorted(BENCHMARKS.rglob("*.py"))
    assert len(files) > 10, files
    offending = [f"{path.relative_to(BENCHMARKS.parent)}: {name}" for path in files
                 for name in imported_modules(path) if name == "tests" or name.startswith("tests.")]
    assert offending == []


def test_the_check_sees_an_import_of_the_tests(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import json\nfrom tests.integration.harness import Server\nimport tests.support\n")
    assert [n for n in imported_modules(sample) if n.startswith("tests")] == ["tests.integration.harness",
                                                                              "tests.support"]
