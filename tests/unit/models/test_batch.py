"""A job's video from a batch equals the same job run alone (same seed), on the real pipelines.

Tolerance: the batch runs the same float32 operations, but a batched matmul may pick another
kernel blocking than a one-row matmul, so latents can differ in the last bits; after the VAE
that is at most a step or two of a uint8 pixel and a tiny audio error. Measured on CPU for the
tiny batch of four (one torch thread): frames differ by at most 1 of 255 on a few pixels (mean
difference 1.7e-5 to 3.1e-5), audio by at most 6e-8. The bounds below leave a margin: 2 levels
per pixel, a mean under 0.01, audio within 1e-5. A batch-mate leaking into a job's noise or
prompt moves the random-weight frames by tens of levels on most pixels, which these bounds
catch (see test_the_bounds_catch_a_video_from_another_seed).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from takeone.core.errors import GenerationFailed, JobCancelled
from takeone.core.task import VideoTask
from takeone.models.base import Video, VideoModel
from takeone.models.batch import batch_key, can_batch
from takeone.models.ltx2.batch import BatchItem, generate_batch
from takeone.models.ltx2.model import Ltx2Model
from takeone.models.ltx2.recipe import Ltx2Sampling
from takeone.models.recipe import Profile
from tests.unit.models.callbacks import ignore, never, whole

PIXEL_TOLERANCE = 2
MEAN_TOLERANCE = 0.01
AUDIO_TOLERANCE = 1e-5


def _tasks(kind: str = "t2v", tier: str = "fast", seconds: int = 1) -> list[VideoTask]:
    prompts = ["a fox in snow", "city at night, rain", "waves", "a red kite over a field of wheat"]
    negatives = ["", "blurry", "", "low quality, text"]
    return [VideoTask(kind=kind, tier=tier, prompt=prompt, negative_prompt=negative, seed=11 + 7 * i,
                      guidance=0.25 * (i + 1), audio=True, seconds=seconds)  # type: ignore[arg-type]
            for i, (prompt, negative) in enumerate(zip(prompts, negatives))]


def _alone(model: VideoModel, profile: Profile, task: VideoTask) -> Video:
    return whole(model.generate(task, profile.recipe_for(task), ignore, never))


def _batched(model: VideoModel, profile: Profile, tasks: list[VideoTask]) -> list[Video]:
    assert isinstance(model, Ltx2Model)
    items = [BatchItem(task, profile.recipe_for(task), ignore, never) for task in tasks]
    videos = generate_batch(model, items)
    return [whole(video) for video in videos if video is not None]


def _assert_same(batched: Video, alone: Video) -> None:
    a, b = batched.all_frames().astype(np.int16), alone.all_frames().astype(np.int16)
    assert a.shape == b.shape
    difference = np.abs(a - b)
    assert int(difference.max()) <= PIXEL_TOLERANCE and float(difference.mean()) < MEAN_TOLERANCE
    assert batched.audio is not None and alone.audio is not None
    assert batched.audio.shape == alone.audio.shape
    assert float(np.abs(batched.audio - alone.audio).max()) <= AUDIO_TOLERANCE
    assert batched.seed == alone.seed


def test_tiny_batch_of_four_equals_each_job_alone(tiny_model: VideoModel, tiny_profile: Profile) -> None:
    tasks = _tasks()
    batched = _batched(tiny_model, tiny_profile, tasks)
    for video, task in zip(batched, tasks):
        _assert_same(video, _alone(tiny_model, tiny_profile, task))


def test_two_stage_distilled_batch_equals_each_job_alone(ltx2_model: VideoModel, scaled_ltx2: Profile) -> None:
    """LTX-2's fast tier: distilled stage 1, latent upsample, stage 2 re-noised per row."""
    tasks = _tasks(seconds=5)[:2]
    assert len(scaled_ltx2.recipe_for(tasks[0]).stage_steps) == 2
    batched = _batched(ltx2_model, scaled_ltx2, tasks)
    for video, task in zip(batched, tasks):
        _assert_same(video, _alone(ltx2_model, scaled_ltx2, task))


