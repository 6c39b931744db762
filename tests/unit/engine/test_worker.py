"""The worker's job loop over a real pipe, with the tiny model loaded in this process."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

from PIL import Image

from takeone.backends.local_blobs import LocalBlobStore
from takeone.core.blobs import input_key, output_key
from takeone.core.task import VideoTask
from takeone.engine.messages import JobDone, JobFailed, RunJob, Shutdown, WorkerRetiring
from takeone.engine.transport import PipeTransport
from takeone.engine.worker import JobRunner, WorkerConfig


def _runner(tmp: Path) -> tuple[JobRunner, object]:
    ours, theirs = multiprocessing.Pipe()
    config = WorkerConfig(profile="tiny", device="cpu", blobs_root=str(tmp), scratch_dir=str(tmp / "tmp"))
    return JobRunner(PipeTransport(theirs), config), ours


def _job(n: int, first_frame: str) -> RunJob:
    task = VideoTask(kind="i2v", first_frame=first_frame, seconds=5, seed=n)
    return RunJob(f"job-{n}", task.to_dict(), output_key(f"job-{n}"))


def _frame(tmp: Path) -> str:
    key = input_key("in", "first_frame")
    image = Image.new("RGB", (64, 48), (90, 30, 200))
    path = tmp / "frame.png"
    image.save(path)
    LocalBlobStore(tmp, b"").put(key, path.read_bytes())
    return key


def test_a_worker_that_keeps_failing_retires(tmp_path: Path) -> None:
    runner, conn = _runner(tmp_path)
    serving = threading.Thread(target=runner.serve)
    serving.start()
    missing = input_key("gone", "first_frame")
    conn.send(_job(1, missing))  # type: ignore[attr-defined]
    conn.send(_job(2, missing))  # type: ignore[attr-defined]
    assert _replies(conn, 3) == [JobFailed, JobFailed, WorkerRetiring]
    serving.join(timeout=30)
    assert not serving.is_alive()


def test_a_success_resets_the_failure_count(tmp_path: Path) -> None:
    frame, missing = _frame(tmp_path), input_key("gone", "first_frame")
    runner, conn = _runner(tmp_path)
    serving = threading.Thread(target=runner.serve)
    serving.start()
    for n, key in enumerate([missing, frame, missing]):
        conn.send(_job(n, key))  # type: ignore[attr-defined]
    assert _replies(conn, 3) == [JobFailed, JobDone, JobFailed]
    conn.send(Shutdown())  # type: ignore[attr-defined]
    serving.join(timeout=30)
    assert not serving.is_alive()
    assert (tmp_path / output_key("job-1")).stat().st_size > 0  # stored through the blob store
    assert not any((tmp_path / "tmp").iterdir())  # no scratch left behind


def _replies(conn: object, count: int) -> list[type]:
    """The next ``count`` messages that are not progress reports, by type."""
    kinds: list[type] = []
    while len(kinds) < count:
        msg = conn.recv()  # type: ignore[attr-defined]
        if isinstance(msg, (JobDone, JobFailed, WorkerRetiring)):
            kinds.append(type(msg))
    return kinds


def test_a_worker_whose_dispatcher_dies_stops_the_job_and_delivers_nothing(tmp_path: Path) -> None:
    """The dispatcher's end of the pipe closes mid-job (its Ray node or actor was lost): the
    job will run again elsewhere, so this worker stops at the next step and writes nothing."""
    from takeone.engine.messages import JobProgress

    ours, theirs = multiprocessing.Pipe()
    config = WorkerConfig(profile="tiny", device="cpu", blobs_root=str(tmp_path),
                          scratch_dir=str(tmp_path / "tmp"), step_delay_s=1.5)
    runner = JobRunner(PipeTransport(theirs), config)
    serving = threading.Thread(target=runner.serve)
    serving.start()
    job = _job(7, _frame(tmp_path))
    ours.send(job)
    assert ours.poll(60)
    assert isinstance(ours.recv(), JobProgress)
    ours.close()
    serving.join(timeout=60)
    assert not serving.is_alive()
    assert LocalBlobStore(tmp_path, b"").stat(job.output_key) is None


def test_a_cpu_worker_uses_every_core_at_a_lower_priority() -> None:
    """A CPU worker gives torch every usable core (one thread fewer left a 2-core machine's
    second core idle) and yields to the API by priority (nice 10), in its own process."""
    import json
    import os
    import subprocess
    import sys

    probe = ("import json, os, torch\n"
             "from takeone.engine.worker import _yield_cpu_to_api\n"
             "before = os.nice(0)\n"
             "_yield_cpu_to_api()\n"
             "print(json.dumps([torch.get_num_threads(), os.nice(0) - before]))\n")
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         timeout=120)
    threads, niceness = json.loads(run.stdout)
    assert threads == len(os.sched_getaffinity(0)) and niceness == 10
