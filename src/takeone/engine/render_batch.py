"""Several tasks of one recipe shape, generated in one batched run and delivered one by one.

The batched run is the model family's (:mod:`takeone.models.ltx2.batch`); what comes back is
one :class:`~takeone.models.base.Video` per task, each decoded and encoded on its own through
the same path a lone job takes (:func:`takeone.engine.render.decode_into_mp4`), so a job's MP4
is made exactly as it would be alone. Each job is handed to ``delivered`` as soon as its own
MP4 is written, not when the batch's last one is: while one job's encoder finishes its file
(and ``delivered`` stores and answers it, on a second thread), the next job is decoded. A
failure while delivering one job is that job's alone: ``delivered`` gets the error, and the
others are still delivered.

Example::

    render_batch(model, profile, [BatchJob(task, path, progress, cancel), ...], delivered)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from takeone.core.errors import GenerationFailed, JobCancelled
from takeone.core.task import VideoTask
from takeone.engine.render import RenderInfo, decode_into_mp4
from takeone.models.base import CancelFn, ProgressFn, Video, VideoModel
from takeone.models.recipe import Profile


@dataclass(frozen=True)
class BatchJob:
    """One job of a batch: its task, where its MP4 goes, its progress and cancel check."""

    task: VideoTask
    out_path: Path
    progress: ProgressFn
    should_cancel: CancelFn


# Hears of each job once, by its index in the batch: its RenderInfo, or the error that stopped it.
DeliveredFn = Callable[[int, "RenderInfo | Exception"], None]


def generate_videos(model: VideoModel, profile: Profile, jobs: Sequence[BatchJob]) -> list[Video | None]:
    """The batched generation only (the caller delivers); None for a job cancelled meanwhile;
    ``GenerationFailed`` for a model that does not batch. Progress counts each job's steps plus
    one unit for its delivery."""
    from takeone.models.ltx2.batch import BatchItem, generate_batch
    from takeone.models.ltx2.model import Ltx2Model

    if not isinstance(model, Ltx2Model):
        raise GenerationFailed(f"profile {profile.name!r} does not batch")
    items = [BatchItem(job.task, profile.recipe_for(job.task), _plus_delivery(job.progress), job.should_cancel)
             for job in jobs]
    return generate_batch(model, items)


def render_batch(model: VideoModel, profile: Profile, jobs: Sequence[BatchJob], delivered: DeliveredFn) -> None:
    """Generate ``jobs`` as one batch and deliver each as soon as its MP4 is written:
    ``delivered(index, outcome)`` once per job, with its :class:`RenderInfo` or the error that
    stopped it (``JobCancelled`` for a job cancelled meanwhile), on the finishing thread. Errors
    of the batched run itself (``OutOfMemory``, ``GenerationFailed``, every job cancelled)
    raise before any job is delivered."""
    started = time.perf_counter()
    videos = generate_videos(model, profile, jobs)
    generate_s = time.perf_counter() - started
    try:
        with ThreadPoolExecutor(1, thread_name_prefix="takeone-finish") as finisher:
            behind: Future[None] | None = None  # the job whose file is being finished
            for index, (job, video) in enumerate(zip(jobs, videos)):
                finish = _decode(profile, job, video, generate_s)
                if behind is not None:
                    behind.result()  # at most one job finishing behind the one being decoded
                behind = finisher.submit(_finish, index, finish, delivered)
            if behind is not None:
                behind.result()
    finally:
        for video in videos:  # streams left unread by an error above (closing twice is harmless)
            if video is not None:
                video.close()


def _decode(
    profile: Profile, job: BatchJob, video: Video | None, generate_s: float
) -> Callable[[], RenderInfo | Exception]:
    """Decode ``job``'s video into its encoder now; what finishes its file later."""
    try:
        if video is None or job.should_cancel():
            raise JobCancelled()
        recipe, seed = profile.recipe_for(job.task), video.seed
        began = time.perf_counter()
        with_audio = decode_into_mp4(video, recipe, job.out_path)
    except Exception as exc:  # noqa: BLE001 - this job's failure, not its batch-mates'
        return _failed(exc)
    finally:
        if video is not None:
            video.close()

    def finish() -> RenderInfo | Exception:
        try:
            has_audio = with_audio()
        except Exception as exc:  # noqa: BLE001 - this job's failure, not its batch-mates'
            return exc
        job.progress(recipe.total_steps + 1, recipe.total_steps + 1)
        return RenderInfo(
            width=recipe.output_width, height=recipe.output_height, frames=recipe.output_frames,
            fps=recipe.output_fps, duration_s=recipe.output_duration_s, has_audio=has_audio, seed=seed,
            generate_seconds=round(generate_s, 3), deliver_seconds=round(time.perf_counter() - began, 3),
            steps=recipe.total_steps,
        )

    return finish


def _failed(exc: Exception) -> Callable[[], RenderInfo | Exception]:
    return lambda: exc


def _finish(index: int, finish: Callable[[], RenderInfo | Exception], delivered: DeliveredFn) -> None:
    delivered(index, finish())


def _plus_delivery(progress: ProgressFn) -> ProgressFn:
    """Steps reported out of one more than the model's: the last unit is the job's delivery."""

    def report(done: int, total: int) -> None:
        progress(done, total + 1)

    return report
