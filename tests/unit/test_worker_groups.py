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
    (["--gpus-per-job", "2", "--workers", "ray", "--worker-gpus", "0.5"], "--worker-gpus"),
])
def test_bad_group_flags_name_the_flag(tmp_path: Path, args: list[str], message: str) -> None:
    done = subprocess.run([sys.executable, "-m", "takeone.cli", "worker", "--profile", "tiny",
                           "--data-dir", str(tmp_path), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert message in done.stderr


def _node(node_id: str, gpus: float, alive: bool = True) -> dict[str, object]:
    """One entry of ``ray.nodes()`` as Ray gives it (the fields read here)."""
    return {"NodeID": node_id, "Alive": alive, "Resources": {"CPU": 8.0, "GPU": gpus}}


def test_ray_groups_fit_per_node_and_the_rest_is_reported() -> None:
    from takeone.dispatch.ray.group import group_capacity, group_placement_reason, unfilled_devices

    nodes = [_node("a" * 40, 3), _node("b" * 40, 1), _node("c" * 40, 4), _node("d" * 40, 8, alive=False)]
    # a group lives on one node: 3 + 1 GPUs on two nodes make one group of 2, not two
    assert group_capacity(nodes, "GPU", 2) == 3
    assert unfilled_devices(nodes, "GPU", 2) == [
        "1 GPU of node aaaaaaaaaaaa left unused: 3 GPU do not fill groups of 2 (--gpus-per-job)",
        "1 GPU of node bbbbbbbbbbbb left unused: 1 GPU do not fill groups of 2 (--gpus-per-job)"]
    reason = group_placement_reason(nodes, "GPU", 8, 1, 31.0)
    assert "each asks for 8 GPU on one node (--gpus-per-job 8); the largest node has 4 GPU" in reason
    assert "--worker-gpus 0" in reason
