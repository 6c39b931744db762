"""Retention: delete outputs, inputs and request records older than the retention period,
and what nothing owns once the grace period has passed: blobs whose job is gone (a server
killed mid-submit, a delete that raced the last frame), the blob store's half-written
temporaries (``.put-*``), scratch folders (``tmp/<job id>/``) of jobs no longer running
(a worker killed mid-job), and uploaded form files (``tmp/.upload-*``) of a process that died
mid-request. A cancelled job's late output and poster go with the job.

A download already reading a file keeps reading it: local blobs are opened before they are
streamed, and on POSIX an unlinked file stays readable through open handles.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
from pathlib import Path

from takeone.core.blobs import input_prefix, output_key, poster_key
from takeone.core.jobs import EXPIRY_PAGE, JobStatus
from takeone.edge.services import Services
from takeone.edge.uploads import UPLOAD_PREFIX

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
                # Even without an output: a cancel that raced the last frame may have left both.
                for key in {job.output or output_key(job.id), output_key(job.id), poster_key(job.id)}:
                    await asyncio.to_thread(s.blobs.delete, key)
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
        removed += await asyncio.to_thread(s.blobs.remove_temporaries, before)
        return removed + await self._sweep_scratch(before)

    async def _sweep_scratch(self, before: float) -> int:
        """``tmp/<job id>/`` folders older than ``before`` whose job is not running."""
        scratch = self.services.settings.scratch_dir
        removed = await asyncio.to_thread(_remove_old_uploads, scratch, before)
        for folder in await asyncio.to_thread(_old_folders, scratch, before):
            job = await self.services.store.get(folder.name)
            if job is None or job.status is not JobStatus.PROCESSING:
                await asyncio.to_thread(shutil.rmtree, folder, True)
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


def _old_folders(parent: Path, before: float) -> list[Path]:
    if not parent.is_dir():
        return []
    found = []
    for path in parent.iterdir():
        with contextlib.suppress(FileNotFoundError):
            if path.is_dir() and not path.name.startswith(".") and path.stat().st_mtime < before:
                found.append(path)
    return found


def _remove_old_uploads(scratch: Path, before: float) -> int:
    """Uploaded form files older than ``before``: a live request removes its own at once."""
    if not scratch.is_dir():
        return 0
    removed = 0
    for path in scratch.glob(UPLOAD_PREFIX + "*"):
        with contextlib.suppress(FileNotFoundError):
            if path.is_file() and path.stat().st_mtime < before:
                path.unlink()
                removed += 1
    return removed


def _job_id(key: str) -> str:
    """``inputs/<id>/<role>.png`` and ``outputs/<id>.mp4`` -> ``<id>``."""
    return key.split("/")[1].split(".")[0]
