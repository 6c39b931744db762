"""The Ray pool's own rest when worker actors fail to start (their ``__init__`` raises):
after three in a row it creates no actor for ``load_cooldown_s`` (doubling), reports
``cooling`` (/healthz 503 with the reason), and fails only queued jobs past ``job_timeout_s``.
A real store and the real pool object, without a Ray cluster: nothing here creates an actor."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from takeone.core.jobs import Job, JobStatus, SubmitLimits
from takeone.core.settings import Settings
from takeone.core.task import VideoTask
from takeone.dispatch.ray.pool import MAX_START_FAILURES, RayDispatcher
from takeone.edge.health import health
from takeone.edge.services import Services


def test_actors_failing_to_start_make_the_pool_rest_then_try_again(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, run_workers=False, worker_backend="ray", max_workers=1,
                        load_cooldown_s=0.5, job_timeout_s=60, heartbeat_s=5)
    services = Services.build(settings)
    pool = RayDispatcher(services.store, settings)

    async def go() -> None:
        key = (await services.store.create(10)).key
        for job_id, age in (("overdue", 120), ("fresh", 0)):
            await services.store.submit(Job(id=job_id, key_id=key.id, task=VideoTask(kind="t2v"), price=1,
                                            status=JobStatus.QUEUED, created_at=time.time() - age, dialect="segmind"),
                                        SubmitLimits(None, 9))
        for n in range(MAX_START_FAILURES):
            assert pool._pool_state() == "ready", n  # still trying: Ray may start the next one
            pool._start_failed("RuntimeError: the store is not reachable")
        assert pool._pool_state() == "cooling"
        assert pool.cooling is not None and "3 worker actors in a row failed to start" in pool.cooling
        assert "next try in 0 s" in pool.cooling or "next try in 1 s" in pool.cooling
        pool._resize(queued=2)
        assert pool.members == []  # no actor created while it rests
        await pool._report("cooling")
        code, body = await health(services)
        assert code == 503 and body["status"] == "unavailable" and "cooling down" in str(body["error"])
        await pool._fail_overdue()
        overdue, fresh = await services.store.get("overdue"), await services.store.get("fresh")
        assert overdue is not None and overdue.status is JobStatus.FAILED
        assert "no worker could serve it within 60 s" in (overdue.error or "")
        assert fresh is not None and fresh.status is JobStatus.QUEUED  # it waits
        assert await services.store.balance(key.id) == 9  # the overdue one released, the waiting one held
        await asyncio.sleep(0.6)
        assert pool._pool_state() == "ready"  # rested: it will create actors again
        for _ in range(MAX_START_FAILURES):
            pool._start_failed("RuntimeError: the store is not reachable")
        assert pool.cool_until - time.monotonic() > 0.6  # the second rest is twice the first

    asyncio.run(go())
