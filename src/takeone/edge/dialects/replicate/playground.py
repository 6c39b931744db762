"""What the playground shows of the Replicate dialect: a prediction's place, and which model
(with which fixed inputs) makes a Segmind form's video, for the page's ``replicate`` snippet."""

from typing import Any

from takeone.core.jobs import Job
from takeone.edge.dialects.base import JobPlace, default_place
from takeone.edge.dialects.hosted import short_id

LABEL = "Replicate"
TIERS = ("fast", "standard", "quality")


def place(job: Job) -> JobPlace:
    prediction = short_id(job.id)
    return JobPlace("POST /v1/predictions", prediction, f"/v1/predictions/{prediction}",
                    default_place(job).endpoint)


def _v21(tier: str) -> dict[str, Any]:
    if tier == "quality":
        return {"model": "kwaivgi/kling-v2.1-master", "input": {}, "audio": False}
    return {"model": "kwaivgi/kling-v2.1", "audio": False,
            "input": {"mode": "standard" if tier == "fast" else "pro"}}


def page_data() -> dict[str, Any]:
    """``{"snippet": ...}``: the image inputs by role, and for each Segmind slug (``default``
    for the others) and tier the model, the inputs it always gets, and whether it takes
    ``generate_audio``."""
    return {"snippet": {
        "images": {"first_frame": "start_image", "last_frame": "end_image"},
        "models": {"kling-2.1": {tier: _v21(tier) for tier in TIERS}},
        "default": {tier: {"model": "kwaivgi/kling-v2.6", "input": {"mode": "pro"}, "audio": True}
                    for tier in TIERS}}}
