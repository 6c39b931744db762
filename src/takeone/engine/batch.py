"""The worker side of a batch: several claimed jobs of one shape in one denoising run.

Each job stays its own: its inputs are fetched and checked alone (a missing input fails that
job only), it reports its own progress, a cancel drops it (its row finishes the step it is in
and leaves the batched compute at the next step) while the others go on, and it is decoded,
encoded, stored and answered alone, as soon as its own MP4 is written (the runner's
``answer``), not when the batch's last job is. A batched run that runs out of GPU memory is
split in two and each half retried; the worker remembers the largest batch that fitted for
that shape and splits later batches of it up front. Any other failure of the whole run retries its jobs one by one, so a
job that cannot be generated fails alone.

Example::

    results = BatchRunner(runner).run([RunJob(...), RunJob(...)])
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from takeone.core.errors import JobCancelled, OutOfMemory, TakeoneError
from takeone.core.task import VideoTask
from takeone.engine.messages import JobDone, JobFailed, RunJob
from takeone.models.batch import job_batch_key

if TYPE_CHECKING:
    from takeone.engine.worker import JobRunner

Result = JobDone | JobFailed


@dataclass(frozen=True)
class Prepared:
    """A job of the batch with its inputs fetched into its own scratch folder."""

    job: RunJob
    task: VideoTask
    folder: Path


class BatchRunner:
    """Runs batches on a :class:`~takeone.engine.worker.JobRunner`'s model, splitting on OOM."""

    def __init__(self, runner: JobRunner, oom_above: int = 0) -> None:
        self.runner = runner
        self.fits: dict[Hashable, int] = {}  # per shape: the largest batch known to fit
        self.oom_above = oom_above  # > 0: simulate an out-of-memory for larger batches (tests)

    def run(self, jobs: Sequence[RunJob]) -> list[Result]:
        """One result per job, in order, each answered through the runner as soon as it is
        known; never raises for a job's failure."""
        results: dict[str, Result] = {}
        prepared = [p for job in jobs if (p := self._prepare(job, results)) is not None]
        try:
            if prepared:
                key = job_batch_key(self.runner.profile, prepared[0].task)
                limit = self.fits.get(key, len(prepared))
                for start in range(0, len(prepared), limit):
                    self._run_group(prepared[start:start + limit], key, results)
        finally:
            for item in prepared:
                shutil.rmtree(item.folder, ignore_errors=True)
        return [results[job.job_id] for job in jobs]

    def _prepare(self, job: RunJob, results: dict[str, Result]) -> Prepared | None:
        folder = self.runner.job_folder(job.job_id)
        folder.mkdir(parents=True, exist_ok=True)
        try:
            task = self.runner.localize(VideoTask.from_dict(job.task), folder)
            self.runner.profile.recipe_for(task)  # refused here, alone, before any work
            return Prepared(job, task, folder)
        except Exception as exc:  # noqa: BLE001 - this job's failure only
            self._record(results, self.runner.failure(job.job_id, exc))
            shutil.rmtree(folder, ignore_errors=True)
            return None

    def _record(self, results: dict[str, Result], result: Result) -> None:
        results[result.job_id] = result
        self.runner.answer(result)

    def _run_group(self, group: Sequence[Prepared], key: Hashable | None, results: dict[str, Result]) -> None:
        if len(group) == 1:
            self._record(results, self._alone(group[0]))
            return
        try:
            self._render(group, results)
        except OutOfMemory:
            self.runner.free_memory()
            half = len(group) // 2
            self.fits[key] = min(self.fits.get(key, half), half)
            self._run_group(group[:half], key, results)
            self._run_group(group[half:], key, results)
            return
        except JobCancelled:
            for item in group:
                self._record(results, JobFailed(item.job.job_id, "cancelled", "cancelled"))
            return
        except TakeoneError:
            self.runner.free_memory()
            for item in group:  # which job broke the batch is unknown: each runs alone
                self._record(results, self._alone(item))
            return

    def _render(self, group: Sequence[Prepared], results: dict[str, Result]) -> None:
        """Run the group as one batch, answering each job as soon as its MP4 is written. The
        batch switches to its LoRAs once (the batch key holds the set, so every job of the
        group names the same); errors of the whole run raise before any job is answered."""
        from takeone.engine.render_batch import BatchJob, render_batch

        switch_s = self.runner.loras.activate(group[0].task.loras)
        if self.oom_above and len(group) > self.oom_above:
            raise OutOfMemory(f"simulated: a batch of {len(group)} does not fit")
        jobs = [BatchJob(item.task, item.folder / "out.mp4", self._progress(item.job.job_id),
                         self._cancelled(item.job.job_id)) for item in group]

        def delivered(index: int, outcome: Any) -> None:
            self._record(results, self._answer(group[index], outcome, len(group), switch_s))

        render_batch(self.runner.model, self.runner.profile, jobs, delivered)

    def _alone(self, item: Prepared) -> Result:
        """The lone job's usual path (its inputs are already local)."""
        return self.runner.run_prepared(item.job, item.task, item.folder)

    def _answer(self, item: Prepared, outcome: Any, size: int, switch_s: float) -> Result:
        job_id = item.job.job_id
        if isinstance(outcome, Exception):
            return self.runner.failure(job_id, outcome)
        if self.runner.stop_job(job_id):
            return JobFailed(job_id, "cancelled", "cancelled")
        try:
            started = time.perf_counter()
            metrics = self.runner.store_output(item.job, item.folder, outcome, started, item.task.loras, switch_s)
        except Exception as exc:  # noqa: BLE001 - this job's failure only
            return self.runner.failure(job_id, exc)
        metrics["batch_size"] = size
        return JobDone(job_id, metrics)

    def _progress(self, job_id: str) -> Callable[[int, int], None]:
        return lambda step, total: self.runner.progress(job_id, step, total)

    def _cancelled(self, job_id: str) -> Callable[[], bool]:
        return lambda: self.runner.stop_job(job_id)
