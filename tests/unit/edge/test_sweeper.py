"""Retention through the blob store: expired jobs with their files, and orphan files."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from takeone.core.blobs import input_key, output_key
from takeone.core.jobs import Job, JobStatus, SubmitLimits
from takeone.core.settings import Settings
from takeone.core.task import VideoTask
from takeone.edge.background.sweeper import Sweeper
from takeone.edge.services import Services


def _age(services: Services, key: str, seconds: float) -> None:
    path = services.settings.data_dir / key
    then = time.time() - seconds
    os.utime(path, (then, then))


def test_expired_jobs_and_orphans_are_removed(tmp_path: Path) -> None:
    services = Services.build(Settings(data_dir=tmp_path, retention_s=3600, run_workers=False))

    async def run() -> tuple[int, int]:
        store, blobs = services.store, services.blobs
        key = (await store.create(10)).key
        for job_id in ("old", "new"):
            task = VideoTask(kind="i2v", first_frame=input_key(job_id, "first_frame"))
            blobs.put(input_key(job_id, "first_frame"), b"png")
            await store.submit(Job(id=job_id, key_id=key.id, task=task, price=1,
                                   status=JobStatus.QUEUED, created_at=time.time(), dialect="segmind"),
                               SubmitLimits(None, 9))
            await store.claim("h/1/0", 30)
            blobs.put(output_key(job_id), b"mp4")
            await store.complete(job_id, output_key(job_id), {})
        services.clock = lambda: time.time() + 7200  # two hours later, both have expired
        removed = await Sweeper(services).sweep_once()
        services.clock = time.time
        blobs.put(output_key("orphan"), b"left by a cancel that raced the last frame")
        blobs.put(input_key("crashed", "first_frame"), b"left by a server killed mid-submit")
        blobs.put(input_key("inflight", "first_frame"), b"a submit in progress")
        _age(services, output_key("orphan"), 3 * 3600)
        _age(services, input_key("crashed", "first_frame"), 3 * 3600)
        return removed, await Sweeper(services).sweep_orphans()

    removed, orphans = asyncio.run(run())
    assert (removed, orphans) == (2, 2)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.*")
                  if p.is_file() and p.parent.name != "tmp" and p.suffix in (".png", ".mp4"))
    assert left == ["inputs/inflight/first_frame.png"]


def test_the_sweeper_pages_through_many_expired_jobs(tmp_path: Path) -> None:
    """More expired jobs than a page: every one goes, a page at a time, in one sweep."""
    services = Services.build(Settings(data_dir=tmp_path, retention_s=3600, run_workers=False))

    async def run() -> tuple[int, dict[str, int]]:
        store = services.store
        key = (await store.create(10)).key
        for n in range(7):
            await store.submit(Job(id=f"j{n}", key_id=key.id, task=VideoTask(kind="t2v", prompt="p"),
                                   price=1, status=JobStatus.QUEUED, created_at=time.time(), dialect="segmind"),
                               SubmitLimits(None, 9))
            await store.fail(f"j{n}", "cancelled")
        services.clock = lambda: time.time() + 7200
        return await Sweeper(services).sweep_once(page=3), await store.counts()

    assert asyncio.run(run()) == (7, {})


def test_leftovers_are_swept_and_running_jobs_kept(tmp_path: Path) -> None:
    """A cancelled job's late output and poster, ``.put-*`` temporaries, ``tmp/<id>/``
    scratch folders of jobs no longer running and ``tmp/.upload-*`` form files of a process
    that died mid-request (before: all of them stayed for good)."""
    from takeone.core.blobs import poster_key

    services = Services.build(Settings(data_dir=tmp_path, retention_s=3600, run_workers=False))
    scratch = services.settings.scratch_dir

    def old(path: Path) -> Path:
        then = time.time() - 3 * 3600
        os.utime(path, (then, then))
        return path

    async def run() -> int:
        store, blobs = services.store, services.blobs
        key = (await store.create(10)).key
        for job_id in ("cancelled", "running"):
            await store.submit(Job(id=job_id, key_id=key.id, task=VideoTask(kind="t2v"), price=1,
                                   status=JobStatus.QUEUED, created_at=time.time(), dialect="segmind"),
                               SubmitLimits(None, 9))
            await store.claim("h/1/0", 30)
        await store.fail("cancelled", "cancelled by the client")
        blobs.put(output_key("cancelled"), b"mp4 written as the cancel landed")
        blobs.put(poster_key("cancelled"), b"jpg")
        for job_id in ("cancelled", "running", "gone"):
            (scratch / job_id).mkdir(parents=True, exist_ok=True)
            (scratch / job_id / "first_frame.png").write_bytes(b"png")
            old(scratch / job_id)
        (tmp_path / "outputs" / ".put-abc123").write_bytes(b"half")
        old(tmp_path / "outputs" / ".put-abc123")
        (tmp_path / "outputs" / ".put-fresh").write_bytes(b"a write in progress")
        (scratch / ".upload-dead").write_bytes(b"a form file of a process that died")
        old(scratch / ".upload-dead")
        (scratch / ".upload-live").write_bytes(b"a request still reading its form")
        sweeper = Sweeper(services)
        orphans = await sweeper.sweep_orphans()
        services.clock = lambda: time.time() + 7200
        await sweeper.sweep_once()
        return orphans

    orphans = asyncio.run(run())
    assert orphans == 4  # the temporary, the dead upload, the scratch folders of "cancelled" and "gone"
    assert sorted(p.name for p in scratch.iterdir()) == [".upload-live", "running"]
    assert sorted(p.name for p in (tmp_path / "outputs").iterdir()) == [".put-fresh"]