def test_image_to_video_batches_each_first_frame(
    tiny_model: VideoModel, tiny_profile: Profile, make_png: Callable[..., str]
) -> None:
    tasks = [dataclasses.replace(task, kind="i2v", first_frame=make_png(160, 96, seed=i))
             for i, task in enumerate(_tasks()[:3])]
    batched = _batched(tiny_model, tiny_profile, tasks)
    for video, task in zip(batched, tasks):
        _assert_same(video, _alone(tiny_model, tiny_profile, task))


def test_a_cancelled_job_does_not_stop_its_batch_mates(tiny_model: VideoModel, tiny_profile: Profile) -> None:
    tasks = _tasks()[:2]
    heard: list[tuple[int, int]] = []
    items = [BatchItem(tasks[0], tiny_profile.recipe_for(tasks[0]), ignore, lambda: True),
             BatchItem(tasks[1], tiny_profile.recipe_for(tasks[1]), lambda d, t: heard.append((d, t)), never)]
    assert isinstance(tiny_model, Ltx2Model)
    videos = generate_batch(tiny_model, items)
    assert videos[0] is None and videos[1] is not None  # the cancelled job is not even decoded
    _assert_same(whole(videos[1]), _alone(tiny_model, tiny_profile, tasks[1]))
    assert heard[-1] == (items[1].recipe.total_steps, items[1].recipe.total_steps)
    with pytest.raises(JobCancelled):
        generate_batch(tiny_model, [dataclasses.replace(item, should_cancel=lambda: True) for item in items])


