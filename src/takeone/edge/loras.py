"""LoRAs at the edge: checking a request's choices against the library, and ``GET /v1/loras``.

The edge reads only manifests (small JSON blobs) and never imports torch; the file itself was
checked against the profile's transformer when ``takeone loras add`` stored it. A key whose
scopes include ``lora:NAME`` entries may use only those LoRAs; a key with none may use all.

Example::

    submission = await with_loras(services, key, submission)   # 400s name loras[i].name
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from takeone.core.accounts import ApiKey
from takeone.core.errors import InvalidRequest
from takeone.core.loras import MAX_LORAS, SCALE_RANGE, LoraCatalog, allowed
from takeone.edge.services import Services

if TYPE_CHECKING:
    from takeone.edge.submit import Submission


async def with_loras(services: Services, key: ApiKey, submission: Submission) -> Submission:
    """The submission priced with its LoRAs' surcharges; a 400 (in the dialect's words) for
    a LoRA that is unknown, of another profile or outside the key's scopes."""
    uses = submission.task.loras
    if not uses:
        return submission
    catalog = LoraCatalog(services.blobs)
    try:
        manifests = await asyncio.to_thread(catalog.resolve, uses, services.settings.profile, key.scopes)
    except InvalidRequest as exc:
        raise submission.rename(exc) from None
    surcharge = sum(m.surcharge for m in manifests)
    return dataclasses.replace(submission, price=round(submission.price + surcharge, 6))


async def list_loras(request: Request) -> JSONResponse:
    from takeone.edge.auth import authenticate

    services: Services = request.app.state.services
    key = await authenticate(services, request)
    manifests = await asyncio.to_thread(LoraCatalog(services.blobs).entries)
    data = [m.public() for m in manifests
            if m.profile == services.settings.profile and allowed(key.scopes, m.name)]
    return JSONResponse({"object": "list", "data": data, "max_per_request": MAX_LORAS,
                         "scale_range": list(SCALE_RANGE)})


def install(app: FastAPI) -> None:
    app.add_api_route("/v1/loras", list_loras, methods=["GET"],
                      summary="The LoRAs this key may name in a request's `loras` field")
