"""The command line's edges a new user meets: credits go one way per command, every argument
has help, ``takeone keys`` alone lists its commands, an error comes before any output, a busy
port is one line at once, and a second database is never made silently."""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from takeone.cli.main import build_parser


def _takeone(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "takeone.cli", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=timeout)


def _key(d: Path, credits: str = "5") -> str:
    run = _takeone("keys", "create", "--data-dir", str(d), "--credits", credits)
    assert run.returncode == 0, run.stderr
    return run.stdout.split()[1]  # "created key_... with N credits"


def test_credit_takes_positive_amounts_and_debit_removes(tmp_path: Path) -> None:
    key = _key(tmp_path)
    for amount in ("-5", "0"):
        run = _takeone("keys", "credit", "--data-dir", str(tmp_path), key, "--", amount)
        assert run.returncode == 2 and "AMOUNT" in run.stderr and "keys debit" in run.stderr, run.stderr
        assert run.stdout == ""
    run = _takeone("keys", "debit", "--data-dir", str(tmp_path), key, "2")
    assert run.returncode == 0 and "now has 3 credits" in run.stdout, run.stdout + run.stderr
    run = _takeone("keys", "debit", "--data-dir", str(tmp_path), key, "10")
    assert run.returncode == 2 and "negative (it is 3)" in run.stderr, run.stderr
    run = _takeone("keys", "debit", "--data-dir", str(tmp_path), key, "--", "-1")
    assert run.returncode == 2 and "keys credit" in run.stderr, run.stderr
    assert "now has 3.5 credits" in _takeone("keys", "credit", "--data-dir", str(tmp_path), key, "0.5").stdout


def _arguments(parser: argparse.ArgumentParser, path: str) -> Iterator[tuple[str, argparse.Action]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _arguments(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, action


def test_every_argument_has_help() -> None:
    bare = [f"{path}: {action.dest}" for path, action in _arguments(build_parser(), "takeone")
            if not action.help]
    assert bare == []


def test_keys_alone_lists_its_commands() -> None:
    run = _takeone("keys")
    assert run.returncode == 2
    for command in ("create", "list", "revoke", "credit", "debit", "webhook-secret", "key-pair"):
        assert command in run.stdout, run.stdout
    assert "generate" not in run.stdout  # not the top-level usage


def test_an_error_comes_before_any_output(tmp_path: Path) -> None:
    run = _takeone("keys", "list", "--data-dir", str(tmp_path / "missing"))
    assert run.returncode == 2 and run.stdout == "" and "no takeone data folder" in run.stderr


def test_a_busy_port_is_one_line_at_once(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        started = time.monotonic()
        run = _takeone("serve", "--profile", "tiny", "--data-dir", str(tmp_path), "--port", str(port))
        took = time.monotonic() - started
    assert run.returncode == 2 and run.stdout == "", run.stdout
    assert len(run.stderr.splitlines()) == 1 and "--port" in run.stderr and str(port) in run.stderr, run.stderr
    assert "serving" not in run.stderr and took < 10, (took, run.stderr)


def test_a_new_database_is_said_and_another_one_nearby_named(tmp_path: Path) -> None:
    first = _takeone("keys", "create", "--credits", "1", cwd=tmp_path)
    assert first.returncode == 0 and "new database" in first.stderr, first.stderr
    assert (tmp_path / "takeone-data" / "takeone.db").exists()
    second = _takeone("keys", "create", "--data-dir", "data", "--credits", "1", cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert f"new database at {(tmp_path / 'data' / 'takeone.db').resolve()}" in second.stderr
    assert str((tmp_path / "takeone-data" / "takeone.db").resolve()) in second.stderr, second.stderr
    again = _takeone("keys", "create", "--credits", "1", cwd=tmp_path)
    assert again.returncode == 0 and again.stderr == "", again.stderr  # the same folder: nothing to say


def test_the_default_data_folder_is_not_committed() -> None:
    lines = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().splitlines()
    assert "takeone-data/" in lines  # where `takeone serve` run in a clone keeps its database
