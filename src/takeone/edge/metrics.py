"""Prometheus metrics at ``GET /metrics``: what an operator graphs and alerts on.

Two sources. What the store knows is read at scrape time, so it is right whichever process
did the work: the queue depth, the running jobs and the worker states (from the workers'
own reports, as ``/healthz`` reads them). What happens at one moment is counted where it
happens, in this process: finished jobs (by outcome), their durations and denoising-step
durations and webhook deliveries (:mod:`takeone.core.telemetry`, fed by the job log and the
webhook sender).

``/metrics`` takes no API key: keep it off the public internet (bind the server to a private
address, or let the reverse proxy refuse ``/metrics`` from outside).

Example::

    install(app)                       # GET /metrics, not in the OpenAPI document
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Iterator
from dataclasses import dataclass, field

from fastapi import FastAPI, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from takeone.core.errors import StoreUnavailable
from takeone.core.jobs import JobStatus, WorkerStatus
from takeone.core.telemetry import (
    BATCH_SIZE,
    JOB_SECONDS,
    JOBS_FINISHED,
    QUEUE_SECONDS,
    STEP_SECONDS,
    WEBHOOK_LATE,
    WEBHOOKS,
)

log = logging.getLogger("takeone.api")

WORKER_STATES = ("starting", "ready", "busy", "cooling", "failed")


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
    for metric in (JOBS_FINISHED, JOB_SECONDS, QUEUE_SECONDS, STEP_SECONDS, BATCH_SIZE, WEBHOOKS, WEBHOOK_LATE):
        registry.register(metric)
    return generate_latest(registry)


async def metrics(request: Request) -> Response:
    return Response(render(await snapshot(request)), media_type=CONTENT_TYPE_LATEST)


def install(app: FastAPI) -> None:
    """``GET /metrics`` (no API key; left out of the OpenAPI document)."""
    app.add_api_route("/metrics", metrics, methods=["GET"], include_in_schema=False)
