"""Prometheus metrics at ``GET /metrics``: what an operator graphs and alerts on.

Two sources. What the store knows is read at scrape time, so it is right whichever process
did the work: the queue depth, the running jobs and the worker states (from the workers'
own reports, as ``/healthz`` reads them). What happens at one moment is counted where it
happens, in this process: finished jobs (by outcome), their durations and denoising-step
durations (observed by :func:`observe_finished`, which the job log calls for every finished
job) and webhook deliveries (:func:`observe_webhook`, from the sender).

``/metrics`` takes no API key: keep it off the public internet (bind the server to a private
address, or let the reverse proxy refuse ``/metrics`` from outside).

Example::

    install(app)                       # GET /metrics, not in the OpenAPI document
    observe_finished(job)              # when a job reaches COMPLETED or FAILED
    observe_webhook("delivered")       # when a webhook attempt is settled
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Iterator
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from takeone.core.errors import StoreUnavailable
from takeone.core.jobs import Job, JobStatus, WorkerStatus

log = logging.getLogger("takeone.api")

OUTCOMES = ("completed", "failed", "cancelled")
WORKER_STATES = ("starting", "ready", "busy", "failed")
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
WEBHOOKS = Counter("takeone_webhook_deliveries", "Webhook attempts, by how they were settled",
                   ["outcome"], registry=None)
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
    steps, seconds = job.metrics.get("steps"), job.metrics.get("generate_seconds")
    if isinstance(steps, int) and steps > 0 and isinstance(seconds, int | float) and seconds >= 0:
        for _ in range(min(steps, 10_000)):
            STEP_SECONDS.observe(seconds / steps)


def observe_webhook(outcome: str) -> None:
    """Count one settled webhook attempt (one of :data:`WEBHOOK_OUTCOMES`)."""
    WEBHOOKS.labels(outcome).inc()


@dataclass(frozen=True)
class StoreSnapshot:
    """What the store said at scrape time (``up`` False: it could not be read)."""

    up: bool
    queued: int = 0
    workers: dict[str, int] = field(default_factory=dict)
    jobs: dict[str, int] = field(default_factory=dict)


class SnapshotCollector(Collector):
    """Gauges from one :class:`StoreSnapshot`."""

    def __init__(self, snapshot: StoreSnapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self.snapshot
        yield GaugeMetricFamily("takeone_store_up", "1 if the store answered this scrape, else 0",
                                value=1 if s.up else 0)
        if not s.up:
            return
        yield GaugeMetricFamily("takeone_queue_depth", "Jobs waiting for a worker", value=s.queued)
        workers = GaugeMetricFamily("takeone_workers", "Live workers by state (busy: running a job)",
                                    labels=["state"])
        for state in sorted(set(WORKER_STATES) | set(s.workers)):
            workers.add_metric([state], s.workers.get(state, 0))
        yield workers
        jobs = GaugeMetricFamily(
            "takeone_jobs", "Jobs the store holds by status, whichever process ran them (finished ones"
            " until --retention removes them)", labels=["status"])
        for status in JobStatus:
            jobs.add_metric([status.value.lower()], s.jobs.get(status.value, 0))
        yield jobs


def worker_state(worker: WorkerStatus) -> str:
    """A worker report's state, with ``busy`` for a ready worker running a job."""
    return "busy" if worker.state == "ready" and worker.job_id else worker.state


async def snapshot(request: Request) -> StoreSnapshot:
    """Read the queue and the live workers' reports from the store."""
    from takeone.edge.health import live_workers

    services = request.app.state.services
    try:
        jobs = await services.store.counts()
        workers = await live_workers(services)
    except StoreUnavailable as exc:
        log.warning("metrics: the store did not answer (%s)", exc.message)
        return StoreSnapshot(up=False)
    return StoreSnapshot(up=True, queued=jobs.get(JobStatus.QUEUED.value, 0), jobs=jobs,
                         workers=dict(Tally(worker_state(w) for w in workers)))


def render(snap: StoreSnapshot) -> bytes:
    """The Prometheus text format of ``snap`` and this process's counters."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SnapshotCollector(snap))
    for metric in (JOBS_FINISHED, JOB_SECONDS, QUEUE_SECONDS, STEP_SECONDS, WEBHOOKS):
        registry.register(metric)
    return generate_latest(registry)


async def metrics(request: Request) -> Response:
    return Response(render(await snapshot(request)), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI) -> None:
    """``GET /metrics`` (no API key; left out of the OpenAPI document)."""
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
