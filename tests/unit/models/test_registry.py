"""The registry and the shape of ``takeone.models``: which part the API process may import,
that it stays free of torch, and that the package has no import cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from takeone.core.task import VideoTask
from takeone.models.registry import FAMILIES, PROFILES, family_loader, get_profile

PACKAGE = Path(__file__).resolve().parents[3] / "src" / "takeone" / "models"
HEAVY = ("torch", "numpy", "diffusers", "transformers", "PIL", "av")


def torch_free_modules() -> list[str]:
    """What the API process may import: the shared recipe, registry and weights modules and
    every family's ``profile`` and ``recipe`` modules."""
    shared = ["takeone.models", "takeone.models.recipe", "takeone.models.registry", "takeone.models.weights"]
    family = [
        f"takeone.models.{path.parent.name}.{path.stem}"
        for path in sorted(PACKAGE.glob("*/*.py"))
        if path.stem in ("profile", "recipe")
    ]
    return shared + family


def test_the_torch_free_part_imports_no_heavy_library() -> None:
    """Imported together, and used (every profile resolves a recipe and lists its weights),
    in a fresh interpreter: none of torch, numpy, diffusers, transformers, PIL, av loads."""
    modules = torch_free_modules()
    assert {"takeone.models.ltx2.profile", "takeone.models.wan.recipe", "takeone.models.tiny.profile"} <= set(modules)
    code = "\n".join([
        "import importlib, sys",
        f"for name in {modules!r}: importlib.import_module(name)",
        "from takeone.core.task import VideoTask",
        "from takeone.models.registry import PROFILES",
        "from takeone.models.weights import needs",
        "for profile in PROFILES.values():",
        "    profile.recipe_for(VideoTask(kind='i2v', first_frame='a.png')); needs(profile)",
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))",
    ])
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert result.stdout.strip() == "[]"


def _top_level_imports(path: Path) -> set[str]:
    """Modules of ``takeone.models`` imported at module level (not under TYPE_CHECKING, not
    inside functions): the imports that can form a cycle."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("takeone.models"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name.startswith("takeone.models"))
    return found


def _module_name(path: Path) -> str:
    relative = path.relative_to(PACKAGE.parent.parent).with_suffix("")
    parts = list(relative.parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycle_in_the_package() -> None:
    graph = {_module_name(path): _top_level_imports(path) for path in PACKAGE.rglob("*.py")}
    state: dict[str, str] = {}

    def visit(module: str, trail: tuple[str, ...]) -> None:
        if state.get(module) == "done":
            return
        assert state.get(module) != "open", f"import cycle: {' -> '.join((*trail, module))}"
        state[module] = "open"
        for imported in graph.get(module, ()):
            visit(imported, (*trail, module))
        state[module] = "done"

    for module in graph:
        visit(module, ())
    assert "takeone.models.registry" in graph and "takeone.models.ltx2.model" in graph


def test_no_dialect_vocabulary_in_the_models() -> None:
    """Models speak of tiers, kinds and audio; one API dialect's model names stay at the edge."""
    word = "kl" + "ing"
    hits = [f"{p.relative_to(PACKAGE)}:{n}" for p in PACKAGE.rglob("*.py")
            for n, line in enumerate(p.read_text().splitlines(), 1) if word in line.lower()]
    assert hits == []


def test_every_profile_has_a_registered_family_with_a_loader_module() -> None:
    for profile in PROFILES.values():
        module = FAMILIES[profile.family]
        assert (PACKAGE.parent.parent / (module.replace(".", "/") + ".py")).is_file(), module
        assert get_profile(profile.name) is profile


def test_an_unknown_family_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unsupported model family 'nope'; known: ltx2, tiny, wan"):
        family_loader("nope")


def test_each_family_serves_its_own_recipes() -> None:
    for profile in PROFILES.values():
        recipe = profile.recipe_for(VideoTask(kind="t2v"))
        assert recipe.family == ("wan" if profile.family == "wan" else "ltx2")
