"""``/healthz``: what any API process can tell from the store alone.

503 while the store cannot take writes (with the reason), 503 until some worker (in this
process tree or another) reports ready, 200 after. Worker reports older than a few
heartbeats, or from processes known to be gone, are ignored.

Anyone may ask, so the public answer is minimal: the status, the profile, the reason without
server paths, notes, and each worker's state and device. Worker ids (host and pid), pids,
running job ids and full errors are for operators: with ``--health-details``, or to a key
created with ``--scope health``.
"""

from __future__ import annotations

import asyncio
import time

from takeone.core.errors import StoreUnavailable, WorkerUnavailable
from takeone.core.jobs import WorkerStatus
from takeone.core.redact import without_paths
from takeone.core.telemetry import webhook_late_seconds
from takeone.dispatch.identity import API_STATE, is_dead
from takeone.edge.services import Services

STALE_HEARTBEATS = 3
NO_WORKERS = "no worker has reported yet (start one with `takeone worker`)"


async def live_workers(services: Services) -> list[WorkerStatus]:
    cutoff = time.time() - STALE_HEARTBEATS * services.settings.heartbeat_s
    workers = await services.store.workers()
    return [w for w in workers if w.state not in ("stopped", API_STATE) and w.seen_at >= cutoff
            and not is_dead(w.id)]


def notes(services: Services) -> list[str]:
    """What an operator should know although the server is up (late webhooks...)."""
    found = []
    late = webhook_late_seconds()
    if late > services.settings.webhook_late_note_s:
        found.append(f"webhook deliveries are late: due ones have waited {late:.0f} s for a free"
                     " sending slot")
    return found


HEALTH_SCOPE = "health"


async def health(services: Services, detailed: bool = True) -> tuple[int, dict[str, object]]:
    """The status code and body; ``detailed`` False: the public answer."""
    code, body = await _health(services)
    if detailed:
        return code, body
    workers = body["workers"]
    assert isinstance(workers, list)
    error = body["error"]
    return code, {**body, "error": without_paths(error) if isinstance(error, str) else None,
                  "workers": [{"state": w["state"], "device": w["device"]} for w in workers]}


async def _health(services: Services) -> tuple[int, dict[str, object]]:
    body: dict[str, object] = {"profile": services.settings.profile, "workers": [], "error": None,
                               "notes": notes(services)}
    try:
        await services.store.ping()
        await asyncio.to_thread(services.blobs.probe)
        workers = await live_workers(services)
    except StoreUnavailable as exc:
        return 503, {**body, "status": "unavailable", "error": exc.message}
    body["workers"] = [_public(w) for w in workers]
    if (mismatch := profile_mismatch(services, workers)) is not None:
        return 503, {**body, "status": "unavailable", "error": mismatch}
    if any(w.state == "ready" for w in workers):
        return 200, {**body, "status": "ready"}
    failed = [w.error for w in workers if w.state == "failed"]
    if workers and len(failed) == len(workers):
        return 503, {**body, "status": "unavailable", "error": failed[0]}
    cooling = [w.error for w in workers if w.state == "cooling"]
    if cooling and len(cooling) + len(failed) == len(workers):
        return 503, {**body, "status": "unavailable", "error": cooling[0]}
    errors = [w.error for w in workers if w.error]
    waiting = None if workers or services.settings.run_workers else NO_WORKERS
    return 503, {**body, "status": "starting", "error": errors[0] if errors else waiting}


def _public(w: WorkerStatus) -> dict[str, object]:
    return {"id": w.id, "state": w.state, "device": w.device, "job": w.job_id, "pid": w.pid,
            "error": w.error}


def profile_mismatch(services: Services, workers: list[WorkerStatus]) -> str | None:
    """Why this API process must not accept jobs for the workers there are: they all serve
    another profile than its ``--profile``, so it would price and describe (sizes, frame
    rates) videos that are not the ones delivered. None when any worker serves its profile."""
    mine = services.settings.profile
    theirs = sorted({w.profile for w in workers})
    if not theirs or mine in theirs:
        return None
    return (f"the workers serve profile {', '.join(theirs)}, but this API process was started with"
            f" --profile {mine}: start it with --profile {theirs[0]}")


async def check_available(services: Services) -> None:
    """:class:`WorkerUnavailable` (502) when every live worker has failed for good, or serves
    another profile than this process."""
    workers = await live_workers(services)
    if (mismatch := profile_mismatch(services, workers)) is not None:
        raise WorkerUnavailable(mismatch)
    failed = [w for w in workers if w.state == "failed"]
    if workers and len(failed) == len(workers):
        raise WorkerUnavailable(f"no worker can serve requests: {failed[0].error}")
