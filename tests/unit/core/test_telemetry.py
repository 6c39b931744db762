"""The process's own counters: a finished job is counted once under its outcome, with its
durations, batch size and steps; odd metrics do not break the count."""

from __future__ import annotations

import pytest
from prometheus_client import Counter, Gauge, Histogram

from takeone.core import telemetry
from takeone.core.jobs import Job, JobStatus
from takeone.core.task import VideoTask


def sample(metric: Counter | Histogram | Gauge, name: str, **labels: str) -> float:
    """One sample's value, read the way /metrics reads it."""
    for family in metric.collect():
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def job(status: JobStatus, error: str | None = None, **metrics: object) -> Job:
    return Job(id="j", key_id="k", task=VideoTask(kind="t2v"), price=1, status=status, created_at=100.0,
               started_at=102.0, finished_at=130.0, error=error, metrics=dict(metrics), dialect="segmind")


@pytest.mark.parametrize("status,error,outcome", [
    (JobStatus.COMPLETED, None, "completed"),
    (JobStatus.FAILED, "cancelled by the client", "cancelled"),
    (JobStatus.FAILED, "the model raised", "failed"),
    (JobStatus.FAILED, None, "failed"),
])
def test_the_outcome_of_a_finished_job(status: JobStatus, error: str | None, outcome: str) -> None:
    assert telemetry.outcome_of(job(status, error)) == outcome


def test_every_outcome_series_exists_from_the_start() -> None:
    names = {s.labels["outcome"] for f in telemetry.JOBS_FINISHED.collect() for s in f.samples
             if s.name == "takeone_jobs_finished_total"}
    assert names >= set(telemetry.OUTCOMES)


def test_a_completed_job_is_counted_with_its_durations_batch_and_steps() -> None:
    before = {
        "done": sample(telemetry.JOBS_FINISHED, "takeone_jobs_finished_total", outcome="completed"),
        "job": sample(telemetry.JOB_SECONDS, "takeone_job_duration_seconds_sum", outcome="completed"),
        "queue": sample(telemetry.QUEUE_SECONDS, "takeone_job_queue_seconds_sum"),
        "steps": sample(telemetry.STEP_SECONDS, "takeone_denoising_step_seconds_count"),
        "step_s": sample(telemetry.STEP_SECONDS, "takeone_denoising_step_seconds_sum"),
        "batch4": sample(telemetry.BATCH_SIZE, "takeone_batch_size_bucket", le="4.0"),
        "batch3": sample(telemetry.BATCH_SIZE, "takeone_batch_size_bucket", le="3.0"),
    }
    telemetry.observe_finished(job(JobStatus.COMPLETED, steps=8, generate_seconds=4.0, batch_size=4))
    assert sample(telemetry.JOBS_FINISHED, "takeone_jobs_finished_total", outcome="completed") == before["done"] + 1
    assert sample(telemetry.JOB_SECONDS, "takeone_job_duration_seconds_sum",
                  outcome="completed") == pytest.approx(before["job"] + 30)
    assert sample(telemetry.QUEUE_SECONDS, "takeone_job_queue_seconds_sum") == pytest.approx(before["queue"] + 2)
    assert sample(telemetry.STEP_SECONDS, "takeone_denoising_step_seconds_count") == before["steps"] + 8
    assert sample(telemetry.STEP_SECONDS, "takeone_denoising_step_seconds_sum") == pytest.approx(before["step_s"] + 4)
    assert sample(telemetry.BATCH_SIZE, "takeone_batch_size_bucket", le="4.0") == before["batch4"] + 1
    assert sample(telemetry.BATCH_SIZE, "takeone_batch_size_bucket", le="3.0") == before["batch3"]


@pytest.mark.parametrize("metrics", [{"steps": "8", "generate_seconds": 4.0}, {"steps": 8, "generate_seconds": -1},
                                     {"steps": 0, "generate_seconds": 1.0}, {"batch_size": 0}, {"batch_size": "4"}])
def test_odd_metrics_are_counted_as_one_job_of_one(metrics: dict[str, object]) -> None:
    steps = sample(telemetry.STEP_SECONDS, "takeone_denoising_step_seconds_count")
    ones = sample(telemetry.BATCH_SIZE, "takeone_batch_size_bucket", le="1.0")
    telemetry.observe_finished(job(JobStatus.COMPLETED, **metrics))
    assert sample(telemetry.STEP_SECONDS, "takeone_denoising_step_seconds_count") == steps
    assert sample(telemetry.BATCH_SIZE, "takeone_batch_size_bucket", le="1.0") == ones + 1


def test_a_failed_job_adds_no_batch_size() -> None:
    count = sample(telemetry.BATCH_SIZE, "takeone_batch_size_count")
    failed = sample(telemetry.JOBS_FINISHED, "takeone_jobs_finished_total", outcome="failed")
    telemetry.observe_finished(job(JobStatus.FAILED, "boom"))
    assert sample(telemetry.BATCH_SIZE, "takeone_batch_size_count") == count
    assert sample(telemetry.JOBS_FINISHED, "takeone_jobs_finished_total", outcome="failed") == failed + 1


def test_webhooks_and_their_lateness() -> None:
    before = sample(telemetry.WEBHOOKS, "takeone_webhook_deliveries_total", outcome="retrying")
    telemetry.observe_webhook("retrying")
    assert sample(telemetry.WEBHOOKS, "takeone_webhook_deliveries_total", outcome="retrying") == before + 1
    try:
        telemetry.set_webhook_late(2.5)
        assert telemetry.webhook_late_seconds() == 2.5
        assert sample(telemetry.WEBHOOK_LATE, "takeone_webhook_late_seconds") == 2.5
    finally:
        telemetry.set_webhook_late(0.0)
