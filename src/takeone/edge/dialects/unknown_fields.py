"""The 400 for unknown fields, in every dialect: named, but at most :data:`MAX_NAMED` of them,
each cut to :data:`MAX_NAME` characters (a body of a million unknown names gets a short answer).

Example::

    raise unknown_fields(["qualty"], data, "check the spelling against the API reference")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from takeone.core.errors import InvalidRequest

MAX_NAMED = 5
MAX_NAME = 40


def _short(name: str) -> str:
    return name if len(name) <= MAX_NAME else name[:MAX_NAME] + "..."


def unknown_fields(unknown: Sequence[str], data: Mapping[str, Any], hint: str = "") -> InvalidRequest:
    shown = list(unknown[:MAX_NAMED])
    more = f" (and {len(unknown) - MAX_NAMED} more)" if len(unknown) > MAX_NAMED else ""
    return InvalidRequest(", ".join(_short(n) for n in shown), {_short(k): data[k] for k in shown},
                          f"unknown field(s){more}" + (f"; {hint}" if hint else ""))
