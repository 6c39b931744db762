"""``POST /v2/{endpoint_id}/run`` and ``/runsync`` bodies: ``{"input": {...}, "webhook"}``.

A RunPod worker defines its own input; this server's video worker takes ``prompt``
(required), ``negative_prompt``, ``image`` (the first frame) and ``last_image`` (http(s)
URLs, data URIs or raw base64), ``duration`` (5 or 10), ``aspect_ratio`` (16:9, 9:16, 1:1;
image to video follows the image), ``generate_audio``, ``guidance`` (0 to 1) and ``seed``.
The endpoint id picks the tier: ``fast``, ``standard`` or ``quality`` (the served profile's
name is the standard tier). Any other input is refused (400 naming it), never ignored.

Example::

    run = parse_run(b'{"input": {"prompt": "a fox"}}')
    run.task(None, None, tier="fast", audio_default=True).seconds   # 5
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from takeone.core.errors import InvalidRequest, NotFound
from takeone.core.task import TIERS, Tier, VideoTask, kind_for
from takeone.edge.dialects.bodies import first_invalid, json_object, renamed
from takeone.models.recipe import Profile

MAX_PROMPT = 2500
Image = Annotated[str, Field(min_length=1, max_length=28 * 1024 * 1024, strict=True)]


class RunInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: Annotated[str, Field(min_length=1, max_length=MAX_PROMPT, strict=True)]
    negative_prompt: Annotated[str, Field(max_length=MAX_PROMPT, strict=True)] = ""
    image: Image | None = Field(None, description="The first frame: an http(s) URL, data URI or base64.")
    last_image: Image | None = Field(None, description="The last frame (with image).")
    duration: Literal[5, 10] = 5
    aspect_ratio: Literal["16:9", "9:16", "1:1"] = "16:9"
    generate_audio: bool | None = Field(None, description="Default: what the profile makes.")
    guidance: Annotated[float, Field(ge=0, le=1)] = 0.5
    seed: Annotated[int, Field(ge=0, le=2**32 - 1)] | None = None


class RunRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input: RunInput
    webhook: Annotated[str, Field(max_length=2048, strict=True)] | None = Field(
        None, description="Receives the job (POST, JSON, signed) when it ends.")
    policy: dict[str, Any] | None = Field(None, description="Not served (a 400 if given).")


@dataclass(frozen=True)
class Run:
    input: RunInput
    webhook: str | None
    raw: bytes

    def images(self) -> dict[str, tuple[str, str]]:
        found = {"first_frame": ("input.image", self.input.image),
                 "last_frame": ("input.last_image", self.input.last_image)}
        return {role: (name, value) for role, (name, value) in found.items() if value is not None}

    def task(self, first_frame: str | None, last_frame: str | None, tier: Tier, audio_default: bool) -> VideoTask:
        inp = self.input
        audio = inp.generate_audio if inp.generate_audio is not None else audio_default
        try:
            return VideoTask(kind=kind_for(first_frame, last_frame), tier=tier, seconds=inp.duration,
                             aspect_ratio=inp.aspect_ratio, audio=audio, seed=inp.seed, prompt=inp.prompt,
                             negative_prompt=inp.negative_prompt, guidance=inp.guidance,
                             first_frame=first_frame, last_frame=last_frame)
        except InvalidRequest as exc:
            raise rename(exc) from None

    def fingerprint(self, endpoint: str) -> str:
        return hashlib.sha256(endpoint.encode() + b"\0" + self.raw).hexdigest()


def endpoints(profile: Profile) -> dict[str, Tier]:
    return {**{tier: tier for tier in TIERS}, profile.name: "standard"}


def tier_of(endpoint_id: str, profile: Profile) -> Tier:
    known = endpoints(profile)
    if endpoint_id not in known:
        raise NotFound(f"endpoint {endpoint_id!r} does not exist (endpoints: {', '.join(known)})")
    return known[endpoint_id]


def parse_run(raw: bytes) -> Run:
    data = json_object(raw)
    try:
        body = RunRequest.model_validate(data)
    except ValidationError as exc:
        raise first_invalid(exc, "is not an input of this worker") from None
    if body.policy is not None:
        raise InvalidRequest("policy", body.policy, "execution policies are not served; the server's"
                             " job timeout applies")
    if body.input.last_image is not None and body.input.image is None:
        raise InvalidRequest("input.last_image", "<image>", "needs input.image too")
    return Run(body.input, body.webhook, raw)


FIELD_NAMES = {"tier": "endpoint_id", "seconds": "input.duration", "guidance": "input.guidance",
               "audio": "input.generate_audio", "size": "input.aspect_ratio", "first_frame": "input.image",
               "last_frame": "input.last_image", "prompt": "input.prompt", "seed": "input.seed"}


def rename(exc: InvalidRequest) -> InvalidRequest:
    """A core error in this dialect's input names."""
    return renamed(exc, FIELD_NAMES)
