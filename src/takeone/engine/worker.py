"""The worker runner: loads one profile's pipelines once and runs jobs one at a time.

A local dispatcher starts it in a process of its own with the ``spawn`` method, so torch is
imported here and never in the API process; it talks through a
:class:`~takeone.engine.transport.Transport`, so another host (a remote actor) can run it
unchanged. Inputs and outputs go through the blob store by key: the runner copies the input
images into a scratch folder, renders there, and hands the finished MP4 to the store. A
reader thread receives messages while a job runs, so that a :class:`CancelJob` takes effect
at the next denoising step.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Mapping
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from takeone.core.errors import (
    GenerationFailed,
    InvalidRequest,
    JobCancelled,
    NotFound,
    OutOfMemory,
    TakeoneError,
)
from takeone.core.loras import LoraUse
from takeone.core.redact import without_paths
from takeone.core.task import VideoTask
from takeone.engine.batch import BatchRunner
from takeone.engine.config import WorkerConfig
from takeone.engine.messages import (
    CancelJob,
    FailureKind,
    JobDone,
    JobFailed,
    JobProgress,
    RunBatch,
    RunJob,
    Shutdown,
    WorkerLoadFailed,
    WorkerReady,
    WorkerRetiring,
)
from takeone.engine.transport import Transport
from takeone.models.recipe import Profile


def worker_main(conn: Connection, config: WorkerConfig) -> None:
    """Entry point of a local worker process."""
    from takeone.engine.transport import PipeTransport

    if config.visible_gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = config.visible_gpu
    else:
        _yield_cpu_to_api()
    run_worker(PipeTransport(conn), config)


def run_worker(transport: Transport, config: WorkerConfig) -> None:
    """Load the profile, say ready (or why not), then serve jobs until told to stop."""
    time.sleep(config.load_delay_s)
    try:
        runner = JobRunner(transport, config)
    except Exception as exc:  # noqa: BLE001 - any load failure is reported, then the process ends
        transport.send(WorkerLoadFailed(f"{type(exc).__name__}: {exc}"))
        return
    notes = model_notes(runner.model, runner.revisions)
    transport.send(WorkerReady(config.profile, runner.device, os.getpid(), notes))
    runner.serve()


def model_notes(model: object, revisions: Mapping[str, str]) -> tuple[str, ...]:
    """The loaded model's speed-ups (applied, and fallen back from with the reason) and its
    weights' revisions, one line each, for the worker's ready line."""
    notes = []
    report = getattr(model, "speedup_report", None)
    if report is not None:
        notes += [f"speed-up: {line}" for line in report.applied]
        notes += [f"speed-up fell back: {line}" for line in report.skipped]
    notes += [f"weights: {repo} at {revision}" for repo, revision in revisions.items()]
    return tuple(notes)


def weights_revisions(profile: Profile, weights_dir: str | None) -> dict[str, str]:
    """The commit of each repo the loaded profile read (see :func:`takeone.models.weights.revisions`);
    empty where it cannot be told: naming the weights must never stop a worker."""
    from takeone.models.weights import revisions

    try:
        return revisions(profile, Path(weights_dir) if weights_dir else None)
    except Exception:  # a label, not a precondition (the loader already found the files)
        logging.getLogger("takeone.worker").exception("could not tell the weights' revisions")
        return {}


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity, as a container's cpuset sets it),
    else the machine's count."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # no affinity on this platform
        return max(1, os.cpu_count() or 1)


def _yield_cpu_to_api() -> None:
    """On a CPU-only machine generation would take every core and starve the API process
    (status polls waited seconds): the worker runs at a lower scheduling priority, so the API
    takes a core whenever it needs one, and torch uses every core the rest of the time (a
    thread fewer than the cores left a 2-core machine's second core idle)."""
    import torch

    os.nice(10)
    torch.set_num_threads(usable_cores())


class JobRunner:
    def __init__(self, transport: Transport, config: WorkerConfig) -> None:
        from takeone.engine.loras import make_switcher
        from takeone.engine.render import (
            render,  # the encoder too: no import inside a job
        )
        from takeone.models.loader import load_video_model
        from takeone.models.registry import get_profile

        self.transport = transport
        self.config = config
        self.blobs = config.open_blobs()
        self.scratch = Path(config.scratch_dir)
        self.profile = get_profile(config.profile)
        self.model = load_video_model(config.profile, config.device, config.weights_dir, config.offload)
        self.revisions = weights_revisions(self.profile, config.weights_dir)  # which weights ran
        warmup = getattr(self.model, "warmup", None)
        if callable(warmup):  # compile before the first user pays for it; ready only after
            warmup()
        self.device = str(getattr(self.model, "device", config.device or "cpu"))
        self.render = render
        self.loras = make_switcher(self.model, self.blobs, self.scratch / "loras", self.profile.name)
        self.inbox: queue.Queue[RunJob | RunBatch | None] = queue.Queue()
        self.batches = BatchRunner(self, config.simulate_oom_above)
        self.cancelled: set[str] = set()
        self.orphaned = threading.Event()  # the dispatcher is gone: nobody will take a result

    def serve(self) -> None:
        """Run jobs until told to stop, or until this process looks poisoned: then exit, and
        the dispatcher starts a fresh worker (a CUDA context after an illegal memory access,
        or a library left broken by a failed allocation, fails every later job too)."""
        threading.Thread(target=self._read, daemon=True).start()
        failures = 0
        while (work := self.inbox.get()) is not None:
            results = self._run_batch(work.jobs if isinstance(work, RunBatch) else (work,))
            if self.orphaned.is_set():
                return  # nobody to tell: the dispatcher is gone
            # A run (one job, or one batch) counts once: a batch with any job done resets the count.
            failures = failures + 1 if all(_counts_as_failure(r) for r in results) else 0
            result = results[-1]
            if failures >= MAX_CONSECUTIVE_FAILURES or any(_poisoned(r) for r in results):
                last = result.error if isinstance(result, JobFailed) else ""
                self.transport.send(WorkerRetiring(f"{failures} failed runs in a row; last: {last}"))
                return

    def _read(self) -> None:
        try:
            while True:
                msg = self.transport.recv()
                if isinstance(msg, CancelJob):
                    self.cancelled.add(msg.job_id)
                elif isinstance(msg, (RunJob, RunBatch)):
                    self.inbox.put(msg)
                elif isinstance(msg, Shutdown):
                    break
        except (EOFError, OSError):
            # The dispatcher died (its node or actor was lost): the job goes back to the queue
            # when its lease runs out, so stop rendering it at the next step and exit.
            self.orphaned.set()
        self.inbox.put(None)

    def job_folder(self, job_id: str) -> Path:
        """Where a job's inputs and output live while it runs."""
        return self.scratch / job_id

    def stop_job(self, job_id: str) -> bool:
        return job_id in self.cancelled or self.orphaned.is_set()

    def _run(self, job: RunJob) -> JobDone | JobFailed:
        folder = self.job_folder(job.job_id)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            task = self.localize(VideoTask.from_dict(job.task), folder)
        except Exception as exc:  # noqa: BLE001 - a failed job is data; the worker stays up
            shutil.rmtree(folder, ignore_errors=True)
            return self.failure(job.job_id, exc)
        try:
            return self.run_prepared(job, task, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _run_batch(self, jobs: tuple[RunJob, ...]) -> list[JobDone | JobFailed]:
        """Run ``jobs`` (one, or a batch); each is answered as soon as it is done."""
        if len(jobs) > 1:
            return self.batches.run(jobs)
        result = self._run(jobs[0])
        self.answer(result)
        return [result]

    def answer(self, result: JobDone | JobFailed) -> None:
        """Tell the dispatcher how a job ended (nobody to tell once it is gone)."""
        if not self.orphaned.is_set():
            self.transport.send(result)
        self.cancelled.discard(result.job_id)

    def failure(self, job_id: str, exc: Exception) -> JobFailed:
        """What a job's error tells the dispatcher (memory freed where the error may hold some);
        its text goes to the caller without this machine's paths (the full text is logged here)."""
        outcome = self._failure(job_id, exc)
        if without_paths(outcome.error) != outcome.error:
            logging.getLogger("takeone.worker").warning("job %s failed: %s", job_id, outcome.error)
            outcome = dataclasses.replace(outcome, error=without_paths(outcome.error))
        return outcome

    def _failure(self, job_id: str, exc: Exception) -> JobFailed:
        if isinstance(exc, JobCancelled):
            return JobFailed(job_id, "cancelled", "cancelled")
        if isinstance(exc, OutOfMemory):
            self.free_memory()
            return JobFailed(job_id, exc.message, "oom")
        if isinstance(exc, TakeoneError):
            return JobFailed(job_id, exc.message, _kind(exc))
        self.free_memory()
        return JobFailed(job_id, f"generation failed: {type(exc).__name__}: {exc}")

    def run_prepared(self, job: RunJob, task: VideoTask, folder: Path) -> JobDone | JobFailed:
        """Render ``task`` (its inputs already in ``folder``) alone and store the MP4."""
        try:
            started = time.perf_counter()
            switch_s = self.loras.activate(task.loras)  # none: the base model, exactly
            info = self.render(self.model, self.profile, task, folder / "out.mp4",
                               progress=lambda step, total: self.progress(job.job_id, step, total),
                               should_cancel=lambda: self.stop_job(job.job_id))
            if self.stop_job(job.job_id):  # cancelled after the last step: deliver nothing
                raise JobCancelled()
            return JobDone(job.job_id, self.store_output(job, folder, info, started, task.loras, switch_s))
        except Exception as exc:  # noqa: BLE001 - a failed job is data; the worker stays up
            return self.failure(job.job_id, exc)

    def store_output(self, job: RunJob, folder: Path, info: Any, started: float,
                     loras: tuple[LoraUse, ...] = (), switch_s: float = 0.0) -> dict[str, Any]:
        """Move the rendered MP4 (and its poster frame) into the blob store; the job's metrics
        (with the LoRAs it ran with and the seconds spent switching to them)."""
        poster = _poster(folder / "out.mp4")  # before the MP4 is moved into the store
        self.blobs.put_file(job.output_key, folder / "out.mp4")
        if poster is not None:
            self._store_poster(job.output_key, poster)
        metrics: dict[str, Any] = dataclasses.asdict(info)
        metrics["inference_time"] = round(time.perf_counter() - started, 3)
        if self.revisions:
            metrics["weights"] = dict(self.revisions)
        if loras:
            metrics["loras"] = [dataclasses.asdict(use) for use in loras]
            metrics["lora_switch_time"] = round(switch_s, 4)
        return metrics

    def _store_poster(self, output_key: str, jpeg: bytes) -> None:
        """The first frame as a JPEG beside the MP4 (a thumbnail some dialects serve); a
        video is still delivered if this fails."""
        try:
            self.blobs.put(output_key.rsplit(".", 1)[0] + ".jpg", jpeg)
        except Exception:  # optional: the thumbnail answers 404 instead (logged)
            logging.getLogger("takeone.worker").exception("no poster frame for %s", output_key)

    def localize(self, task: VideoTask, folder: Path) -> VideoTask:
        """The task with its input blob keys replaced by local copies the model can open."""
        local: dict[str, str] = {}
        for role, key in task.inputs().items():
            path = folder / f"{role}.png"
            try:
                self.blobs.fetch_to(key, path)
            except NotFound as exc:
                raise GenerationFailed(f"the input {role} is no longer stored") from exc
            local[role] = str(path)
        return task.with_inputs(local)

    def progress(self, job_id: str, step: int, total: int) -> None:
        if self.config.step_delay_s:
            time.sleep(self.config.step_delay_s)
        self.transport.send(JobProgress(job_id, step, total))

    def free_memory(self) -> None:
        gc.collect()
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _poster(mp4: Path) -> bytes | None:
    from takeone.media.poster import poster_jpeg

    try:
        return poster_jpeg(mp4)
    except Exception:  # optional: the video is delivered without a thumbnail (logged)
        logging.getLogger("takeone.worker").exception("no poster frame from %s", mp4)
        return None


MAX_CONSECUTIVE_FAILURES = 2
_POISON_MARKERS = ("illegal memory access", "device-side assert", "CUDA error", "cuda error")


def _counts_as_failure(result: JobDone | JobFailed) -> bool:
    return isinstance(result, JobFailed) and result.kind in ("oom", "error")


def _poisoned(result: JobDone | JobFailed) -> bool:
    return isinstance(result, JobFailed) and any(m in result.error for m in _POISON_MARKERS)


def _kind(exc: TakeoneError) -> FailureKind:
    return "invalid" if isinstance(exc, InvalidRequest) else "error"
