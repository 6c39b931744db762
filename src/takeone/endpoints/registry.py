"""The endpoints takeone serves, by slug, and how a validated body becomes a request.

Example::

    endpoint = get_endpoint("kling-2.6")
    body = endpoint.parse(b'{"prompt": "a fox"}')
    request = endpoint.to_request(body, images={})
"""

from __future__ import annotations

from dataclasses import dataclass

from takeone.endpoints import kling_2_1, kling_2_6
from takeone.endpoints.common import EndpointInput, parse_body
from takeone.errors import NotFound
from takeone.generation import Endpoint, GenerationRequest


@dataclass(frozen=True)
class EndpointSpec:
    slug: Endpoint
    schema: type[EndpointInput]
    image_fields: tuple[str, ...]
    summary: str

    def parse(self, body: bytes) -> EndpointInput:
        return parse_body(self.schema, body)

    def image_inputs(self, body: EndpointInput) -> dict[str, str]:
        """The image fields that were set, by name (URL, data URI or base64)."""
        values = {name: getattr(body, name) for name in self.image_fields}
        return {name: value for name, value in values.items() if value is not None}

    def to_request(self, body: EndpointInput, images: dict[str, str]) -> GenerationRequest:
        """Build the worker's request; ``images`` maps image fields to saved PNG paths."""
        fields = body.model_dump()
        first = images.get("image") or images.get("image_url")
        return GenerationRequest(
            endpoint=self.slug,
            prompt=fields["prompt"],
            negative_prompt=fields["negative_prompt"],
            cfg_scale=float(fields["cfg_scale"]),
            mode=fields["mode"],
            aspect_ratio=fields["aspect_ratio"],
            duration=int(fields["duration"]),
            generate_audio=bool(fields.get("generate_audio", False)),
            image=first,
            image_tail=images.get("image_tail"),
            seed=fields["seed"],
        )


ENDPOINTS: dict[str, EndpointSpec] = {
    "kling-2.1": EndpointSpec("kling-2.1", kling_2_1.Kling21Input, ("image", "image_tail"),
                                 "Kling 2.1: image to video, optional last frame"),
    "kling-2.6": EndpointSpec("kling-2.6", kling_2_6.Kling26Input, ("image_url",),
                                 "Kling 2.6: text or image to video with synchronized audio"),
}


def get_endpoint(slug: str) -> EndpointSpec:
    try:
        return ENDPOINTS[slug]
    except KeyError:
        raise NotFound(f"unknown model {slug!r}: this server serves {', '.join(ENDPOINTS)}") from None
