"""A batch of claimed jobs through the worker's real loop, over a real pipe, with the tiny model:
each job is answered alone (done, failed or cancelled) and stored as its own MP4."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path
from typing import Any

import av
from PIL import Image

from takeone.backends.local_blobs import LocalBlobStore
from takeone.core.blobs import input_key, output_key
from takeone.core.task import VideoTask
from takeone.engine.messages import CancelJob, JobDone, JobFailed, JobProgress, RunBatch, RunJob, Shutdown
from takeone.engine.transport import PipeTransport
from takeone.engine.worker import JobRunner, WorkerConfig


def _serve(tmp: Path, **config: Any) -> tuple[JobRunner, Any, threading.Thread]:
    ours, theirs = multiprocessing.Pipe()
    settings = WorkerConfig(profile="tiny", device="cpu", blobs_root=str(tmp), scratch_dir=str(tmp / "tmp"), **config)
    runner = JobRunner(PipeTransport(theirs), settings)
    serving = threading.Thread(target=runner.serve)
    serving.start()
    return runner, ours, serving


def _stop(conn: Any, serving: threading.Thread) -> None:
    conn.send(Shutdown())
    serving.join(timeout=30)
    assert not serving.is_alive()


def _frame(tmp: Path, n: int) -> str:
    key = input_key(f"in{n}", "first_frame")
    path = tmp / f"frame{n}.png"
    Image.new("RGB", (64, 48), (40 * n, 30, 200)).save(path)
    LocalBlobStore(tmp, b"").put(key, path.read_bytes())
    return key


def _job(n: int, **task: Any) -> RunJob:
    fields: dict[str, Any] = {"kind": "t2v", "tier": "fast", "seconds": 1, "seed": n, "prompt": f"p{n}", **task}
    return RunJob(f"job-{n}", VideoTask(**fields).to_dict(), output_key(f"job-{n}"))


def _answers(conn: Any, count: int, on_progress: Any = None) -> dict[str, JobDone | JobFailed]:
    answers: dict[str, JobDone | JobFailed] = {}
    while len(answers) < count:
        msg = conn.recv()
        if isinstance(msg, JobProgress) and on_progress is not None:
            on_progress(msg)
        elif isinstance(msg, (JobDone, JobFailed)):
            answers[msg.job_id] = msg
    return answers


def _frames_of(tmp: Path, job_id: str) -> int:
    with av.open(str(tmp / output_key(job_id))) as container:
        return sum(1 for _ in container.decode(video=0))


def test_one_failing_job_of_four_fails_alone(tmp_path: Path) -> None:
    frames = [_frame(tmp_path, n) for n in range(3)]
    _, conn, serving = _serve(tmp_path)
    missing = input_key("gone", "first_frame")
    jobs = [_job(n, kind="i2v", first_frame=key) for n, key in enumerate([frames[0], missing, frames[1], frames[2]])]
    conn.send(RunBatch(tuple(jobs)))
    answers = _answers(conn, 4)
    _stop(conn, serving)
    failed = answers["job-1"]
    assert isinstance(failed, JobFailed) and "no longer stored" in failed.error
    for n in (0, 2, 3):
        done = answers[f"job-{n}"]
        assert isinstance(done, JobDone) and done.metrics["batch_size"] == 3 and done.metrics["seed"] == n
        assert _frames_of(tmp_path, f"job-{n}") == done.metrics["frames"]
    assert not (tmp_path / output_key("job-1")).exists()
    assert not any((tmp_path / "tmp").iterdir())


def test_cancelling_one_of_four_lets_the_others_finish(tmp_path: Path) -> None:
    _, conn, serving = _serve(tmp_path, step_delay_s=0.2)
    conn.send(RunBatch(tuple(_job(n) for n in range(4))))
    progress: dict[str, list[int]] = {}

    def on_progress(msg: JobProgress) -> None:
        progress.setdefault(msg.job_id, []).append(msg.step)
        if msg.job_id == "job-2" and msg.step == 1:
            conn.send(CancelJob("job-2"))

    answers = _answers(conn, 4, on_progress)
    _stop(conn, serving)
    assert isinstance(answers["job-2"], JobFailed) and answers["job-2"].kind == "cancelled"
    assert not (tmp_path / output_key("job-2")).exists()
    for n in (0, 1, 3):
        assert isinstance(answers[f"job-{n}"], JobDone)
        assert progress[f"job-{n}"] == [1, 2, 3]  # two steps each, then its own delivery
    assert progress["job-2"][0] == 1 and 3 not in progress["job-2"]


def test_each_job_of_a_batch_is_answered_as_soon_as_its_own_video_is_stored(tmp_path: Path) -> None:
    """Job 0's answer comes before job 3's file is finished (its last progress unit): each job
    is delivered when its own MP4 is stored, not when the whole batch is."""
    _, conn, serving = _serve(tmp_path)
    conn.send(RunBatch(tuple(_job(n) for n in range(4))))
    heard: list[tuple[str, str, int]] = []  # (kind, job, step) in the order the worker sent them
    answers: dict[str, JobDone | JobFailed] = {}
    while len(answers) < 4:
        msg = conn.recv()
        if isinstance(msg, JobProgress):
            heard.append(("progress", msg.job_id, msg.step))
        elif isinstance(msg, (JobDone, JobFailed)):
            answers[msg.job_id] = msg
            heard.append(("answer", msg.job_id, 0))
            if msg.job_id == "job-0":
                assert (tmp_path / output_key("job-0")).exists()  # stored before it is answered
    _stop(conn, serving)
    assert all(isinstance(a, JobDone) and a.metrics["batch_size"] == 4 for a in answers.values())
    for n in range(4):
        assert heard.index(("progress", f"job-{n}", 3)) < heard.index(("answer", f"job-{n}", 0))
    assert heard.index(("answer", "job-0", 0)) < heard.index(("progress", "job-3", 3))
    assert heard.index(("answer", "job-1", 0)) < heard.index(("progress", "job-3", 3))


def test_a_batch_out_of_memory_splits_and_remembers_what_fitted(tmp_path: Path) -> None:
    runner, conn, serving = _serve(tmp_path, simulate_oom_above=2)
    conn.send(RunBatch(tuple(_job(n) for n in range(4))))
    first = _answers(conn, 4)
    assert all(isinstance(a, JobDone) and a.metrics["batch_size"] == 2 for a in first.values())
    assert list(runner.batches.fits.values()) == [2]
    conn.send(RunBatch(tuple(_job(n) for n in range(4, 7))))  # split up front now: 2 + 1
    second = _answers(conn, 3)
    _stop(conn, serving)
    sizes = sorted(a.metrics.get("batch_size", 1) for a in second.values() if isinstance(a, JobDone))
    assert sizes == [1, 2, 2]


def test_a_batch_split_down_to_single_jobs_runs_each_alone(tmp_path: Path) -> None:
    """Split down to single jobs, which run the lone path (and fit there): none is lost."""
    runner, conn, serving = _serve(tmp_path, simulate_oom_above=1)
    conn.send(RunBatch(tuple(_job(n) for n in range(3))))
    answers = _answers(conn, 3)
    _stop(conn, serving)
    assert all(isinstance(a, JobDone) and "batch_size" not in a.metrics for a in answers.values())
    assert list(runner.batches.fits.values()) == [1]


def test_a_batch_runs_its_lora_set_once_and_each_job_names_it(tmp_path: Path) -> None:
    from takeone.cli.main import main
    from takeone.core.loras import LoraUse
    from tests.support.loras import make_lora

    lora = make_lora(tmp_path / "alpha.safetensors", "diffusers", seed=1)
    assert main(["loras", "add", "alpha", str(lora), "--profile", "tiny", "--data-dir", str(tmp_path)]) == 0
    runner, conn, serving = _serve(tmp_path)
    activated: list[tuple[LoraUse, ...]] = []
    activate = runner.loras.activate
    runner.loras.activate = lambda uses: activated.append(tuple(uses)) or activate(uses)  # type: ignore[method-assign]
    uses = (LoraUse("alpha", 0.8),)
    conn.send(RunBatch(tuple(_job(n, loras=uses) for n in range(2))))
    answers = _answers(conn, 2)
    _stop(conn, serving)
    assert activated == [uses]  # once, before the batched run
    for n in range(2):
        done = answers[f"job-{n}"]
        assert isinstance(done, JobDone) and done.metrics["batch_size"] == 2, done
        assert done.metrics["loras"] == [{"name": "alpha", "scale": 0.8}] and done.metrics["lora_switch_time"] >= 0
        assert _frames_of(tmp_path, f"job-{n}") == done.metrics["frames"]
