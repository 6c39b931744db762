"""The dispatcher's batch window: a lone job waits for company at most the window, a full
queue or an empty one never waits; the window's default depends on the device; the batch key
of a profile groups the tasks that may share one run."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from takeone.backends.sqlite.store import SqliteStore
from takeone.core.jobs import Job, JobStatus, SubmitLimits
from takeone.core.loras import LoraUse
from takeone.core.task import Shot, VideoTask
from takeone.dispatch.local.batching import GPU_WINDOW_MS, batch_key_for, batch_window_s, wait_for_company
from takeone.dispatch.retry import StoreRetry


@pytest.mark.parametrize("window_ms,device,seconds", [
    (None, None, 0.0), (None, "cpu", 0.0), (None, "cpu:0", 0.0), (None, "cuda:0", GPU_WINDOW_MS / 1000),
    (40.0, "cpu", 0.04), (0.0, "cuda:1", 0.0), (-5.0, "cuda:0", 0.0),
])
def test_the_window_is_the_flag_or_the_devices_default(window_ms: float | None, device: str | None,
                                                       seconds: float) -> None:
    assert batch_window_s(window_ms, device) == pytest.approx(seconds)


async def _queue(store: SqliteStore, ages_s: list[float]) -> float:
    """Queue jobs created ``ages_s`` ago; the oldest one's creation time."""
    key = (await store.create(100)).key
    now = time.time()
    for i, age in enumerate(ages_s):
        await store.submit(Job(id=f"j{i}", key_id=key.id, task=VideoTask(kind="t2v", prompt="p"), price=1,
                               status=JobStatus.QUEUED, created_at=now - age, dialect="segmind"),
                           SubmitLimits(None, 100))
    return now - max(ages_s, default=0.0)


def waited(tmp_path: Path, ages_s: list[float], limit: int, window_s: float) -> tuple[float, float]:
    """(seconds the call waited, seconds from the oldest job's creation to the call's end)."""
    async def run() -> tuple[float, float]:
        store = SqliteStore.open(tmp_path / "takeone.db")
        try:
            oldest = await _queue(store, ages_s)
            start = time.monotonic()
            await wait_for_company(store, StoreRetry("test"), limit, window_s)
            return time.monotonic() - start, time.time() - oldest
        finally:
            store.close()

    return asyncio.run(run())


def test_a_lone_fresh_job_waits_out_the_window(tmp_path: Path) -> None:
    wait, age = waited(tmp_path, [0.0], limit=4, window_s=0.3)
    assert 0.3 <= age < 1.5 and wait > 0.05


def test_a_job_that_already_waited_waits_only_the_rest(tmp_path: Path) -> None:
    wait, age = waited(tmp_path, [0.3, 0.0], limit=4, window_s=0.5)
    assert 0.5 <= age < 1.5 and wait < 0.45


@pytest.mark.parametrize("ages,limit,window", [
    ([], 4, 5.0),                 # nothing queued
    ([0, 0, 0, 0], 4, 5.0),       # a full batch is queued already
    ([10.0], 4, 5.0),             # the oldest job is past the window
    ([0.0], 4, 0.0),              # no window (a CPU worker)
])
def test_no_wait(tmp_path: Path, ages: list[float], limit: int, window: float) -> None:
    assert waited(tmp_path, ages, limit, window)[0] < 2.0  # not the 5 s window


def test_the_batch_key_groups_what_may_share_a_run() -> None:
    key = batch_key_for("tiny")
    assert batch_key_for("tiny") is key  # one per profile, cached

    def of(task: VideoTask) -> object:
        return key(Job(id="j", key_id="k", task=task, price=1, status=JobStatus.QUEUED, created_at=0,
                       dialect="segmind"))

    plain = of(VideoTask(kind="t2v", prompt="a fox", seed=1))
    assert plain is not None
    assert of(VideoTask(kind="t2v", prompt="a hen", seed=2)) == plain  # prompts and seeds differ: one run
    assert of(VideoTask(kind="t2v", prompt="a fox", loras=(LoraUse("anime", 0.5),))) != plain  # another LoRA set
    assert of(VideoTask(kind="t2v", seconds=2, shots=(Shot("a", 1), Shot("b", 1)))) is None  # multi-shot: alone
