"""One log line per finished job: what an operator greps for first (and its metrics).

Example line::

    job 5f0c... ROUTE standard 5 s: COMPLETED, 0.438 credits, 41.2 s (queued 3.1 s)
    job 5f0c... ROUTE standard 5 s with LoRAs anime@0.8,ink@1: COMPLETED, ...
"""

from __future__ import annotations

import logging

from takeone.core.jobs import Job, JobStatus
from takeone.core.loras import describe
from takeone.core.telemetry import observe_finished

log = logging.getLogger("takeone.jobs")


def log_finished(job: Job) -> None:
    charged = job.price if job.status is JobStatus.COMPLETED else 0.0
    total = (job.finished_at or job.created_at) - job.created_at
    waited = (job.started_at - job.created_at) if job.started_at else total
    outcome = job.status.value if job.error is None else f"{job.status.value} ({job.error})"
    loras = describe(job.task.loras)
    log.info("job %s %s %s %d s%s: %s, %g credits, %.1f s (queued %.1f s)", job.id, job.route,
             job.task.tier, job.task.seconds, f" with LoRAs {loras}" if loras else "", outcome,
             charged, total, waited,
             extra={"loras": loras, "job": job.id, "route": job.route, "tier": job.task.tier,
                    "seconds": job.task.seconds, "status": job.status.value, "error": job.error,
                    "credits": charged, "total_s": round(total, 3), "queued_s": round(waited, 3),
                    "attempts": job.attempts})
    observe_finished(job)
