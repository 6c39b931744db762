"""What the playground shows of the OpenAI Videos dialect."""

from takeone.core.jobs import Job
from takeone.edge.dialects.base import JobPlace, default_place
from takeone.edge.dialects.openai.video import public_id

LABEL = "OpenAI Videos"


def place(job: Job) -> JobPlace:
    video = public_id(job.id)
    return JobPlace("POST /v1/videos", video, f"/v1/videos/{video}", default_place(job).endpoint)
