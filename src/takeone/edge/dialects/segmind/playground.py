"""What the playground shows of the Segmind dialect: a job's place, and each form's image
fields by role and whether it makes sound (the other clients' snippets map from them)."""

from typing import Any

from takeone.core.jobs import Job
from takeone.edge.dialects.base import JobPlace
from takeone.edge.dialects.segmind.registry import ENDPOINTS

LABEL = "Segmind"


def place(job: Job) -> JobPlace:
    version = "v1" if job.blocking else "v2"
    return JobPlace(f"POST /{version}/{job.route}", job.id, f"/v2/requests/{job.id}/status",
                    job.route)


def page_data() -> dict[str, Any]:
    """``{"forms": {slug: {"images": {role: field}, "audio": bool}}}``."""
    return {"forms": {slug: {"images": {role: name for name, role in spec.roles().items()},
                             "audio": spec.audio_field is not None}
                      for slug, spec in ENDPOINTS.items()}}
