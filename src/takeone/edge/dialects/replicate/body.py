"""``POST /v1/predictions`` and ``POST /v1/models/{owner}/{name}/predictions`` bodies.

The body is ``{"input": {...}, "version", "webhook", "webhook_events_filter"}``. The model
(from the path, or ``version`` as ``owner/name``, ``owner/name:<version id>`` or a version
id alone) picks the tier, as Replicate's Kling pages do:

- ``kwaivgi/kling-v2.1`` (image to video: ``start_image`` required) and
  ``kwaivgi/kling-v2.6``: ``mode`` ``standard`` runs the fast tier, ``pro`` the standard tier;
  ``kwaivgi/kling-v2.1-master`` runs the quality tier; ``kling-v2.6`` makes sound when
  ``generate_audio`` is true (its default);
- ``takeone/<profile>``: the served profile's standard tier (sound as the profile makes it).

Inputs: ``prompt`` (required), ``negative_prompt``, ``start_image``, ``end_image`` (an
http(s) URL or a data URI: the client's ``file_encoding_strategy="base64"``), ``duration``
(5 or 10), ``aspect_ratio`` (16:9, 9:16, 1:1; image to video follows the image),
``mode``, ``generate_audio``, ``cfg_scale`` (0 to 1), ``seed``. Any other input is refused,
never ignored (422 naming it).

Example::

    create = parse_create(b'{"input": {"prompt": "a fox"}}', "kwaivgi/kling-v2.6", profile)
    create.task(None, None).tier    # "fast"
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from takeone.core.errors import MISSING, InvalidRequest
from takeone.core.task import Tier, VideoTask, kind_for
from takeone.edge.dialects.bodies import first_invalid, json_object, renamed
from takeone.models.recipe import Profile

MAX_PROMPT = 2500
MAX_IMAGE = 28 * 1024 * 1024
EVENTS = ("start", "output", "logs", "completed")
KLING_MODES: Mapping[str, Tier] = {"standard": "fast", "pro": "standard"}
OWNER = "takeone"


class PredictionInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[str, Field(min_length=1, max_length=MAX_PROMPT, strict=True)]
    negative_prompt: Annotated[str, Field(max_length=MAX_PROMPT, strict=True)] = ""
    start_image: Annotated[str, Field(min_length=1, max_length=MAX_IMAGE, strict=True)] | None = Field(
        None, description="The first frame: an http(s) URL or a data URI.")
    end_image: Annotated[str, Field(min_length=1, max_length=MAX_IMAGE, strict=True)] | None = Field(
        None, description="The last frame (with start_image).")
    duration: Literal[5, 10] = 5
    aspect_ratio: Literal["16:9", "9:16", "1:1"] = "16:9"
    mode: Literal["standard", "pro"] = Field("standard", description="Kling models: standard or pro.")
    generate_audio: bool | None = Field(None, description="kling-v2.6 and takeone/<profile>: sound.")
    cfg_scale: Annotated[float, Field(ge=0, le=1)] = 0.5
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None


class PredictionRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: PredictionInput
    version: str | None = Field(None, description="owner/name, owner/name:version or a version id"
                                " (POST /v1/predictions only).")
    webhook: Annotated[str, Field(max_length=2048, strict=True)] | None = Field(
        None, description="Receives the prediction object on the chosen events (POST, JSON, signed).")
    webhook_events_filter: list[Literal["start", "output", "logs", "completed"]] | None = Field(
        None, description="Which events reach the webhook (default: all four).")
    stream: bool | None = Field(None, description="Not served: a video is one file (a 422 if true).")


@dataclass(frozen=True)
class Model:
    name: str
    tier: Tier | None  # None: chosen by the input's mode
    needs_image: bool = False
    audio: bool | None = None  # None: generate_audio (default: the model's sound)

    @property
    def version(self) -> str:
        return hashlib.sha256(self.name.encode()).hexdigest()


def models(profile: Profile) -> dict[str, Model]:
    found = [Model("kwaivgi/kling-v2.1", None, needs_image=True, audio=False),
             Model("kwaivgi/kling-v2.1-master", "quality", audio=False),
             Model("kwaivgi/kling-v2.6", None),
             Model(f"{OWNER}/{profile.name}", "standard")]
    return {m.name: m for m in found}


def resolve(ref: str, profile: Profile) -> Model:
    """The model a path's ``owner/name`` or a body's ``version`` names."""
    known = models(profile)
    name, _, version = ref.partition(":")
    if name in known and (not version or version == known[name].version):
        return known[name]
    for model in known.values():
        if ref == model.version:
            return model
    raise InvalidRequest("version", ref, f"is not a model served here (models: {', '.join(known)})")


@dataclass(frozen=True)
class CreatePrediction:
    model: Model
    input: PredictionInput
    webhook: str | None
    events: tuple[str, ...]
    raw: bytes

    def task(self, first_frame: str | None, last_frame: str | None, profile: Profile) -> VideoTask:
        inp = self.input
        tier = self.model.tier or KLING_MODES[inp.mode]
        audio = self.model.audio
        if audio is None:
            audio = inp.generate_audio if inp.generate_audio is not None else profile.has_audio
        try:
            return VideoTask(kind=kind_for(first_frame, last_frame), tier=tier, seconds=inp.duration,
                             aspect_ratio=inp.aspect_ratio, audio=audio, seed=inp.seed,
                             prompt=inp.prompt, negative_prompt=inp.negative_prompt,
                             guidance=inp.cfg_scale, first_frame=first_frame, last_frame=last_frame)
        except InvalidRequest as exc:
            raise rename(exc) from None

    def images(self) -> dict[str, tuple[str, str]]:
        found = {"first_frame": ("start_image", self.input.start_image),
                 "last_frame": ("end_image", self.input.end_image)}
        return {role: (name, value) for role, (name, value) in found.items() if value is not None}

    def echo(self) -> dict[str, Any]:
        """The input as the prediction shows it (an image sent inline is not repeated)."""
        shown = self.input.model_dump(exclude_none=True)
        for name in ("start_image", "end_image"):
            if str(shown.get(name, "")).startswith("data:"):
                shown[name] = "data:... (inline image)"
        return shown

    def fingerprint(self) -> str:
        return hashlib.sha256(self.model.name.encode() + b"\0" + self.raw).hexdigest()


def parse_create(raw: bytes, model_ref: str | None, profile: Profile) -> CreatePrediction:
    data = json_object(raw)
    try:
        body = PredictionRequest.model_validate(data)
    except ValidationError as exc:
        raise first_invalid(exc, "is not an input of this model", root="input", strip="input") from None
    if model_ref is None and body.version is None:
        raise InvalidRequest("version", MISSING, "is required (or POST /v1/models/{owner}/{name}/predictions)")
    if model_ref is not None and body.version is not None:
        raise InvalidRequest("version", body.version, "is not taken with a model in the path")
    model = resolve(model_ref or body.version or "", profile)
    if body.stream:
        raise InvalidRequest("stream", True, "streamed output is not served: a video is one file")
    if model.needs_image and body.input.start_image is None:
        raise InvalidRequest("start_image", MISSING, f"is required by {model.name} (image to video)")
    if body.input.end_image is not None and body.input.start_image is None:
        raise InvalidRequest("end_image", "<image>", "needs start_image too")
    events = tuple(body.webhook_events_filter) if body.webhook_events_filter is not None else EVENTS
    return CreatePrediction(model, body.input, body.webhook, events, raw)


FIELD_NAMES = {"tier": "mode", "seconds": "duration", "guidance": "cfg_scale", "audio": "generate_audio",
               "size": "aspect_ratio", "first_frame": "start_image", "last_frame": "end_image"}


def rename(exc: InvalidRequest) -> InvalidRequest:
    """A core error in Replicate's input names."""
    return renamed(exc, FIELD_NAMES)
