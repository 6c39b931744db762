"""What the playground shows of the fal queue dialect: a request's place, and which model
makes a Segmind form's video, for the page's ``fal_client`` snippet."""

from typing import Any

from takeone.core.jobs import Job
from takeone.edge.dialects.base import JobPlace, default_place

LABEL = "fal queue"
LEVEL_OF_TIER = {"fast": "standard", "standard": "pro", "quality": "master"}
KINDS = ("text-to-video", "image-to-video")


def place(job: Job) -> JobPlace:
    meta = job.meta
    return JobPlace(f"POST /fal/{meta.get('model', '')}", job.id,
                    f"/fal/{meta.get('app', '')}/requests/{job.id}/status",
                    default_place(job).endpoint)


def _models(version: str, fixed_level: str | None, audio: bool) -> dict[str, Any]:
    return {tier: {**{kind: f"fal-ai/kling-video/{version}/{fixed_level or level}/{kind}"
                      for kind in KINDS}, "audio": audio}
            for tier, level in LEVEL_OF_TIER.items()}


def page_data() -> dict[str, Any]:
    """``{"snippet": ...}``: the image inputs by role, the form fields it has none for, and for
    each Segmind slug (``default`` for the others) and tier the model id by kind of video and
    whether it takes ``generate_audio``."""
    return {"snippet": {
        "who": "fal's Kling",
        "images": {"first_frame": "image_url", "last_frame": "tail_image_url"},
        "dropped": ["seed"],
        "models": {"kling-2.6": _models("v2.6", "pro", True)},
        "default": _models("v2.1", None, False)}}
