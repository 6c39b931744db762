"""Body helpers the hosted dialects (Replicate, fal, RunPod) share: a raw body read as one JSON
object, pydantic's first complaint as the :class:`InvalidRequest` naming the field, and a core
error told in a dialect's own field names.

Example::

    data = json_object(b'{"prompt": "a fox"}')       # {"prompt": "a fox"}
    renamed(InvalidRequest("seconds", 7, "must be 5 or 10"), {"seconds": "duration"}).field  # "duration"
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from takeone.core.errors import MISSING, InvalidRequest


def json_object(raw: bytes) -> dict[str, Any]:
    """``raw`` parsed as JSON; anything but an object is a 400 naming ``body``."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise InvalidRequest("body", raw[:60].decode("utf-8", "replace"), "is not valid JSON") from None
    if not isinstance(data, dict):
        raise InvalidRequest("body", data, "must be a JSON object")
    return data


def first_invalid(exc: ValidationError, unknown: str, root: str = "body", strip: str | None = None) -> InvalidRequest:
    """Pydantic's first error, its field named by its dotted path (``strip``: a leading path
    part the dialect does not show); ``unknown`` is the reason given for an unknown field."""
    first = exc.errors()[0]
    loc = [str(p) for p in first["loc"]]
    if strip is not None and len(loc) > 1 and loc[0] == strip:
        loc = loc[1:]
    field = ".".join(loc) or root
    if first["type"] == "extra_forbidden":
        return InvalidRequest(field, first.get("input"), unknown)
    if first["type"] == "missing":
        return InvalidRequest(field, MISSING, "is required")
    return InvalidRequest(field, first.get("input"), first["msg"])


def renamed(exc: InvalidRequest, names: Mapping[str, str]) -> InvalidRequest:
    """``exc`` with its core field name (``seconds``, ``first_frame``...) in the dialect's words."""
    return type(exc)(names.get(exc.field, exc.field), exc.value, exc.reason)
