"""The worker's job loop over a real pipe, with the tiny model loaded in this process."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

from takeone.core.task import VideoTask
from takeone.dispatch.messages import JobDone, JobFailed, RunJob, Shutdown, WorkerRetiring
from takeone.engine.worker import JobRunner, WorkerConfig


def _runner() -> tuple[JobRunner, object]:
    ours, theirs = multiprocessing.Pipe()
    return JobRunner(theirs, WorkerConfig(profile="tiny", device="cpu")), ours


def _job(tmp: Path, n: int, image: str | None) -> RunJob:
    task = VideoTask(kind="i2v", first_frame=image, seconds=5, seed=n)
    return RunJob(f"job-{n}", task.to_dict(), str(tmp / f"job-{n}.mp4"))


def test_a_worker_that_keeps_failing_retires(tmp_path: Path) -> None:
    runner, conn = _runner()
    serving = threading.Thread(target=runner.serve)
    serving.start()
    missing = str(tmp_path / "no-such-frame.png")
    conn.send(_job(tmp_path, 1, missing))  # type: ignore[attr-defined]
    conn.send(_job(tmp_path, 2, missing))  # type: ignore[attr-defined]
    assert _replies(conn, 3) == [JobFailed, JobFailed, WorkerRetiring]
    serving.join(timeout=30)
    assert not serving.is_alive()


def test_a_success_resets_the_failure_count(tmp_path: Path) -> None:
    from PIL import Image

    frame = tmp_path / "frame.png"
    Image.new("RGB", (64, 48), (90, 30, 200)).save(frame)
    runner, conn = _runner()
    serving = threading.Thread(target=runner.serve)
    serving.start()
    for n, image in enumerate([str(tmp_path / "missing.png"), str(frame), str(tmp_path / "missing.png")]):
        conn.send(_job(tmp_path, n, image))  # type: ignore[attr-defined]
    assert _replies(conn, 3) == [JobFailed, JobDone, JobFailed]
    conn.send(Shutdown())  # type: ignore[attr-defined]
    serving.join(timeout=30)
    assert not serving.is_alive()


def _replies(conn: object, count: int) -> list[type]:
    """The next ``count`` messages that are not progress reports, by type."""
    kinds: list[type] = []
    while len(kinds) < count:
        msg = conn.recv()  # type: ignore[attr-defined]
        if isinstance(msg, (JobDone, JobFailed, WorkerRetiring)):
            kinds.append(type(msg))
    return kinds
