"""API processes announce themselves in the store, so that a replica on another host can tell
when one is gone: every heartbeat each API process writes a report (state ``api``) and fails
the blocking jobs whose waiting API process stopped reporting (nobody is left to hand the
video to, so nobody is charged for it).

Example::

    presence = Presence(services)
    task = asyncio.create_task(presence.run_forever())
    ...
    await presence.leave()      # on shutdown: "stopped", so others need not wait it out
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import Callable

from takeone.core.errors import StoreUnavailable
from takeone.core.jobs import Job, JobStore, WorkerStatus
from takeone.dispatch.identity import API_STATE, liveness
from takeone.edge.services import Services

log = logging.getLogger("takeone.presence")

LOST_CALLER = "the server process waiting for this blocking request is gone"


async def current_liveness(store: JobStore, heartbeat_s: float) -> Callable[[str], bool]:
    """``is_dead`` from the store's latest reports (this host's processes checked directly)."""
    return liveness(await store.workers(), time.time(), heartbeat_s)


async def fail_lost_callers(services: Services, reason: str = LOST_CALLER) -> list[Job]:
    dead = await current_liveness(services.store, services.settings.heartbeat_s)
    lost = await services.store.fail_lost_callers(dead, reason)
    for job in lost:
        log.info("failed blocking job %s: its caller %s is gone", job.id, job.caller)
        services.waiter.finished(job.id)
    return lost


class Presence:
    def __init__(self, services: Services) -> None:
        self.services = services

    def _status(self, state: str) -> WorkerStatus:
        s = self.services
        return WorkerStatus(id=s.identity, profile=s.settings.profile, state=state, seen_at=time.time(),
                            device="api", pid=os.getpid())

    async def run_forever(self) -> None:
        while True:
            try:
                await self.services.store.report_worker(self._status(API_STATE))
                await fail_lost_callers(self.services)
            except StoreUnavailable as exc:
                log.warning("cannot report this API process to the store: %s", exc.message)
            except Exception:
                log.exception("presence round failed")
            await asyncio.sleep(self.services.settings.heartbeat_s)

    async def leave(self) -> None:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.services.store.report_worker(self._status("stopped")), 2.0)
