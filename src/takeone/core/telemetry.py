"""The process's own counters: finished jobs (by outcome), their durations, denoising steps
and webhook deliveries, counted where they happen (the job log, the webhook sender) and
exposed by ``GET /metrics`` (:mod:`takeone.edge.metrics`) beside what the store knows.

Example::

    observe_finished(job)              # when a job reaches COMPLETED or FAILED
    observe_webhook("delivered")       # when a webhook attempt is settled
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

from takeone.core.jobs import Job, JobStatus

OUTCOMES = ("completed", "failed", "cancelled")
WEBHOOK_OUTCOMES = ("delivered", "retrying", "failed", "dropped", "skipped")

JOBS_FINISHED = Counter("takeone_jobs_finished", "Jobs that reached a final state, by outcome",
                        ["outcome"], registry=None)
JOB_SECONDS = Histogram("takeone_job_duration_seconds",
                        "Seconds from submit to the final state, by outcome", ["outcome"], registry=None,
                        buckets=(1, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200))
QUEUE_SECONDS = Histogram("takeone_job_queue_seconds", "Seconds a job waited before a worker took it",
                          registry=None, buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600))
STEP_SECONDS = Histogram("takeone_denoising_step_seconds",
                         "Seconds per denoising step (each completed job's steps, at its mean step time)",
                         registry=None,
                         buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120))
BATCH_SIZE = Histogram("takeone_batch_size", "How many jobs shared the denoising run of each completed job",
                       registry=None, buckets=(1, 2, 3, 4, 6, 8, 12, 16))
WEBHOOKS = Counter("takeone_webhook_deliveries", "Webhook attempts, by how they were settled",
                   ["outcome"], registry=None)
WEBHOOK_LATE = Gauge("takeone_webhook_late_seconds",
                     "How long due webhook deliveries have waited for a free sending slot in this"
                     " process (0: none waiting)", registry=None)
for _outcome in OUTCOMES:  # every series exists from the start, at 0
    JOBS_FINISHED.labels(_outcome)
for _outcome in WEBHOOK_OUTCOMES:
    WEBHOOKS.labels(_outcome)


def outcome_of(job: Job) -> str:
    """``completed``, ``cancelled`` or ``failed`` for a finished job."""
    if job.status is JobStatus.COMPLETED:
        return "completed"
    if (job.error or "").startswith("cancelled"):
        return "cancelled"
    return "failed"


def observe_finished(job: Job) -> None:
    """Count a finished job and observe its durations (its steps too, if it completed)."""
    outcome = outcome_of(job)
    JOBS_FINISHED.labels(outcome).inc()
    if job.finished_at is not None:
        JOB_SECONDS.labels(outcome).observe(max(job.finished_at - job.created_at, 0.0))
    if job.started_at is not None:
        QUEUE_SECONDS.observe(max(job.started_at - job.created_at, 0.0))
    if job.status is JobStatus.COMPLETED:
        size = job.metrics.get("batch_size", 1)
        BATCH_SIZE.observe(size if isinstance(size, int) and size > 0 else 1)
    steps, seconds = job.metrics.get("steps"), job.metrics.get("generate_seconds")
    if isinstance(steps, int) and steps > 0 and isinstance(seconds, int | float) and seconds >= 0:
        for _ in range(min(steps, 10_000)):
            STEP_SECONDS.observe(seconds / steps)


def observe_webhook(outcome: str) -> None:
    """Count one settled webhook attempt (one of :data:`WEBHOOK_OUTCOMES`)."""
    WEBHOOKS.labels(outcome).inc()


_webhook_late = [0.0]


def set_webhook_late(seconds: float) -> None:
    """How long due deliveries have waited for a free sending slot (0: none are waiting)."""
    _webhook_late[0] = seconds
    WEBHOOK_LATE.set(seconds)


def webhook_late_seconds() -> float:
    return _webhook_late[0]
