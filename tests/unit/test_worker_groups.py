"""Which devices form worker groups (``--gpus-per-job``), and what is said about the rest."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from takeone.cli.serve import describe_workers
from takeone.core.errors import InvalidRequest
from takeone.core.settings import Settings
from takeone.dispatch.local.devices import worker_configs
from takeone.dispatch.local.group import group_devices


def test_gpus_form_whole_groups_and_the_rest_is_reported() -> None:
    assert group_devices(["0", "1", "2", "3", "4"], 2) == (["0,1", "2,3"], ["4"])
    assert group_devices(["0", "1"], 4) == ([], ["0", "1"])


def test_a_gpu_left_over_is_logged_and_in_the_banner(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(data_dir=tmp_path, profile="tiny", devices=("0", "1", "2"), gpus_per_job=2,
                        parallel="cfg")
    with caplog.at_level(logging.WARNING, logger="takeone.dispatcher"):
        configs = worker_configs(settings)
    assert [(c.visible_gpu, c.gpus_per_job, c.parallel) for c in configs] == [("0,1", 2, "cfg")]
    assert "GPU 2 left unused" in caplog.text
    assert describe_workers(settings) == (
        "1 local group(s) of 2 ranks (gpu 0,1), parallel cfg; GPU 2 unused (too few for a group)")


def test_too_few_gpus_for_one_group_is_refused(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, profile="tiny", devices=("0",), gpus_per_job=2)
    with pytest.raises(InvalidRequest, match="only 1 GPU"):
        worker_configs(settings)


@pytest.mark.parametrize(("args", "message"), [
    (["--gpus-per-job", "0"], "--gpus-per-job"),
    (["--gpus-per-job", "2", "--workers", "ray"], "Ray actors do not form groups yet"),
])
def test_bad_group_flags_name_the_flag(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "takeone.cli", "worker", "--profile", "tiny",
                           "--data-dir", str(tmp_path), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert message in done.stderr
