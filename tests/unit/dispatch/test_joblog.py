"""The one line per finished job: what was charged (only a delivered video), how long it took
and waited, its LoRAs and its error, as text and as structured fields."""

from __future__ import annotations

import logging

import pytest

from takeone.core.jobs import Job, JobStatus
from takeone.core.loras import LoraUse
from takeone.core.task import VideoTask
from takeone.dispatch.joblog import log_finished


def finished(status: JobStatus, **fields: object) -> Job:
    base: dict[str, object] = {"id": "job_1", "key_id": "k", "price": 0.438, "status": status, "created_at": 100.0,
                               "started_at": 103.1, "finished_at": 141.2, "route": "kling-2.6",
                               "task": VideoTask(kind="t2v", tier="quality", seconds=10), "dialect": "segmind"}
    return Job(**{**base, **fields})  # type: ignore[arg-type]


def line(caplog: pytest.LogCaptureFixture, job: Job) -> logging.LogRecord:
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="takeone.jobs"):
        log_finished(job)
    [record] = [r for r in caplog.records if r.name == "takeone.jobs"]
    return record


def test_a_delivered_video_is_charged_its_price(caplog: pytest.LogCaptureFixture) -> None:
    record = line(caplog, finished(JobStatus.COMPLETED))
    assert record.getMessage() == "job job_1 kling-2.6 quality 10 s: COMPLETED, 0.438 credits, 41.2 s (queued 3.1 s)"
    assert record.credits == 0.438 and record.total_s == 41.2 and record.queued_s == 3.1  # type: ignore[attr-defined]


def test_a_failed_job_is_charged_nothing_and_says_why(caplog: pytest.LogCaptureFixture) -> None:
    record = line(caplog, finished(JobStatus.FAILED, error="cancelled by the client", started_at=None,
                                   task=VideoTask(kind="t2v", loras=(LoraUse("anime", 0.8), LoraUse("ink")))))
    assert record.getMessage() == ("job job_1 kling-2.6 standard 5 s with LoRAs anime@0.8,ink@1: "
                                   "FAILED (cancelled by the client), 0 credits, 41.2 s (queued 41.2 s)")
    assert record.credits == 0.0 and record.error == "cancelled by the client"  # type: ignore[attr-defined]
    assert record.loras == "anime@0.8,ink@1"  # type: ignore[attr-defined]


def test_a_job_without_a_finish_time_took_no_time(caplog: pytest.LogCaptureFixture) -> None:
    record = line(caplog, finished(JobStatus.FAILED, error="lost", finished_at=None, started_at=None))
    assert record.getMessage().endswith("0 credits, 0.0 s (queued 0.0 s)")
