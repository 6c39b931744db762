"""Request bodies of the fal model ids served here, as fal's model pages show them.

Kling (``fal-ai/kling-video/...``): ``prompt`` (required), ``image_url`` (image to video,
required there), ``tail_image_url`` (a last frame, pro and master), ``duration`` "5" / "10",
``negative_prompt`` (default "blur, distort, and low quality"), ``cfg_scale`` 0 to 1,
``aspect_ratio`` (text to video: 16:9, 9:16, 1:1), ``generate_audio`` (v2.6 only, default
true). ``standard`` runs the fast tier, ``pro`` the standard tier, ``master`` the quality tier.

LTX-2 (``fal-ai/ltx-2/...``): ``prompt``, ``image_url`` (image to video), ``duration`` 6, 8 or
10 (delivered exactly where the profile serves that length, else the nearest it makes), ``resolution`` and ``fps``
(taken; the clip comes at the tier's own size and rate, which the answer's file shows),
``aspect_ratio`` 16:9 or 9:16, ``generate_audio`` (default true). ``/fast`` runs the fast
tier, the others the standard tier.

Any other field is refused (422 naming it), never ignored.

Example::

    model = MODELS["fal-ai/ltx-2/text-to-video/fast"]
    task = model.task(model.parse(b'{"prompt": "a fox"}'), None, None, profile)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from takeone.core.errors import MISSING, InvalidRequest, NotFound
from takeone.core.task import Tier, VideoTask, kind_for
from takeone.edge.dialects.bodies import first_invalid, json_object, renamed
from takeone.models.recipe import Profile

MAX_PROMPT = 2500
Url = Annotated[str, Field(min_length=1, max_length=28 * 1024 * 1024, strict=True,
                           description="An http(s) URL or a data URI.")]
Prompt = Annotated[str, Field(min_length=1, max_length=MAX_PROMPT, strict=True)]


class FalBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: Prompt
    image_url: Url | None = None
    generate_audio: bool | None = None


class KlingInput(FalBody):
    """Kling on fal (v2.1 standard / pro / master, v2.6 pro)."""

    duration: Literal["5", "10"] = "5"
    negative_prompt: Annotated[str, Field(max_length=MAX_PROMPT, strict=True)] = "blur, distort, and low quality"
    cfg_scale: Annotated[float, Field(ge=0, le=1)] = 0.5
    aspect_ratio: Literal["16:9", "9:16", "1:1"] = "16:9"
    tail_image_url: Url | None = None


class LtxInput(FalBody):
    """LTX-2 on fal (text or image to video, fast or not)."""

    duration: Literal[6, 8, 10] = 6
    resolution: Literal["1080p", "1440p", "2160p"] = "1080p"
    aspect_ratio: Literal["16:9", "9:16"] = "16:9"
    fps: Literal[25, 50] = 25


@dataclass(frozen=True)
class FalModel:
    id: str
    body: type[FalBody]
    tier: Tier
    image: bool  # image to video: image_url required
    audio: bool | None  # None: generate_audio (default true); False: no sound

    @property
    def app(self) -> str:
        """``owner/alias``: where its requests live (``.../requests/{id}``)."""
        return "/".join(self.id.split("/")[:2])

    def parse(self, raw: bytes) -> FalBody:
        data = json_object(raw)
        try:
            body = self.body.model_validate(data)
        except ValidationError as exc:
            raise first_invalid(exc, "is not a field of this model") from None
        if self.image and body.image_url is None:
            raise InvalidRequest("image_url", MISSING, f"is required by {self.id}")
        if not self.image and body.image_url is not None:
            raise InvalidRequest("image_url", body.image_url, f"is not taken by {self.id} (text to video)")
        if self.audio is False and body.generate_audio is not None:
            raise InvalidRequest("generate_audio", body.generate_audio, f"is not taken by {self.id}")
        if isinstance(body, KlingInput) and body.tail_image_url is not None and self.tier == "fast":
            raise InvalidRequest("tail_image_url", body.tail_image_url, "needs the pro or master endpoint")
        return body

    def images(self, body: FalBody) -> dict[str, tuple[str, str]]:
        found = {"first_frame": ("image_url", body.image_url),
                 "last_frame": ("tail_image_url", getattr(body, "tail_image_url", None))}
        return {role: (name, value) for role, (name, value) in found.items() if value is not None}

    def task(self, body: FalBody, first_frame: str | None, last_frame: str | None,
             profile: Profile) -> VideoTask:
        audio = False if self.audio is False else (
            body.generate_audio if body.generate_audio is not None else profile.has_audio)
        if isinstance(body, KlingInput):
            seconds, negative, guidance = int(body.duration), body.negative_prompt, body.cfg_scale
        else:
            assert isinstance(body, LtxInput)
            seconds = min(profile.durations(), key=lambda d: (abs(d - body.duration), -d))
            negative, guidance = "", 0.5
        try:
            return VideoTask(kind=kind_for(first_frame, last_frame), tier=self.tier, seconds=seconds,
                             aspect_ratio=str(getattr(body, "aspect_ratio", "16:9")),
                             audio=audio, prompt=body.prompt, negative_prompt=negative, guidance=guidance,
                             first_frame=first_frame, last_frame=last_frame)
        except InvalidRequest as exc:
            raise rename(exc) from None


def _kling(version: str, level: str, kind: str, tier: Tier, audio: bool | None) -> FalModel:
    return FalModel(f"fal-ai/kling-video/{version}/{level}/{kind}", KlingInput, tier,
                    kind == "image-to-video", audio)


def _ltx(kind: str, fast: bool) -> FalModel:
    return FalModel(f"fal-ai/ltx-2/{kind}{'/fast' if fast else ''}", LtxInput,
                    "fast" if fast else "standard", kind == "image-to-video", None)


_ALL = [
    _kling("v2.1", "standard", "image-to-video", "fast", False),
    _kling("v2.1", "pro", "image-to-video", "standard", False),
    _kling("v2.1", "master", "image-to-video", "quality", False),
    _kling("v2.1", "master", "text-to-video", "quality", False),
    _kling("v2.6", "pro", "image-to-video", "standard", None),
    _kling("v2.6", "pro", "text-to-video", "standard", None),
    *[_ltx(kind, fast) for kind in ("text-to-video", "image-to-video") for fast in (False, True)],
]
MODELS: Mapping[str, FalModel] = {m.id: m for m in _ALL}
APPS = frozenset(m.app for m in _ALL)


def model_of(model_id: str) -> FalModel:
    if model_id not in MODELS:
        raise NotFound(f"Application {model_id!r} not found (served here: {', '.join(MODELS)})")
    return MODELS[model_id]


def fingerprint(model: FalModel, body: FalBody) -> str:
    return hashlib.sha256(json.dumps([model.id, body.model_dump()], sort_keys=True).encode()).hexdigest()


FIELD_NAMES = {"tier": "model", "seconds": "duration", "guidance": "cfg_scale", "audio": "generate_audio",
               "size": "aspect_ratio", "first_frame": "image_url", "last_frame": "tail_image_url"}


def rename(exc: InvalidRequest) -> InvalidRequest:
    """A core error in fal's field names."""
    return renamed(exc, FIELD_NAMES)


SCHEMAS: tuple[type[BaseModel], ...] = (KlingInput, LtxInput)
