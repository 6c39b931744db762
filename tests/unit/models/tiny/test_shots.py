"""Multi-shot tasks through the real tiny LTX-2 model: shots rendered in order into one MP4,
each conditioned on the previous shot's last frame, one audio track, progress per shot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from PIL import Image

from takeone.core.errors import InvalidRequest
from takeone.core.task import SHOT_FRAME, Shot, VideoTask
from takeone.engine.render import render
from takeone.models.base import CancelFn, ProgressFn, Video, VideoModel
from takeone.models.recipe import Profile, Recipe
from tests.unit.models.callbacks import never


class Recording:
    """The real model, with what each call received and the last frame it generated."""

    def __init__(self, model: VideoModel) -> None:
        self.model = model
        self.calls: list[tuple[VideoTask, Recipe, np.ndarray | None]] = []
        self.last_frames: list[np.ndarray] = []

    def generate(self, task: VideoTask, recipe: Recipe, progress: ProgressFn, should_cancel: CancelFn) -> Video:
        image = np.asarray(Image.open(task.first_frame)) if task.first_frame else None
        self.calls.append((task, recipe, image))
        video = self.model.generate(task, recipe, progress, should_cancel)
        frames = video.all_frames()
        self.last_frames.append(frames[-1].copy())
        return Video(frames, video.fps, video.audio, video.sample_rate, video.seed)


def test_three_shots_make_one_continuous_clip(tiny_model: VideoModel, tiny_profile: Profile, tmp_path: Path) -> None:
    shots = (Shot("a door opens", 2), Shot("a hand reaches out", 3), Shot("the room goes dark", 1))
    task = VideoTask(kind="t2v", tier="standard", seconds=6, audio=True, prompt="scene", shots=shots, seed=7)
    model = Recording(tiny_model)
    reports: list[tuple[int, int]] = []
    out = tmp_path / "out.mp4"
    info = render(model, tiny_profile, task, out, lambda d, t: reports.append((d, t)), never)

    prompts = [call[0].prompt for call in model.calls]
    assert prompts == ["a door opens", "a hand reaches out", "the room goes dark"]
    assert [call[0].kind for call in model.calls] == ["t2v", "i2v", "i2v"]
    assert all(call[0].seed == 7 for call in model.calls)
    for index in (1, 2):  # each shot starts from the previous shot's last generated frame
        assert np.array_equal(model.calls[index][2], model.last_frames[index - 1])

    steps = [call[1].total_steps for call in model.calls]
    total = sum(steps) + 1
    assert all(t == total for _, t in reports) and reports[-1] == (total, total)
    done = [d for d, _ in reports]
    assert done == sorted(done)  # progress only moves forward, shot after shot
    for boundary in (steps[0], steps[0] + steps[1]):
        assert boundary in done

    with av.open(str(out)) as container:
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(str(out)) as container:
        audio = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(audio=0))
    assert frames == info.frames == 6 * 24 + 1
    assert info.duration_s == pytest.approx(6 + 1 / 24)
    assert samples / audio.rate == pytest.approx(frames / 24, abs=0.05)  # no gap at the cuts


def test_every_shot_is_checked_before_any_work(tiny_profile: Profile) -> None:
    """The standard tier's 16:9 cap is 12 s a clip: a 13 s shot is refused by its index,
    though 3 shots of up to 12 s each may add up to more."""
    fine = VideoTask(kind="t2v", seconds=20, shots=(Shot("a", 10), Shot("b", 10)))
    assert len(tiny_profile.recipes_for(fine)) == 2
    with pytest.raises(InvalidRequest) as caught:
        tiny_profile.recipes_for(VideoTask(kind="t2v", seconds=15, shots=(Shot("a", 2), Shot("b", 13))))
    assert caught.value.field == "shots.1.seconds" and "at most 12" in caught.value.reason


@pytest.mark.parametrize(("changes", "field"), [
    ({"seconds": 6}, "seconds"),
    ({"shots": tuple(Shot("a", 1) for _ in range(6)), "seconds": 6}, "shots"),
    ({"shots": (Shot("a", 0), Shot("b", 5))}, "shots"),
])
def test_bad_shot_lists_name_their_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        VideoTask(**{"kind": "t2v", "seconds": 5, "shots": (Shot("a", 2), Shot("b", 3)), **changes})
    assert caught.value.field == field


def test_shot_tasks_round_trip_through_the_job_record() -> None:
    task = VideoTask(kind="t2v", seconds=5, shots=(Shot("a", 2), Shot("b", 3)))
    import json

    assert VideoTask.from_dict(json.loads(json.dumps(task.to_dict()))) == task
    assert [t.first_frame for t in task.shot_tasks()] == [None, SHOT_FRAME]


def test_cancelling_during_a_later_shot_delivers_nothing(
    tiny_model: VideoModel, tiny_profile: Profile, tmp_path: Path
) -> None:
    """A cancel once the second shot has started stops it; the first shot's
    frames already encoded are thrown away with the partial file."""
    from takeone.core.errors import JobCancelled

    model = Recording(tiny_model)
    task = VideoTask(kind="t2v", seconds=3, prompt="x", shots=(Shot("a", 1), Shot("b", 2)))
    out = tmp_path / "out.mp4"
    with pytest.raises(JobCancelled):
        render(model, tiny_profile, task, out, lambda d, t: None, lambda: len(model.calls) >= 2)
    assert len(model.calls) == 2 and not out.exists()
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".mp4" or ".tmp" in p.name] == []
