"""The Replicate, fal and RunPod bodies onto tasks, their error shapes, and the shared ids
and progress logs."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from takeone.core.errors import InsufficientCredits, InvalidRequest, NotFound, RateLimited
from takeone.core.jobs import Job, JobStatus
from takeone.core.task import VideoTask
from takeone.edge.dialects.fal.body import MODELS, model_of
from takeone.edge.dialects.fal.errors import fal_error
from takeone.edge.dialects.hosted import job_id_of_short, logs_of, short_id
from takeone.edge.dialects.replicate.body import parse_create, resolve
from takeone.edge.dialects.replicate.errors import problem, status_for
from takeone.edge.dialects.runpod.body import parse_run, tier_of
from takeone.edge.dialects.runpod.errors import runpod_error
from takeone.models.registry import get_profile

TINY = get_profile("tiny")


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode()


def job(status: JobStatus, progress: float = 0.0, error: str | None = None) -> Job:
    return Job(id=str(uuid.uuid4()), key_id="k", task=VideoTask(kind="t2v"), price=0.45, status=status,
               created_at=0.0, progress=progress, error=error, dialect="segmind")


def test_short_ids_round_trip_and_refuse_others() -> None:
    job_id = str(uuid.uuid4())
    public = short_id(job_id)
    assert len(public) == 26 and public.islower() and job_id_of_short(public) == job_id
    assert job_id_of_short(job_id) is None and job_id_of_short("!" * 26) is None


def test_logs_grow_one_line_per_tenth_in_tqdm_form() -> None:
    assert logs_of(job(JobStatus.QUEUED)) == ""
    running = logs_of(job(JobStatus.PROCESSING, 0.42)).splitlines()
    assert running[0].startswith("Generating a 5 s video") and running[-1] == " 40%|####      | 40/100"
    assert len(running) == 5 and logs_of(job(JobStatus.COMPLETED)).splitlines()[-1].startswith("100%|")
    assert logs_of(job(JobStatus.FAILED, 0.1, "cancelled")).splitlines()[-1] == "cancelled"


@pytest.mark.parametrize("model,mode,tier", [
    ("kwaivgi/kling-v2.6", "standard", "fast"), ("kwaivgi/kling-v2.6", "pro", "standard"),
    ("kwaivgi/kling-v2.1-master", "standard", "quality"), ("takeone/tiny", "pro", "standard")])
def test_replicate_models_pick_tiers(model: str, mode: str, tier: str) -> None:
    made = parse_create(body(input={"prompt": "a fox", "mode": mode}), model, TINY)
    assert made.task(None, None, TINY).tier == tier and made.events == ("start", "output", "logs", "completed")


def test_replicate_versions_and_refusals() -> None:
    kling = resolve("kwaivgi/kling-v2.6", TINY)
    assert resolve(kling.version, TINY) == kling == resolve(f"kwaivgi/kling-v2.6:{kling.version}", TINY)
    with pytest.raises(InvalidRequest) as wrong:
        resolve("kwaivgi/kling-v2.6:0000", TINY)
    assert wrong.value.field == "version"
    cases = {"duration": {"input": {"prompt": "x", "duration": 7}},
             "camera": {"input": {"prompt": "x", "camera": "dolly"}},
             "webhook_events_filter": {"input": {"prompt": "x"}, "webhook_events_filter": ["done"]},
             "stream": {"input": {"prompt": "x"}, "stream": True},
             "start_image": {"input": {"prompt": "x"}}}
    for field, data in cases.items():
        model = "kwaivgi/kling-v2.1" if field == "start_image" else "kwaivgi/kling-v2.6"
        with pytest.raises(InvalidRequest) as refused:
            parse_create(body(**data), model, TINY)
        assert refused.value.field.startswith(field), (field, refused.value.field)


def test_replicate_problems() -> None:
    bad = InvalidRequest("duration", 7, "must be 5 or 10")
    assert status_for(bad) == 422 and problem(bad)["invalid_fields"] == [
        {"type": "invalid", "field": "duration", "description": "must be 5 or 10"}]
    assert status_for(InsufficientCredits("poor")) == 402
    assert status_for(InvalidRequest("body", "{", "is not valid JSON")) == 400


def test_fal_models_and_fields() -> None:
    ltx = model_of("fal-ai/ltx-2/image-to-video/fast")
    parsed = ltx.parse(body(prompt="x", image_url="https://example.com/a.png", duration=8))
    task = ltx.task(parsed, "pending:first_frame", None, TINY)
    assert (task.tier, task.seconds, task.kind, ltx.app) == ("fast", 8, "i2v", "fal-ai/ltx-2")
    master = MODELS["fal-ai/kling-video/v2.1/master/text-to-video"]
    assert master.task(master.parse(body(prompt="x")), None, None, TINY).tier == "quality"
    with pytest.raises(NotFound):
        model_of("fal-ai/flux/dev")
    for model_id, data, field in [
            ("fal-ai/kling-video/v2.1/standard/image-to-video", {"prompt": "x"}, "image_url"),
            ("fal-ai/kling-video/v2.1/master/text-to-video", {"prompt": "x", "generate_audio": True},
             "generate_audio"),
            ("fal-ai/ltx-2/text-to-video", {"prompt": "x", "duration": 5}, "duration"),
            ("fal-ai/ltx-2/text-to-video", {"prompt": "x", "loras": []}, "loras")]:
        with pytest.raises(InvalidRequest) as refused:
            MODELS[model_id].parse(body(**data))
        assert refused.value.field == field


def test_fal_errors() -> None:
    bad = fal_error(InvalidRequest("duration", 5, "must be 6, 8 or 10"))
    assert bad.status_code == 422 and json.loads(bad.body)["detail"][0]["loc"] == ["body", "duration"]
    poor = fal_error(InsufficientCredits("poor"))
    assert (poor.status_code, poor.headers["x-fal-error-type"]) == (403, "exhausted_balance")


def test_runpod_inputs_and_errors() -> None:
    assert (tier_of("fast", TINY), tier_of("tiny", TINY)) == ("fast", "standard")
    with pytest.raises(NotFound):
        tier_of("nowhere", TINY)
    run = parse_run(body(input={"prompt": "x", "duration": 10, "image": "https://example.com/a.png"}))
    assert run.task("pending:first_frame", None, "quality", False).seconds == 10
    for data, field in [({"input": {"prompt": "x", "camera": 1}}, "input.camera"),
                        ({"input": {"prompt": "x"}, "policy": {"ttl": 1}}, "policy"),
                        ({"input": {"prompt": "x", "last_image": "https://example.com/b.png"}}, "input.last_image"),
                        ({}, "input")]:
        with pytest.raises(InvalidRequest) as refused:
            parse_run(body(**data))
        assert refused.value.field == field
    limited = runpod_error(RateLimited("slow down", retry_after=3))
    assert (limited.status_code, limited.headers["retry-after"]) == (429, "3")
    assert runpod_error(InsufficientCredits("poor")).status_code == 402
