"""Fields and rules shared by the two Kling endpoints, and readable validation errors.

Validation happens here, at the edge, and never silently fixes input: a wrong value is a 400
that names the field and the value.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from pydantic_core import PydanticCustomError

from takeone.core.errors import MISSING, InvalidRequest
from takeone.core.loras import MAX_LORAS, SCALE_RANGE
from takeone.edge.dialects.unknown_fields import unknown_fields

MAX_PROMPT = 2500
MAX_IMAGE_FIELD = 28 * 1024 * 1024  # base64 of a 20 MiB image, plus a data: prefix
SEED_MAX = 2**32 - 1


def _duration(value: Any) -> Any:
    """Segmind's own snippets send ``"5"``; accept the digits as a string too. Anything but an
    integer or those strings is refused (``5.0`` and ``true`` too: types are strict)."""
    if isinstance(value, str) and value.strip() in ("5", "10"):
        return int(value.strip())
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PydanticCustomError("duration_type",
                                  'must be the integer 5 or 10 (or the string "5" or "10"), not {kind}',
                                  {"kind": type(value).__name__})
    return value


Duration = Annotated[Literal[5, 10], BeforeValidator(_duration)]
AspectRatio = Literal["16:9", "9:16", "1:1"]
CfgScale = Annotated[float, Field(ge=0, le=1, strict=True)]
Prompt = Annotated[str, Field(max_length=MAX_PROMPT, strict=True)]
ImageField = Annotated[
    str,
    Field(
        min_length=1,
        max_length=MAX_IMAGE_FIELD,
        strict=True,
        description="An http(s) URL, a data:image/...;base64, URI, or raw base64.",
        json_schema_extra={"format": "uri"},
    ),
]
Seed = Annotated[int, Field(ge=0, le=SEED_MAX, strict=True)]


LORAS_DESCRIPTION = (
    f"takeone extension (not on Segmind): up to {MAX_LORAS} LoRAs from this server's library,"
    f' as [{{"name": "anime", "scale": 0.8}}]; scale {SCALE_RANGE[0]:g} to {SCALE_RANGE[1]:g}'
    " (default 1; 0 leaves the base model). GET /v1/loras lists the names this key may use.")


class EndpointInput(BaseModel):
    """Base of the endpoint bodies: unknown fields are errors, types are strict."""

    model_config = ConfigDict(extra="forbid", strict=False)

    loras: list[Any] | None = Field(None, description=LORAS_DESCRIPTION)


def parse_body(model: type[EndpointInput], body: bytes) -> EndpointInput:
    """Parse a JSON body into ``model``; every problem becomes one 400 naming the fields."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidRequest("body", _excerpt(body), f"is not valid JSON ({exc})") from None
    except RecursionError:
        raise InvalidRequest("body", _excerpt(body), "is nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body", data, "must be a JSON object")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise _to_invalid(exc, data) from None


def _to_invalid(exc: ValidationError, data: dict[str, Any]) -> InvalidRequest:
    extra = [e for e in exc.errors() if e["type"] == "extra_forbidden"]
    if extra:  # a nested one (a multi_prompt shot's) is named by its path: multi_prompt.0.seconds
        unknown = [".".join(str(p) for p in e["loc"]) for e in extra]
        return unknown_fields(unknown, {name: e["input"] for name, e in zip(unknown, extra)},
                              "check the spelling against the API reference")
    first = exc.errors()[0]
    field = ".".join(str(p) for p in first["loc"]) or "body"
    if first["type"] == "missing":
        return InvalidRequest(field, MISSING, "is required")
    return InvalidRequest(field, first.get("input"), first["msg"])


def _excerpt(body: bytes) -> str:
    return body[:60].decode("utf-8", "replace")
