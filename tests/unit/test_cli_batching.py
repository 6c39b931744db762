"""The batching flags: parsed into the dispatcher's settings (profile default, 1 = off),
refused with a sentence naming the flag, and described on the start banner."""

from __future__ import annotations

from pathlib import Path

import pytest

from takeone.cli.main import build_parser
from takeone.cli.serve import describe_batching, serve_settings, worker_settings
from takeone.core.errors import InvalidRequest
from takeone.core.settings import Settings
from takeone.dispatch.local.batching import batch_window_s
from takeone.dispatch.protocol import DispatcherSettings


def _settings(*argv: str) -> Settings:
    args = build_parser().parse_args(list(argv))
    return serve_settings(args) if argv[0] == "serve" else worker_settings(args)


def test_max_batch_defaults_to_the_profile_and_one_turns_it_off(tmp_path: Path) -> None:
    data = ("--data-dir", str(tmp_path))
    assert DispatcherSettings.from_settings(_settings("serve", *data, "--profile", "ltx-2")).max_batch == 4
    assert DispatcherSettings.from_settings(_settings("serve", *data, "--profile", "wan-2.2")).max_batch == 1
    assert DispatcherSettings.from_settings(_settings("serve", *data, "--profile", "tiny")).max_batch == 1
    worker = _settings("worker", *data, "--profile", "tiny", "--max-batch", "8", "--batch-window-ms", "40")
    assert (DispatcherSettings.from_settings(worker).max_batch, worker.batch_window_ms) == (8, 40.0)
    off = _settings("serve", *data, "--profile", "ltx-2", "--max-batch", "1")
    assert DispatcherSettings.from_settings(off).max_batch == 1
    assert describe_batching(off).startswith("batching off")
    assert describe_batching(worker) == "batching up to 8 compatible jobs per run (a lone job waits 40 ms for company)"


def test_a_worker_group_claims_single_jobs(tmp_path: Path) -> None:
    data = ("--data-dir", str(tmp_path))
    group = _settings("serve", *data, "--profile", "ltx-2", "--max-batch", "4", "--gpus-per-job", "2")
    assert DispatcherSettings.from_settings(group).max_batch == 1  # its ranks run one job together
    assert describe_batching(group) == "batching off (a worker group runs one job at a time)"


@pytest.mark.parametrize(("flag", "value"), [("--max-batch", "0"), ("--max-batch", "65"),
                                             ("--batch-window-ms", "-1")])
def test_bad_batching_flags_are_refused_by_name(tmp_path: Path, flag: str, value: str) -> None:
    with pytest.raises(InvalidRequest, match=flag):
        _settings("serve", "--data-dir", str(tmp_path), flag, value)


def test_the_window_is_zero_on_the_cpu_unless_asked() -> None:
    assert batch_window_s(None, "cpu") == 0.0 and batch_window_s(None, "cuda:0") == 0.025
    assert batch_window_s(200, "cpu") == 0.2


def test_takeone_profiles_shows_each_profiles_batch_limit(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from takeone.cli.main import main

    assert main(["profiles", "ltx-2", "wan-2.2", "tiny"]) == 0
    text = capsys.readouterr().out
    assert "batching: t2v, i2v (single-stage tiers) in one run; default --max-batch 4; other cases run alone" in text
    assert "batching: none (every job runs alone; --max-batch does not apply)" in text  # wan-2.2
    assert "default --max-batch 1 (off)" in text  # tiny
    assert main(["profiles", "--json"]) == 0
    limits = {p["name"]: p["max_batch"] for p in json.loads(capsys.readouterr().out)}
    assert (limits["ltx-2"], limits["wan-2.2"], limits["tiny"]) == (4, 1, 1)
