"""Every ``takeone ...`` command the README shows parses as written: fenced shell blocks and
inline code alike, with known profiles and model slugs. (The first-five-minutes flow itself
runs end to end in tests/integration/test_first_user_cli.py, and ./run from a fresh clone in
tests/integration/test_run_script.py.)"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from takeone.cli.main import build_parser
from takeone.models.registry import PROFILES

README = Path(__file__).resolve().parents[2] / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`(?:\.venv/bin/)?(takeone [^`\n]+)`")
SEPARATORS = re.compile(r"&&|\|\||;|\||\$\(|\)|&")
REDIRECTS = re.compile(r"\s+\d?>&?\s*\S+")  # `> pool.log 2>&1`


def _commands(pieces: list[str]) -> list[str]:
    found = []
    for piece in pieces:
        for part in SEPARATORS.split(REDIRECTS.sub("", piece.strip().removeprefix("$ "))):
            part = part.strip()
            if part.startswith("takeone "):
                found.append(part)
    return found


def _blocks(text: str) -> list[str]:
    """Each ``takeone`` command line in shell blocks (continuations joined)."""
    lines: list[str] = []
    for lang, body in FENCE.findall(text):
        if lang in ("bash", "sh", "shell", "console", ""):
            lines += body.replace("\\\n", " ").splitlines()
    return _commands(lines)


def _inline(text: str) -> list[str]:
    """``takeone`` commands in inline code; usage brackets (``[--devices 0 1]``) dropped."""
    return [c.replace("[", "").replace("]", "") for c in _commands(INLINE.findall(text))]


TEXT = README.read_text()
COMMANDS = [("block", c) for c in _blocks(TEXT)] + [("inline", c) for c in _inline(TEXT)]


def test_the_readme_has_commands() -> None:
    assert len(COMMANDS) > 10 and any(c.startswith("takeone serve --profile tiny") for w, c in COMMANDS if w == "block")
    assert ("inline", "takeone pull ltx-2") in COMMANDS  # First five minutes' way to the real weights


@pytest.mark.parametrize(("where", "command"), COMMANDS)
def test_a_readme_command_parses(where: str, command: str) -> None:
    """A shell block must parse in full; inline code may name a command without its required
    options (``takeone keys create`` in a sentence), but nothing it shows may be wrong."""
    argv = shlex.split(command, comments=True)[1:]
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:
            named_only = where == "inline" and "arguments are required" in err.getvalue()
            assert exc.code == 0 or named_only, f"{command!r}: {err.getvalue().strip()}"
            return
    assert hasattr(args, "run"), f"{command!r} names no command"
    slug = getattr(args, "slug", None)
    if isinstance(slug, str) and not slug.isupper():  # `generate` checks its slug when it runs
        from takeone.cli.keys import known_routes

        assert slug in known_routes(), f"{command!r}: unknown slug {slug!r}"
    for name in (getattr(args, "profile", None), *getattr(args, "names", ())):
        if isinstance(name, str) and not name.isupper():  # PROFILE is a placeholder
            assert name in PROFILES, f"{command!r}: unknown profile {name!r}"


def _data_dirs(command: str) -> list[str]:
    argv = shlex.split(command, comments=True)
    return [argv[i + 1] for i, word in enumerate(argv[:-1]) if word == "--data-dir"]


def test_one_data_folder_in_every_example() -> None:
    """A key made in another folder than the server's is a 401: every README example and
    ``takeone --help`` example uses the default folder (``--data-dir`` only where it says so)."""
    from takeone.cli.main import EXAMPLES

    shown = [c for _, c in COMMANDS] + _commands(EXAMPLES.splitlines())
    others = {(c, d) for c in shown for d in _data_dirs(c) if d != "takeone-data"}
    assert others == set()
    assert "--data-dir data" not in build_parser().format_help()


def test_set_up_says_which_torch_fits_cpu_and_gpu_machines() -> None:
    """From PyPI, ``pip install torch`` is the multi-GB CUDA build: Set up shows the CPU wheel's
    index first and the CUDA one as the GPU machine's line, as First five minutes does."""
    section = TEXT.split("\n## Set up", 1)[1].split("\n## ", 1)[0]
    torch = [line for _, body in FENCE.findall(section) for line in body.splitlines() if "install torch" in line]
    assert any("download.pytorch.org/whl/cpu" in line and "CPU" in line for line in torch), torch
    assert any(line.startswith("# pip install torch") and "GPU" in line for line in torch), torch
