"""What the playground shows of the RunPod dialect."""

from takeone.core.jobs import Job
from takeone.edge.dialects.base import JobPlace, default_place

LABEL = "RunPod"


def place(job: Job) -> JobPlace:
    endpoint = job.meta.get("endpoint", "")
    return JobPlace(f"POST /runpod/v2/{endpoint}/run", job.id,
                    f"/runpod/v2/{endpoint}/status/{job.id}", default_place(job).endpoint)
