"""``torch.compile`` failing must cost speed, never the worker: on CPU with tiny models, a
dynamo backend that raises stands in for an inductor or Triton failure (or a machine without a
C compiler), and a tiny recompile limit for a plan larger than dynamo allows."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torch._dynamo import register_backend

from takeone.core.task import VideoTask
from takeone.engine.messages import FromWorker, Shutdown, ToWorker, WorkerLoadFailed, WorkerReady
from takeone.engine.worker import WorkerConfig, run_worker
from takeone.models import registry
from takeone.models.ltx2 import speedups
from takeone.models.ltx2.model import Ltx2Model
from takeone.models.ltx2.tiny import build_tiny_components, build_tiny_ltx2_components
from takeone.models.ltx2.warmup import warmup_recipes
from takeone.models.recipe import Profile, Speedups
from tests.unit.models.callbacks import ignore, never

CPU = torch.device("cpu")
FAILING = "takeone_test_no_compiler"


@register_backend(name=FAILING)
def _no_compiler(graph: torch.fx.GraphModule, inputs: list[torch.Tensor]) -> Any:
    raise RuntimeError("cannot find a working C compiler (test backend)")


class Transport:
    """A dispatcher that records what the worker says and asks it to stop at once."""

    def __init__(self) -> None:
        self.sent: list[FromWorker] = []

    def send(self, message: FromWorker) -> None:
        self.sent.append(message)

    def recv(self) -> ToWorker:
        return Shutdown()


def test_a_worker_whose_compile_fails_becomes_ready_on_the_plain_path(
    scaled_ltx2: Profile, ltx2_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The real worker loads the real ltx-2 profile (tiny checkpoints, real loader) with
    regional compilation on a backend that fails: it reports ready, and the log says why it
    runs uncompiled."""
    profile = dataclasses.replace(scaled_ltx2, name="ltx-2-no-compiler",
                                  speedups=Speedups(compile="regional", compile_backend=FAILING))
    monkeypatch.setitem(registry.PROFILES, profile.name, profile)  # type: ignore[index]
    config = WorkerConfig(profile=profile.name, device="cpu", weights_dir=str(ltx2_cache),
                          blobs_root=str(tmp_path), scratch_dir=str(tmp_path / "tmp"))
    transport = Transport()
    with caplog.at_level(logging.WARNING, logger=speedups.__name__):
        run_worker(transport, config)
    assert not any(isinstance(message, WorkerLoadFailed) for message in transport.sent), transport.sent
    assert isinstance(transport.sent[0], WorkerReady)
    fallback = [r.getMessage() for r in caplog.records if "running uncompiled" in r.getMessage()]
    assert len(fallback) == 1
    assert "torch.compile failed during warm-up (BackendCompilerFailed" in fallback[0]


def test_a_plan_past_the_recompile_limit_falls_back_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """Dynamo's default is to run a block eagerly, silently, once it has compiled
    ``recompile_limit`` graphs; the warm-up makes that an error, then drops compilation."""
    import torch._dynamo

    monkeypatch.setattr(speedups, "RECOMPILE_LIMIT", 1)
    plan = warmup_recipes(dataclasses.replace(registry.get_profile("tiny"), qualities={
        "fast": registry.get_profile("tiny").qualities["fast"]}))[:1]
    with torch._dynamo.config.patch(recompile_limit=1):
        model = Ltx2Model(build_tiny_ltx2_components(), CPU, warmup_recipes=plan,
                          speedups=Speedups(compile="regional", compile_backend="eager"))
        assert model.speedup_report.compiled
        assert model.warmup() == 1  # the plain path, at one size
    assert not model.speedup_report.compiled
    assert "FailOnRecompileLimitHit" in model.speedup_report.skipped[-1]
    assert model.components["transformer"].transformer_blocks[0]._compiled_call_impl is None
    assert torch._dynamo.config.fail_on_recompile_limit_hit is False  # only during warm-up


def test_compiling_raises_dynamos_recompile_limit() -> None:
    import torch._dynamo

    Ltx2Model(build_tiny_components(), CPU, speedups=Speedups(compile="regional", compile_backend="eager"))
    assert torch._dynamo.config.recompile_limit >= speedups.RECOMPILE_LIMIT >= 14


def test_a_compile_failure_inside_a_job_reruns_it_plain(tiny_profile: Profile) -> None:
    """A path the warm-up did not cover fails to compile in a job: the job still delivers,
    the same video the plain model makes, and the model stays uncompiled."""
    task = VideoTask(kind="t2v", prompt="a fox", seed=4)
    recipe = dataclasses.replace(tiny_profile.recipe_for(task), steps=2)
    compiled = Ltx2Model(build_tiny_components(), CPU, speedups=Speedups(compile="regional", compile_backend=FAILING))
    video = compiled.generate(task, recipe, ignore, never).all_frames()
    plain = Ltx2Model(build_tiny_components(), CPU).generate(task, recipe, ignore, never).all_frames()
    np.testing.assert_array_equal(video, plain)
    assert not compiled.speedup_report.compiled and "failed in a job" in compiled.speedup_report.skipped[-1]
