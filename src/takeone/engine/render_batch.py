"""Several tasks of one recipe shape, generated in one batched run and delivered one by one.

The batched run is the model family's (:mod:`takeone.models.ltx2.batch`); what comes back is
one :class:`~takeone.models.base.Video` per task, each decoded and encoded on its own through
the same delivery path a lone job takes (:func:`takeone.engine.render.deliver`), so a job's
MP4 is made exactly as it would be alone. A failure while delivering one job is that job's
alone: its slot in the answer holds the error, and the others are still delivered.

Example::

    outcomes = render_batch(model, profile, [BatchJob(task, path, progress, cancel), ...])
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from takeone.core.errors import GenerationFailed, JobCancelled
from takeone.core.task import VideoTask
from takeone.engine.render import RenderInfo, deliver
from takeone.models.base import CancelFn, ProgressFn, Video, VideoModel
from takeone.models.recipe import Profile


@dataclass(frozen=True)
class BatchJob:
    """One job of a batch: its task, where its MP4 goes, its progress and cancel check."""

    task: VideoTask
    out_path: Path
    progress: ProgressFn
    should_cancel: CancelFn


def generate_videos(model: VideoModel, profile: Profile, jobs: Sequence[BatchJob]) -> list[Video]:
    """The batched generation only (the caller delivers); ``GenerationFailed`` for a model
    that does not batch. Progress counts each job's steps plus one unit for its delivery."""
    from takeone.models.ltx2.batch import BatchItem, generate_batch
    from takeone.models.ltx2.model import Ltx2Model

    if not isinstance(model, Ltx2Model):
        raise GenerationFailed(f"profile {profile.name!r} does not batch")
    items = [BatchItem(job.task, profile.recipe_for(job.task), _plus_delivery(job.progress), job.should_cancel)
             for job in jobs]
    return generate_batch(model, items)


def render_batch(model: VideoModel, profile: Profile, jobs: Sequence[BatchJob]) -> list[RenderInfo | Exception]:
    """Generate ``jobs`` as one batch and deliver each; per job its :class:`RenderInfo` or the
    error that stopped it (``JobCancelled`` for a job cancelled meanwhile). Errors of the
    batched run itself (``OutOfMemory``, ``GenerationFailed``, every job cancelled) raise."""
    started = time.perf_counter()
    videos = generate_videos(model, profile, jobs)
    generate_s = time.perf_counter() - started
    outcomes: list[RenderInfo | Exception] = []
    for job, video in zip(jobs, videos):
        try:
            outcomes.append(_deliver_one(profile, job, video, generate_s))
        except Exception as exc:  # noqa: BLE001 - this job's failure, not its batch-mates'
            outcomes.append(exc)
        finally:
            video.close()
    return outcomes


def _deliver_one(profile: Profile, job: BatchJob, video: Video, generate_s: float) -> RenderInfo:
    if job.should_cancel():
        raise JobCancelled()
    recipe = profile.recipe_for(job.task)
    began = time.perf_counter()
    has_audio = deliver(video, recipe, job.out_path)
    job.progress(recipe.total_steps + 1, recipe.total_steps + 1)
    return RenderInfo(
        width=recipe.output_width, height=recipe.output_height, frames=recipe.output_frames,
        fps=recipe.output_fps, duration_s=recipe.output_duration_s, has_audio=has_audio, seed=video.seed,
        generate_seconds=round(generate_s, 3), deliver_seconds=round(time.perf_counter() - began, 3),
        steps=recipe.total_steps,
    )


def _plus_delivery(progress: ProgressFn) -> ProgressFn:
    """Steps reported out of one more than the model's: the last unit is the job's delivery."""

    def report(done: int, total: int) -> None:
        progress(done, total + 1)

    return report
