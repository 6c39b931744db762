"""The server's own API key (``tk_...``) on a request: in ``x-api-key``, or as
``Authorization: Bearer``. Every route of the server's own (``/healthz`` details, LoRAs, the
playground) takes it this way, and so does a dialect that names :data:`KEY_SCHEMES` as its
security (the default); a dialect that authenticates otherwise brings its own check and
its own OpenAPI security schemes (a ``Key`` header, a signed JWT).

Example::

    key = await authenticate(services, request)     # 401 without a known key
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from fastapi import Request

from takeone.core.accounts import ApiKey
from takeone.edge.services import Services

# OpenAPI security schemes, by name (any one of them will do).
KEY_SCHEMES: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    "api_key": {"type": "apiKey", "in": "header", "name": "x-api-key",
                "description": "An API key from `takeone keys create` (the `tk_...` line)."},
    "bearer": {"type": "http", "scheme": "bearer",
               "description": "The same API key as `Authorization: Bearer tk_...`."},
})


def sends_a_key(request: Request) -> bool:
    """Whether the request carries credentials at all (an answer may differ without them)."""
    return bool(request.headers.get("x-api-key") or request.headers.get("authorization"))


async def authenticate(services: Services, request: Request) -> ApiKey:
    """The caller's key (``x-api-key``, or ``Authorization: Bearer``); remember it for headers."""
    secret = request.headers.get("x-api-key")
    auth = request.headers.get("authorization", "")
    if not secret and auth.lower().startswith("bearer "):
        secret = auth[7:].strip()
    key = await services.store.authenticate(secret)
    request.state.key_id = key.id
    return key
