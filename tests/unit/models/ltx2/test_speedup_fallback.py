"""fp8 and the attention backend failing must cost speed, never the worker, as a compile
failure does: on CPU with tiny models, cuDNN attention (no CPU kernel: its first call raises)
stands in for a flash kernel refusing a GPU, and a torchao that raises on import for one built
against another torch."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from takeone.core.task import VideoTask
from takeone.engine.messages import FromWorker, Shutdown, ToWorker, WorkerReady
from takeone.engine.worker import WorkerConfig, run_worker
from takeone.models import registry
from takeone.models.ltx2 import speedups
from takeone.models.ltx2.model import Ltx2Model
from takeone.models.ltx2.tiny import build_tiny_components
from takeone.models.ltx2.warmup import warmup_recipes
from takeone.models.recipe import Profile, Speedups
from tests.unit.models.callbacks import ignore, never

CPU = torch.device("cpu")
NO_CPU_KERNEL = "_native_cudnn"


def test_an_attention_backend_failing_in_warm_up_is_dropped_and_the_model_serves(tiny_profile: Profile) -> None:
    plan = warmup_recipes(tiny_profile)[:1]
    model = Ltx2Model(build_tiny_components(), CPU, speedups=Speedups(attention_backend=NO_CPU_KERNEL),
                      warmup_recipes=plan)  # fmt: skip
    assert model.speedup_report.applied == [f"transformer: attention backend {NO_CPU_KERNEL} {speedups.ATTENTION_NOTE}"]
    assert model.warmup() == 1
    assert model.speedup_report.applied == []
    (line,) = model.speedup_report.skipped
    assert line.startswith("transformer: attention backend failed during warm-up (GenerationFailed")
    assert "No viable backend" in line and line.endswith("running without it")
    task = VideoTask(kind="t2v", prompt="a fox", seed=4)
    recipe = dataclasses.replace(tiny_profile.recipe_for(task), steps=2)
    video = model.generate(task, recipe, ignore, never).all_frames()
    plain = Ltx2Model(build_tiny_components(), CPU).generate(task, recipe, ignore, never).all_frames()
    np.testing.assert_array_equal(video, plain)


def test_a_failure_with_no_speed_up_in_place_still_fails_the_warm_up(tiny_profile: Profile) -> None:
    model = Ltx2Model(build_tiny_components(), CPU, warmup_recipes=warmup_recipes(tiny_profile)[:1])
    model.components["transformer"].transformer_blocks[0].forward = None  # a broken model, not a speed-up
    with pytest.raises(Exception, match="not callable"):
        model.warmup()


class Transport:
    def __init__(self) -> None:
        self.sent: list[FromWorker] = []

    def send(self, message: FromWorker) -> None:
        self.sent.append(message)

    def recv(self) -> ToWorker:
        return Shutdown()


def test_the_worker_says_ready_with_its_speed_ups_and_what_fell_back(
    scaled_ltx2: Profile, ltx2_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    profile = dataclasses.replace(scaled_ltx2, name="ltx-2-no-cudnn",
                                  speedups=Speedups(attention_backend=NO_CPU_KERNEL, fp8=True))  # fmt: skip
    monkeypatch.setitem(registry.PROFILES, profile.name, profile)  # type: ignore[index]
    config = WorkerConfig(profile=profile.name, device="cpu", weights_dir=str(ltx2_cache),
                          blobs_root=str(tmp_path), scratch_dir=str(tmp_path / "tmp"))  # fmt: skip
    transport = Transport()
    with caplog.at_level(logging.WARNING, logger=speedups.__name__):
        run_worker(transport, config)
    ready = transport.sent[0]
    assert isinstance(ready, WorkerReady), transport.sent
    fell_back = [note for note in ready.notes if note.startswith("speed-up fell back: ")]
    assert any("fp8 needs a CUDA GPU" in note for note in fell_back)
    assert any("attention backend failed during warm-up" in note for note in fell_back)
    assert not any(note.startswith("speed-up: ") for note in ready.notes)


def test_a_broken_torchao_is_a_reason_not_a_crash(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "torchao"
    package.mkdir()
    (package / "__init__.py").write_text("raise RuntimeError('built for torch 2.99')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(__import__("sys").modules, "torchao", raising=False)
    reason = speedups.fp8_unavailable_reason(torch.device("cuda"), capability=(9, 0))
    assert reason == "torchao does not import (RuntimeError: built for torch 2.99); running in bf16"
    module = torch.nn.Sequential(torch.nn.Linear(32, 32))
    before = module[0].weight.detach().clone()
    report = speedups.SpeedupReport()
    assert speedups.try_fp8("transformer", module, CPU, report) is False
    assert report.skipped == ["transformer: fp8 failed (RuntimeError: built for torch 2.99); running in bf16"]
    assert torch.equal(module[0].weight, before) and type(module[0].weight) is torch.nn.Parameter


def test_running_out_of_memory_in_warm_up_keeps_the_speed_ups(tiny_profile: Profile) -> None:
    """Memory is not a kernel's fault: dropping fp8 would need more of it, so the error stands."""
    from takeone.core.errors import OutOfMemory

    model = Ltx2Model(build_tiny_components(), CPU, speedups=Speedups(attention_backend=NO_CPU_KERNEL),
                      warmup_recipes=warmup_recipes(tiny_profile)[:1])  # fmt: skip

    def no_memory(*_args: object, **_kwargs: object) -> None:
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    model.components["transformer"].forward = no_memory
    with pytest.raises(OutOfMemory):
        model.warmup()
    assert model.speedup_report.applied == [f"transformer: attention backend {NO_CPU_KERNEL} {speedups.ATTENTION_NOTE}"]