def test_a_job_cancelled_mid_run_leaves_the_batched_compute_at_the_next_step(
    tiny_model: VideoModel, tiny_profile: Profile
) -> None:
    """Job 1 is cancelled once the first step ends: from the second step on the transformer
    runs three jobs' rows, not four, and the three others still equal each job alone."""
    tasks = _tasks()
    assert isinstance(tiny_model, Ltx2Model)
    steps_done: list[int] = []
    items = [BatchItem(task, tiny_profile.recipe_for(task), ignore, never) for task in tasks]
    items[0] = dataclasses.replace(items[0], progress=lambda done, total: steps_done.append(done))
    items[1] = dataclasses.replace(items[1], should_cancel=lambda: bool(steps_done))
    computed: list[int] = []  # the rows each transformer call really ran (its first block's input)

    def count(_module: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        computed.append(int(kwargs.get("hidden_states", args[0] if args else None).shape[0]))

    block = tiny_model.components["transformer"].transformer_blocks[0]
    handle = block.register_forward_pre_hook(count, with_kwargs=True)
    try:
        videos = generate_batch(tiny_model, items)
    finally:
        handle.remove()
    assert items[0].recipe.steps == 2 and len(computed) == 2  # one call a step (guided: two copies)
    assert computed[0] == 2 * 4 and computed[1] == 2 * 3, computed
    assert videos[1] is None
    for row in (0, 2, 3):
        video = videos[row]
        assert video is not None
        _assert_same(whole(video), _alone(tiny_model, tiny_profile, tasks[row]))


def test_a_job_cancelled_in_stage_two_leaves_the_compute_there(ltx2_model: VideoModel, scaled_ltx2: Profile) -> None:
    """LTX-2's fast tier: job 1 is cancelled after the first stage-2 step; the stage-2 steps
    after it run one job's row instead of two, and job 0 still equals itself alone."""
    tasks = _tasks(seconds=5)[:2]
    assert isinstance(ltx2_model, Ltx2Model)
    recipe = scaled_ltx2.recipe_for(tasks[0])
    first_stage, second_stage = recipe.stage_steps
    steps_done: list[int] = []
    items = [BatchItem(task, scaled_ltx2.recipe_for(task), ignore, never) for task in tasks]
    items[0] = dataclasses.replace(items[0], progress=lambda done, total: steps_done.append(done))
    items[1] = dataclasses.replace(items[1], should_cancel=lambda: bool(steps_done) and steps_done[-1] > first_stage)
    computed: list[int] = []

    def count(_module: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        computed.append(int(kwargs.get("hidden_states", args[0] if args else None).shape[0]))

    handle = ltx2_model.components["transformer"].transformer_blocks[0].register_forward_pre_hook(
        count, with_kwargs=True)
    try:
        videos = generate_batch(ltx2_model, items)
    finally:
        handle.remove()
    # Stage 1 (distilled, unguided here) and the first stage-2 step run both rows; the rest one.
    assert computed == [2] * (first_stage + 1) + [1] * (second_stage - 1), computed
    assert videos[1] is None and videos[0] is not None
    _assert_same(whole(videos[0]), _alone(ltx2_model, scaled_ltx2, tasks[0]))


def test_the_bounds_catch_a_video_from_another_seed(tiny_model: VideoModel, tiny_profile: Profile) -> None:
    task = _tasks()[0]
    with pytest.raises(AssertionError):
        _assert_same(_alone(tiny_model, tiny_profile, task),
                     _alone(tiny_model, tiny_profile, dataclasses.replace(task, seed=12)))


def test_batch_keys_group_only_compatible_recipes(tiny_profile: Profile, scaled_ltx2: Profile) -> None:
    one, two = (tiny_profile.recipe_for(task) for task in _tasks()[:2])
    assert batch_key(one, True) == batch_key(two, True)
    longer = tiny_profile.recipe_for(dataclasses.replace(_tasks()[0], seconds=2))
    silent = tiny_profile.recipe_for(dataclasses.replace(_tasks()[0], audio=False))
    assert batch_key(longer, True) != batch_key(one, True) and batch_key(silent, True) != batch_key(one, True)
    assert can_batch(one, "tiny") and not can_batch(one, "wan")
    two_stage_i2v = scaled_ltx2.recipe_for(dataclasses.replace(_tasks(seconds=5)[0], kind="i2v", first_frame="a.png"))
    assert not can_batch(two_stage_i2v, "ltx2")


def test_a_batch_refuses_a_case_its_family_cannot_batch(tiny_model: VideoModel, tiny_profile: Profile) -> None:
    task = dataclasses.replace(_tasks()[0], kind="flf2v", first_frame="a.png", last_frame="b.png")
    assert isinstance(tiny_model, Ltx2Model)
    with pytest.raises(GenerationFailed, match="cannot batch"):
        generate_batch(tiny_model, [BatchItem(task, tiny_profile.recipe_for(task), ignore, never)])


def test_ltx25_ancestral_stage_draws_each_jobs_own_noise(tmp_path_factory: pytest.TempPathFactory) -> None:
    """LTX-2.5's distilled stage 1 renoises every step (ancestral): each row from its own seed."""
    from takeone.models.loader import load_video_model
    from takeone.models.ltx2.tiny import write_tiny_checkpoints
    from takeone.models.registry import get_profile
    from tests.unit.models.conftest import TINY_LTX2_FRAMES, TINY_LTX2_SIZES

    cache = tmp_path_factory.mktemp("hf-home-25-batch") / "hub"
    write_tiny_checkpoints(get_profile("ltx-2.5"), cache)
    profile = get_profile("ltx-2.5").scaled(TINY_LTX2_SIZES, TINY_LTX2_FRAMES, 32, {"stg_blocks": (1,)})
    model = load_video_model(profile, "cpu", weights=cache)
    tasks = _tasks(seconds=5)[:2]
    recipe = profile.recipe_for(tasks[0])
    assert isinstance(recipe.sampling, Ltx2Sampling)
    assert recipe.sampling.stage1_sampler == "ancestral" and len(recipe.stage_steps) == 2
    batched = _batched(model, profile, tasks)
    for video, task in zip(batched, tasks):
        _assert_same(video, _alone(model, profile, task))
