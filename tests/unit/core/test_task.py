"""VideoTask: every way a task can be wrong is refused with the field named, shots split into
single-shot tasks, and a task survives its trip through the store's JSON."""

from __future__ import annotations

import json
import math

import pytest

from takeone.core.errors import InvalidRequest
from takeone.core.loras import LoraUse
from takeone.core.task import MAX_SHOTS, SHOT_FRAME, Shot, VideoTask, kind_for


def refused(**fields: object) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as caught:
        VideoTask(**fields)  # type: ignore[arg-type]
    return caught.value


@pytest.mark.parametrize("fields,field", [
    ({"kind": "v2v"}, "kind"),
    ({"kind": "t2v", "tier": "ultra"}, "tier"),
    ({"kind": "t2v", "guidance": -0.01}, "guidance"),
    ({"kind": "t2v", "guidance": 1.01}, "guidance"),
    ({"kind": "t2v", "guidance": math.nan}, "guidance"),
    ({"kind": "t2v", "guidance": math.inf}, "guidance"),
    ({"kind": "t2v", "guidance": "0.5"}, "guidance"),
    ({"kind": "t2v", "aspect_ratio": None}, "size"),               # neither
    ({"kind": "t2v", "aspect_ratio": "16:9", "size": "64x64"}, "size"),  # both
    ({"kind": "i2v"}, "first_frame"),
    ({"kind": "t2v", "first_frame": "inputs/j/first_frame.png"}, "first_frame"),
    ({"kind": "flf2v", "first_frame": "inputs/j/first_frame.png"}, "last_frame"),
    ({"kind": "i2v", "first_frame": "inputs/j/first_frame.png", "last_frame": "inputs/j/last_frame.png"},
     "last_frame"),
])
def test_a_wrong_task_names_its_field(fields: dict[str, object], field: str) -> None:
    err = refused(**fields)
    assert err.field == field
    assert str(err).startswith(f"{field}: ")


def test_the_guidance_bounds_and_a_size_alone_are_accepted() -> None:
    assert VideoTask(kind="t2v", guidance=0).guidance == 0
    assert VideoTask(kind="t2v", guidance=1.0).guidance == 1.0
    assert VideoTask(kind="t2v", aspect_ratio=None, size="64x48").size == "64x48"


def test_an_image_value_is_never_echoed() -> None:
    err = refused(kind="t2v", first_frame="inputs/secret-job/first_frame.png")
    assert "secret-job" not in str(err) and "<image>" in str(err)


def test_shots_must_add_up_and_fit() -> None:
    one = Shot("a fox", 2)
    assert refused(kind="t2v", seconds=5, shots=(one, Shot("a hen", 2))).field == "seconds"
    assert refused(kind="t2v", seconds=MAX_SHOTS + 1, shots=(Shot("x", 1),) * (MAX_SHOTS + 1)).field == "shots"
    assert refused(kind="t2v", seconds=2, shots=(Shot("x", 0), Shot("y", 2))).field == "shots"
    assert refused(kind="flf2v", first_frame="inputs/j/first_frame.png", last_frame="inputs/j/last_frame.png",
                   seconds=2, shots=(one,)).field == "shots"
    assert len(VideoTask(kind="t2v", seconds=MAX_SHOTS, shots=(Shot("x", 1),) * MAX_SHOTS).shots) == MAX_SHOTS


def test_shots_become_single_shot_tasks_chained_by_their_last_frame() -> None:
    task = VideoTask(kind="i2v", first_frame="inputs/j/first_frame.png", seconds=6, seed=3,
                     shots=(Shot("a fox", 2), Shot("a hen", 3), Shot("a cow", 1)))
    parts = task.shot_tasks()
    assert [(p.prompt, p.seconds, p.kind) for p in parts] == [("a fox", 2, "i2v"), ("a hen", 3, "i2v"),
                                                              ("a cow", 1, "i2v")]
    assert [p.first_frame for p in parts] == ["inputs/j/first_frame.png", SHOT_FRAME, SHOT_FRAME]
    assert all(p.shots == () and p.seed == 3 for p in parts)
    text = VideoTask(kind="t2v", seconds=2, shots=(Shot("a", 1), Shot("b", 1))).shot_tasks()
    assert [p.kind for p in text] == ["t2v", "i2v"] and text[0].first_frame is None
    plain = VideoTask(kind="t2v")
    assert plain.shot_tasks() == (plain,)


def test_inputs_are_listed_and_replaced_by_role() -> None:
    task = VideoTask(kind="flf2v", first_frame="pending:image", last_frame="pending:last_image")
    assert task.inputs() == {"first_frame": "pending:image", "last_frame": "pending:last_image"}
    stored = task.with_inputs({"first_frame": "inputs/j/first_frame.png"})
    assert stored.first_frame == "inputs/j/first_frame.png" and stored.last_frame == "pending:last_image"
    assert VideoTask(kind="t2v").inputs() == {}
    with pytest.raises(ValueError, match="middle_frame"):
        task.with_inputs({"middle_frame": "x"})


def test_a_task_round_trips_through_json_with_shots_and_loras() -> None:
    task = VideoTask(kind="t2v", tier="quality", seconds=3, aspect_ratio=None, size="96x64", fps=8,
                     audio=True, seed=11, prompt="p", negative_prompt="n", guidance=0.25,
                     shots=(Shot("a", 1), Shot("b", 2)), loras=(LoraUse("anime", 0.5),))
    again = VideoTask.from_dict(json.loads(json.dumps(task.to_dict())))
    assert again == task
    assert isinstance(again.shots[0], Shot) and isinstance(again.loras[0], LoraUse)


def test_from_dict_checks_the_stored_loras() -> None:
    data = VideoTask(kind="t2v").to_dict()
    data["loras"] = [{"name": "bad name", "scale": 1}]
    with pytest.raises(InvalidRequest) as caught:
        VideoTask.from_dict(data)
    assert caught.value.field == "loras[0].name"


@pytest.mark.parametrize("first,last,kind", [(None, None, "t2v"), ("img", None, "i2v"), ("img", "img", "flf2v"),
                                             (None, "img", "flf2v")])
def test_the_kind_follows_the_frames_given(first: object, last: object, kind: str) -> None:
    assert kind_for(first, last) == kind
