"""What the playground shows of Kling's own API dialect."""

from takeone.core.jobs import Job
from takeone.edge.dialects.base import JobPlace, default_place

LABEL = "Kling"


def place(job: Job) -> JobPlace:
    """The task kind is the route: ``POST /v1/videos/text2video`` or ``.../image2video``."""
    return JobPlace(f"POST /v1/videos/{job.route}", job.id, f"/v1/videos/{job.route}/{job.id}",
                    default_place(job).endpoint)
