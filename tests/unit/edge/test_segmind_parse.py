import json

import pytest

from takeone.core.errors import InvalidRequest, NotFound
from takeone.edge.dialects.segmind.registry import get_endpoint


def _parse(slug: str, body: object) -> object:
    return get_endpoint(slug).parse(json.dumps(body).encode())


def test_seed_defaults() -> None:
    b21 = _parse("kling-2.1", {"image": "https://x/a.png"})
    assert (b21.mode, b21.aspect_ratio, b21.duration, b21.cfg_scale) == ("pro", "16:9", 5, 0.7)  # type: ignore[attr-defined]
    assert b21.negative_prompt == "No jittery motion, avoid rapid scene changes."  # type: ignore[attr-defined]
    b26 = _parse("kling-2.6", {"prompt": "fox"})
    assert (b26.duration, b26.generate_audio, b26.cfg_scale, b26.mode) == (10, True, 0.8, "pro")  # type: ignore[attr-defined]


@pytest.mark.parametrize("duration", ["5", 5, " 10", 10])
def test_duration_as_string_or_integer(duration: object) -> None:
    assert _parse("kling-2.6", {"prompt": "x", "duration": duration}).duration in (5, 10)  # type: ignore[attr-defined]


def test_to_task_maps_image_fields() -> None:
    spec = get_endpoint("kling-2.6")
    body = spec.parse(b'{"prompt": "x", "image_url": "https://x/a.png", "duration": 5}')
    assert spec.image_inputs(body) == {"image_url": "https://x/a.png"}
    task = spec.to_task(body, {"image_url": "inputs/r1/image_url.png"})
    assert (task.kind, task.first_frame, task.last_frame) == ("i2v", "inputs/r1/image_url.png", None)
    assert (task.seconds, task.audio, task.tier, task.guidance) == (5, True, "standard", 0.8)


def test_modes_map_onto_tiers_and_back_in_errors() -> None:
    spec = get_endpoint("kling-2.1")
    body = spec.parse(b'{"image": "https://x/a.png", "mode": "master", "image_tail": "https://x/b.png"}')
    task = spec.to_task(body, {"image": "k1", "image_tail": "k2"})
    assert (task.kind, task.tier, task.last_frame) == ("flf2v", "quality", "k2")
    err = spec.rename(InvalidRequest("seconds", 7, "must be one of 5, 10"))
    assert str(err) == "duration: must be one of 5, 10 (got 7)"
    assert get_endpoint("kling-2.6").rename(InvalidRequest("audio", True, "x")).field == "generate_audio"


def test_deep_json_is_a_clear_400() -> None:
    with pytest.raises(InvalidRequest, match="nested too deeply"):
        get_endpoint("kling-2.6").parse(b"[" * 100_000)


def test_unknown_slug() -> None:
    with pytest.raises(NotFound, match="kling-3"):
        get_endpoint("kling-3")


def test_unknown_fields_are_named_but_capped() -> None:
    """A body of many long unknown names gets a short answer (before: every name echoed)."""
    body = {"prompt": "fox", **{f"field_{n}_" + "x" * 500: 1 for n in range(2000)}}
    with pytest.raises(InvalidRequest) as refused:
        _parse("kling-2.6", body)
    message = str(refused.value)
    assert "field_0_" in message and "(and 1995 more)" in message and len(message) < 600, len(message)
    assert len(refused.value.field) < 300
