"""Retention: delete outputs, inputs and request records older than the retention period,
and blobs that no job owns (left by a server killed mid-submit, or a cancel that raced the
last frame).

A download already reading a file keeps reading it: local blobs are opened before they are
streamed, and on POSIX an unlinked file stays readable through open handles.
"""

from __future__ import annotations

import asyncio
import logging

from takeone.core.blobs import input_prefix, poster_key
from takeone.core.jobs import EXPIRY_PAGE
from takeone.edge.services import Services

log = logging.getLogger("takeone.sweeper")

# A blob younger than this may belong to a submit still in flight.
ORPHAN_GRACE_S = 3600.0


class Sweeper:
    def __init__(self, services: Services) -> None:
        self.services = services

    async def sweep_once(self, page: int = EXPIRY_PAGE) -> int:
        """Delete every finished job older than the retention period, ``page`` jobs at a time
        (memory and each query stay bounded however many expired); return how many."""
        s = self.services
        before = s.clock() - s.settings.retention_s
        removed = 0
        while True:
            expired = await s.store.expired(before, page)
            for job in expired:
                if job.output:
                    await asyncio.to_thread(s.blobs.delete, job.output)
                    await asyncio.to_thread(s.blobs.delete, poster_key(job.id))
                await asyncio.to_thread(s.blobs.delete_prefix, input_prefix(job.id))
                await s.store.delete(job.id)
            removed += len(expired)
            if len(expired) < page:
                return removed

    async def sweep_orphans(self) -> int:
        """Delete blobs older than the grace period whose job no longer exists."""
        s = self.services
        before = s.clock() - max(ORPHAN_GRACE_S, s.settings.retention_s)
        removed = 0
        for prefix in ("inputs/", "outputs/"):
            for key in await asyncio.to_thread(s.blobs.older_than, prefix, before):
                if not await s.store.job_exists(_job_id(key)):
                    await asyncio.to_thread(s.blobs.delete, key)
                    removed += 1
        return removed

    async def run_forever(self) -> None:
        while True:
            try:
                await self._round()
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(self.services.settings.sweep_interval_s)

    async def _round(self) -> None:
        removed = await self.sweep_once()
        orphans = await self.sweep_orphans()
        if removed or orphans:
            log.info("retention: removed %d expired requests and %d orphan files", removed, orphans)


def _job_id(key: str) -> str:
    """``inputs/<id>/<role>.png`` and ``outputs/<id>.mp4`` -> ``<id>``."""
    return key.split("/")[1].split(".")[0]
