"""LoRAs at the edge: checking a request's choices against the library, and ``GET /v1/loras``.

The edge reads only manifests (small JSON blobs) and never imports torch; the file itself was
checked against the profile's transformer when ``takeone loras add`` stored it. A key whose
scopes include ``lora:NAME`` entries may use only those LoRAs; a key with none may use all.

Example::

    submission = await with_surcharges(services, key, submission)   # 400s name loras[i].name
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from takeone.core.accounts import ApiKey
from takeone.core.errors import InvalidRequest
from takeone.core.loras import MAX_LORAS, SCALE_RANGE, LoraCatalog, LoraManifest, allowed
from takeone.edge.services import Services

if TYPE_CHECKING:
    from takeone.edge.submit import Submission


async def with_surcharges(services: Services, key: ApiKey, submission: Submission) -> Submission:
    """The submission priced with its surcharges (the served profile's and each LoRA's, see
    :mod:`takeone.edge.surcharges`); a 400 (in the dialect's words) for a LoRA that is
    unknown, of another profile or outside the key's scopes."""
    manifests: list[LoraManifest] = []
    if submission.task.loras:
        catalog = LoraCatalog(services.blobs)
        try:
            manifests = await asyncio.to_thread(catalog.resolve, submission.task.loras,
                                                services.settings.profile, key.scopes)
        except InvalidRequest as exc:
            raise submission.rename(exc) from None
    surcharge = services.surcharges.for_job(services.settings.profile, manifests)
    if not surcharge:
        return submission
    return dataclasses.replace(submission, price=round(submission.price + surcharge, 6))


async def list_loras(request: Request) -> JSONResponse:
    from takeone.edge.auth import authenticate

    services: Services = request.app.state.services
    key = await authenticate(services, request)
    manifests = await asyncio.to_thread(LoraCatalog(services.blobs).entries)
    data = [{**m.public(), "surcharge": services.surcharges.of_lora(m)} for m in manifests
            if m.profile == services.settings.profile and allowed(key.scopes, m.name)]
    return JSONResponse({"object": "list", "data": data, "max_per_request": MAX_LORAS,
                         "scale_range": list(SCALE_RANGE)})


def install(app: FastAPI) -> None:
    app.add_api_route("/v1/loras", list_loras, methods=["GET"],
                      summary="The LoRAs this key may name in a request's `loras` field")
