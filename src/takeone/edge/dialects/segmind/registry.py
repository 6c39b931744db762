"""The Segmind endpoints takeone serves, by slug, and how a validated body becomes a task.

Each slug names a Kling model on Segmind; its body maps onto one neutral
:class:`~takeone.core.task.VideoTask` (mode -> tier, duration -> seconds, cfg_scale ->
guidance, image fields -> input blob keys). Errors the core raises in task words are renamed
back into this dialect's field names by :meth:`EndpointSpec.rename`.

Example::

    endpoint = get_endpoint("kling-2.6")
    body = endpoint.parse(b'{"prompt": "a fox"}')
    task = endpoint.to_task(body, inputs={})
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from takeone.core.errors import InvalidRequest, NotFound
from takeone.core.loras import parse_loras
from takeone.core.task import Tier, VideoTask, kind_for
from takeone.edge.dialects.segmind import kling_2_1, kling_2_6
from takeone.edge.dialects.segmind.common import EndpointInput, parse_body

TIER_OF_MODE: Mapping[str, Tier] = {"std": "fast", "pro": "standard", "master": "quality"}
MODE_OF_TIER: Mapping[Tier, str] = {tier: mode for mode, tier in TIER_OF_MODE.items()}


@dataclass(frozen=True)
class EndpointSpec:
    slug: str
    schema: type[EndpointInput]
    first_frame_field: str
    summary: str
    last_frame_field: str | None = None
    audio_field: str | None = None
    hints: Mapping[str, str] = field(default_factory=dict)

    @property
    def image_fields(self) -> tuple[str, ...]:
        return tuple(f for f in (self.first_frame_field, self.last_frame_field) if f)

    def parse(self, body: bytes) -> EndpointInput:
        return parse_body(self.schema, body)

    def image_inputs(self, body: EndpointInput) -> dict[str, str]:
        """The image fields that were set, by name (URL, data URI or base64)."""
        values = {name: getattr(body, name) for name in self.image_fields}
        return {name: value for name, value in values.items() if value is not None}

    def roles(self) -> dict[str, str]:
        """Image field -> input role of the task."""
        roles = {self.first_frame_field: "first_frame"}
        if self.last_frame_field:
            roles[self.last_frame_field] = "last_frame"
        return roles

    def to_task(self, body: EndpointInput, inputs: Mapping[str, str]) -> VideoTask:
        """The neutral task; ``inputs`` maps image *fields* to blob keys (or placeholders)."""
        fields = body.model_dump()
        first = inputs.get(self.first_frame_field)
        last = inputs.get(self.last_frame_field) if self.last_frame_field else None
        audio = bool(fields.get(self.audio_field, False)) if self.audio_field else False
        try:
            return VideoTask(
                kind=kind_for(first, last), tier=TIER_OF_MODE[fields["mode"]],
                seconds=int(fields["duration"]), aspect_ratio=fields["aspect_ratio"], audio=audio,
                seed=fields["seed"], prompt=fields["prompt"],
                negative_prompt=fields["negative_prompt"], guidance=float(fields["cfg_scale"]),
                first_frame=first, last_frame=last, loras=parse_loras(fields.get("loras")))
        except InvalidRequest as exc:
            raise self.rename(exc) from None

    def rename(self, exc: InvalidRequest) -> InvalidRequest:
        """The same error in this endpoint's field names (and values)."""
        names = {"tier": "mode", "seconds": "duration", "guidance": "cfg_scale",
                 "size": "aspect_ratio", "audio": self.audio_field or "generate_audio",
                 "first_frame": self.first_frame_field,
                 "last_frame": self.last_frame_field or "image_tail"}
        name = names.get(exc.field, exc.field)
        value = MODE_OF_TIER.get(exc.value, exc.value) if exc.field == "tier" else exc.value  # type: ignore[call-overload]
        reason = exc.reason + self.hints.get(name, "")
        return type(exc)(name, value, reason)


ENDPOINTS: dict[str, EndpointSpec] = {
    "kling-2.1": EndpointSpec(kling_2_1.SLUG, kling_2_1.Kling21Input, "image",
                              "Kling 2.1: image to video, optional last frame",
                              last_frame_field="image_tail"),
    "kling-2.6": EndpointSpec(kling_2_6.SLUG, kling_2_6.Kling26Input, "image_url",
                              "Kling 2.6: text or image to video with synchronized audio",
                              audio_field="generate_audio",
                              hints={"generate_audio": "; send generate_audio: false"
                                     " (kling-2.6 defaults to true)"}),
}


def get_endpoint(slug: str) -> EndpointSpec:
    try:
        return ENDPOINTS[slug]
    except KeyError:
        raise NotFound(f"unknown model {slug!r}: this server serves {', '.join(ENDPOINTS)}") from None
