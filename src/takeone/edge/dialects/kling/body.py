"""Bodies of ``POST /v1/videos/text2video`` and ``/image2video``, and their neutral tasks.

``model_name`` picks the tier: ``kling-v2-1`` (image to video only) and ``kling-v2-6`` run
``std`` as the fast tier and ``pro`` as the standard tier; ``kling-v2-1-master`` always runs
the quality tier. ``sound`` (``kling-v2-6`` only) asks for an audio track. Image to video
follows the first image's aspect ratio (the nearest of 16:9, 9:16, 1:1), as Kling does;
``image_tail`` adds a last frame. ``camera_control``, ``static_mask`` and ``dynamic_masks``
are refused with a 400 that says why (the open models take no camera paths or motion
brushes), never ignored; so is any field Kling's API does not have.

Example::

    body = parse(Text2VideoBody, b'{"prompt": "a fox", "model_name": "kling-v2-6"}')
    task = to_task(body, first_frame=None, last_frame=None)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from takeone.core.errors import MISSING, InvalidRequest
from takeone.core.task import Tier, VideoTask, kind_for
from takeone.edge.dialects.bodies import json_object
from takeone.edge.dialects.unknown_fields import unknown_fields

MAX_PROMPT = 2500
MAX_IMAGE = 28 * 1024 * 1024  # base64 of a 20 MiB image
Prompt = Annotated[str, Field(max_length=MAX_PROMPT, strict=True)]
Image = Annotated[str, Field(min_length=1, max_length=MAX_IMAGE, strict=True,
                             description="An http(s) URL or raw base64 (jpg/png).")]
ModelName = Literal["kling-v2-1", "kling-v2-1-master", "kling-v2-6"]
UNSERVED = ("the open-weight models behind this server take no camera paths or motion masks;"
            " describe the camera movement in the prompt instead")
TIERS: Mapping[str, Tier] = {"std": "fast", "pro": "standard"}


class KlingBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model_name: ModelName = Field("kling-v2-6", description="kling-v2-1 (image to video),"
                                  " kling-v2-1-master (quality tier) or kling-v2-6 (audio).")
    negative_prompt: Prompt = ""
    cfg_scale: Annotated[float, Field(ge=0, le=1, strict=True)] = 0.5
    mode: Literal["std", "pro"] = "std"
    duration: Literal["5", "10"] = "5"
    sound: Literal["on", "off"] = Field("off", description="kling-v2-6 only: an audio track.")
    camera_control: dict[str, Any] | None = Field(None, description="Not served (a 400).")
    callback_url: Annotated[str, Field(max_length=2048, strict=True)] | None = Field(
        None, description="Receives the task object on each status change (POST, JSON).")
    external_task_id: Annotated[str, Field(min_length=1, max_length=128, strict=True)] | None = Field(
        None, description="Your own id for the task, unique per key.")


class Text2VideoBody(KlingBody):
    prompt: Annotated[Prompt, Field(min_length=1)]
    aspect_ratio: Literal["16:9", "9:16", "1:1"] = "16:9"


class Image2VideoBody(KlingBody):
    prompt: Prompt = ""
    image: Image | None = None
    image_tail: Image | None = None
    static_mask: str | None = Field(None, description="Not served (a 400).")
    dynamic_masks: list[Any] | None = Field(None, description="Not served (a 400).")


B = TypeVar("B", bound=KlingBody)


def parse(model: type[B], raw: bytes) -> B:
    data = json_object(raw)
    try:
        body = model.model_validate(data)
    except ValidationError as exc:
        raise _invalid(exc, data) from None
    _refuse_unserved(body)
    return body


def _invalid(exc: ValidationError, data: dict[str, Any]) -> InvalidRequest:
    unknown = [str(e["loc"][0]) for e in exc.errors() if e["type"] == "extra_forbidden"]
    if unknown:
        return unknown_fields(unknown, data)
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "body"
    if first["type"] == "missing":
        return InvalidRequest(field, MISSING, "is required")
    return InvalidRequest(field, first.get("input"), first["msg"])


def _refuse_unserved(body: KlingBody) -> None:
    names = ["camera_control", "static_mask", "dynamic_masks"]
    for name in names:
        if getattr(body, name, None) is not None:
            raise InvalidRequest(name, getattr(body, name), f"is not supported: {UNSERVED}")
    if body.sound == "on" and body.model_name != "kling-v2-6":
        raise InvalidRequest("sound", "on", f"needs model_name kling-v2-6 (got {body.model_name})")


def tier_of(body: KlingBody) -> Tier:
    return "quality" if body.model_name == "kling-v2-1-master" else TIERS[body.mode]


def to_task(body: KlingBody, first_frame: str | None, last_frame: str | None) -> VideoTask:
    """The neutral task; image to video's aspect ratio is set later from the first image."""
    if isinstance(body, Text2VideoBody) and body.model_name == "kling-v2-1":
        raise InvalidRequest("model_name", body.model_name, "serves image2video only; use"
                             " kling-v2-1-master or kling-v2-6 for text2video")
    if isinstance(body, Image2VideoBody) and first_frame is None:
        raise InvalidRequest("image", MISSING, "is required (a last frame alone is not served)")
    aspect = body.aspect_ratio if isinstance(body, Text2VideoBody) else "16:9"
    try:
        return VideoTask(kind=kind_for(first_frame, last_frame), tier=tier_of(body),
                         seconds=int(body.duration), aspect_ratio=aspect, audio=body.sound == "on",
                         prompt=getattr(body, "prompt", ""), negative_prompt=body.negative_prompt,
                         guidance=body.cfg_scale, first_frame=first_frame, last_frame=last_frame)
    except InvalidRequest as exc:
        raise rename(exc) from None


def rename(exc: InvalidRequest) -> InvalidRequest:
    """A core error in Kling's field names."""
    names = {"tier": "model_name", "seconds": "duration", "guidance": "cfg_scale", "audio": "sound",
             "size": "aspect_ratio", "first_frame": "image", "last_frame": "image_tail"}
    return type(exc)(names.get(exc.field, exc.field), exc.value, exc.reason)


def fingerprint(body: KlingBody) -> str:
    return hashlib.sha256(json.dumps(body.model_dump(), sort_keys=True).encode()).hexdigest()
