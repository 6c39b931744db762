"""fal's authentication: ``Authorization: Key <key>`` (what ``fal_client`` sends for
``FAL_KEY``). The key is a takeone API key; any other scheme is a 401 that says which to use.

Example::

    key = await authenticate_key(services, request)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from takeone.core.accounts import ApiKey
from takeone.core.errors import Unauthorized
from takeone.edge.services import Services

SECURITY: Mapping[str, Mapping[str, Any]] = {
    "fal_key": {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "The API key as fal sends it: `Authorization: Key tk_...` (FAL_KEY)."},
}

async def authenticate_key(services: Services, request: Request) -> ApiKey:
    auth = request.headers.get("authorization", "")
    scheme, _, secret = auth.partition(" ")
    if scheme.lower() != "key" or not secret.strip():
        raise Unauthorized("missing credentials: send Authorization: Key <your API key> (FAL_KEY)")
    key = await services.store.authenticate(secret.strip())
    request.state.key_id = key.id
    return key
