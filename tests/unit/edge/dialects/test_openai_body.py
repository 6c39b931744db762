"""``POST /v1/videos`` bodies onto tasks: models, seconds and sizes, refused fields."""

from __future__ import annotations

from typing import Any

import pytest

from takeone.core.errors import InvalidRequest
from takeone.edge.dialects.openai.body import parse_create, rename
from takeone.edge.dialects.openai.errors import UnknownParameter, error_body
from takeone.models.registry import get_profile

TINY = get_profile("tiny")


def parse(**fields: Any) -> Any:
    return parse_create({"prompt": "a fox", **fields}, TINY)


def test_defaults_are_openais() -> None:
    create = parse()
    assert (create.model, create.tier, create.seconds, create.aspect_ratio) == ("sora-2", "standard", 4, "9:16")
    task = create.task()
    assert (task.kind, task.audio, task.first_frame) == ("t2v", True, None)


@pytest.mark.parametrize("model,tier", [("sora-2", "standard"), ("sora-2-pro", "quality"),
                                        ("sora-2-2025-10-06", "standard"), ("tiny", "standard")])
def test_models_pick_tiers(model: str, tier: str) -> None:
    assert parse(model=model).tier == tier


@pytest.mark.parametrize("seconds,served", [("4", 4), ("8", 8), ("12", 12), ("5", 5), (10, 10), ("7", 7)])
def test_openai_durations_are_served_exactly(seconds: object, served: int) -> None:
    assert parse(seconds=seconds).seconds == served


def test_a_profile_without_openais_lengths_serves_the_nearest() -> None:
    """A test-sized profile with an explicit 5 / 10 s table: 4 -> 5, 8 and 12 -> 10."""
    small = get_profile("ltx-2").scaled(TINY.qualities["fast"].sizes, {5: 9, 10: 17})
    assert [parse_create({"prompt": "x", "seconds": s}, small).seconds for s in ("4", "8", "12")] == [5, 10, 10]


def test_sizes_are_openais_or_the_profiles() -> None:
    assert (parse(size="1792x1024").aspect_ratio, parse(size="1792x1024").exact_size) == ("16:9", None)
    assert (parse(size="144x144").aspect_ratio, parse(size="144x144").exact_size) == (None, "144x144")
    with pytest.raises(InvalidRequest, match="720x1280, 1280x720, 1024x1792, 1792x1024, 256x144"):
        parse(size="640x480")


@pytest.mark.parametrize("fields,param", [
    ({"seconds": "21"}, "seconds"), ({"seconds": "0"}, "seconds"), ({"seconds": True}, "seconds"),
    ({"model": "gpt-5"}, "model"),
    ({"prompt": ""}, "prompt"), ({"prompt": 3}, "prompt"),
    ({"input_reference": {"file_id": "file_1"}}, "input_reference.file_id"),
    ({"input_reference": {"image_url": "https://x/y.png", "detail": "high"}}, "input_reference"),
])
def test_bad_fields_are_named(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse(**fields)
    assert error_body(refused.value)["error"]["param"] == param


def test_unknown_fields_are_refused_as_openai_does() -> None:
    with pytest.raises(UnknownParameter) as refused:
        parse(quality="hd")
    body = error_body(refused.value)["error"]
    assert (body["code"], body["param"], body["message"]) == ("unknown_parameter", "quality",
                                                              "Unknown parameter: 'quality'.")


def test_an_image_makes_it_image_to_video() -> None:
    create = parse(input_reference={"image_url": "https://example.com/a.png"})
    assert create.task("pending").kind == "i2v" and create.image == "https://example.com/a.png"
    assert rename(InvalidRequest("first_frame", None, "bad")).field == "input_reference"
    assert parse().fingerprint() != parse(prompt="another").fingerprint()
