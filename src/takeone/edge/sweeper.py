"""Retention: delete outputs, inputs and request records older than the retention period.

A download already reading a file keeps reading it: on POSIX an unlinked file stays readable
through open handles, so deleting never cuts a transfer short.
"""

from __future__ import annotations

import asyncio
import logging
import shutil

from takeone.edge.services import Services

log = logging.getLogger("takeone.sweeper")


class Sweeper:
    def __init__(self, services: Services) -> None:
        self.services = services

    def sweep_once(self) -> int:
        """Delete every finished job older than the retention period; return how many."""
        s = self.services
        cutoff = s.clock() - s.settings.retention_s
        expired = s.jobs.expired(cutoff)
        for job in expired:
            if job.output:
                s.storage.delete(job.output)
            shutil.rmtree(s.settings.inputs_dir / job.id, ignore_errors=True)
            s.jobs.delete(job.id)
        return len(expired)

    async def run_forever(self) -> None:
        while True:
            try:
                removed = await asyncio.to_thread(self.sweep_once)
                if removed:
                    log.info("retention: removed %d expired requests", removed)
            except Exception:
                log.exception("retention sweep failed")
            await asyncio.sleep(self.services.settings.sweep_interval_s)
