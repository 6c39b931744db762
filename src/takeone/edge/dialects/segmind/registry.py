"""The Segmind endpoints takeone serves, by slug, and how a validated body becomes a task.

Each slug names a Kling model on Segmind; its body maps onto one neutral
:class:`~takeone.core.task.VideoTask` (mode -> tier, or the route's own tier where the body
has no mode; duration -> seconds, cfg_scale -> guidance, image fields -> input blob keys,
multi_prompt -> shots). Errors the core raises in task words are renamed
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
from takeone.core.task import Shot, Tier, VideoTask, kind_for
from takeone.edge.dialects.segmind import kling_2_1, kling_2_5_turbo, kling_2_6, kling_3
from takeone.edge.dialects.segmind.endpoint_input import EndpointInput, parse_body

TIER_OF_MODE: Mapping[str, Tier] = {"std": "fast", "pro": "standard", "master": "quality"}
MODE_OF_TIER: Mapping[Tier, str] = {tier: mode for mode, tier in TIER_OF_MODE.items()}


@dataclass(frozen=True)
class EndpointSpec:
    slug: str
    schema: type[EndpointInput]
    first_frame_field: str | None
    summary: str
    last_frame_field: str | None = None
    audio_field: str | None = None
    hints: Mapping[str, str] = field(default_factory=dict)
    tier: Tier | None = None  # the route's tier when its body has no ``mode``
    shots_field: str | None = None

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
        roles = {self.first_frame_field: "first_frame"} if self.first_frame_field else {}
        if self.last_frame_field:
            roles[self.last_frame_field] = "last_frame"
        return roles

    def to_task(self, body: EndpointInput, inputs: Mapping[str, str]) -> VideoTask:
        """The neutral task; ``inputs`` maps image *fields* to blob keys (or placeholders)."""
        fields = body.model_dump()
        first = inputs.get(self.first_frame_field) if self.first_frame_field else None
        last = inputs.get(self.last_frame_field) if self.last_frame_field else None
        audio = bool(fields.get(self.audio_field, False)) if self.audio_field else False
        shots = tuple(Shot(shot["prompt"], int(shot["duration"]))
                      for shot in (fields.get(self.shots_field) or [] if self.shots_field else []))
        seconds = sum(shot.seconds for shot in shots) if shots else int(fields["duration"])
        try:
            return VideoTask(
                kind=kind_for(first, last), tier=self.tier or TIER_OF_MODE[fields["mode"]],
                seconds=seconds, aspect_ratio=fields["aspect_ratio"], audio=audio,
                seed=fields["seed"], prompt=fields["prompt"],
                negative_prompt=fields["negative_prompt"], guidance=float(fields["cfg_scale"]),
                first_frame=first, last_frame=last, shots=shots, loras=parse_loras(fields.get("loras")))
        except InvalidRequest as exc:
            raise self.rename(exc) from None

    def rename(self, exc: InvalidRequest) -> InvalidRequest:
        """The same error in this endpoint's field names (and values)."""
        names = {"tier": "mode", "seconds": "duration", "guidance": "cfg_scale",
                 "size": "aspect_ratio", "audio": self.audio_field or "generate_audio",
                 "first_frame": self.first_frame_field or "prompt",
                 "last_frame": self.last_frame_field or "image_tail"}
        name = names.get(exc.field, exc.field)
        if exc.field.startswith("shots") and self.shots_field:  # shots.<i>.seconds -> multi_prompt.<i>.duration
            name = exc.field.replace("shots", self.shots_field, 1).replace(".seconds", ".duration")
        value = MODE_OF_TIER.get(exc.value, exc.value) if exc.field == "tier" else exc.value  # type: ignore[call-overload]
        reason = exc.reason + self.hints.get(name, "")
        return type(exc)(name, value, reason)


# Kling 3's routes are one tier each: Standard (Kling's 720p) the fast tier, Pro (1080p) standard.
KLING_3_ROUTES: tuple[tuple[str, str, Tier], ...] = (
    (kling_3.STANDARD_SLUG, "Kling 3.0 Standard: text to video, 3-15 s, audio, multi-shot", "fast"),
    (kling_3.PRO_SLUG, "Kling 3.0 Pro: text to video, 3-15 s, audio, multi-shot", "standard"),
)
ENDPOINTS: dict[str, EndpointSpec] = {
    "kling-2.1": EndpointSpec(kling_2_1.SLUG, kling_2_1.Kling21Input, "image",
                              "Kling 2.1: image to video, optional last frame",
                              last_frame_field="image_tail"),
    "kling-2.6": EndpointSpec(kling_2_6.SLUG, kling_2_6.Kling26Input, "image_url",
                              "Kling 2.6: text or image to video with synchronized audio",
                              audio_field="generate_audio",
                              hints={"generate_audio": "; send generate_audio: false"
                                     " (kling-2.6 defaults to true)"}),
    "kling-2.5-turbo": EndpointSpec(kling_2_5_turbo.SLUG, kling_2_5_turbo.Kling25TurboInput, "image_url",
                                    "Kling 2.5 Turbo: text or image to video"),
    **{slug: EndpointSpec(slug, kling_3.Kling3Input, None, summary, audio_field="generate_audio",
                          tier=tier, shots_field="multi_prompt",
                          hints={"generate_audio": f"; send generate_audio: false ({slug} defaults to true)"})
       for slug, summary, tier in KLING_3_ROUTES
},
}


def get_endpoint(slug: str) -> EndpointSpec:
    try:
        return ENDPOINTS[slug]
    except KeyError:
        raise NotFound(f"unknown model {slug!r}: this server serves {', '.join(ENDPOINTS)}") from None
