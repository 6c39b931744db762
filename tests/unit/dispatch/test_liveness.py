"""Knowing that a process on another host is gone: API processes and worker slots report
every heartbeat; a silent one is dead, and the blocking jobs it waited for are released."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

from takeone.core.jobs import Job, JobStatus, SubmitLimits, WorkerStatus
from takeone.core.settings import Settings
from takeone.core.task import VideoTask
from takeone.dispatch.identity import API_STATE, liveness, process_identity
from takeone.edge.background.presence import Presence, fail_lost_callers
from takeone.edge.health import health
from takeone.edge.services import Services

ELSEWHERE = "another-host/4242"


def _report(identity: str, seen_at: float, state: str = API_STATE) -> WorkerStatus:
    return WorkerStatus(id=identity, profile="tiny", state=state, seen_at=seen_at)


def test_a_silent_or_stopped_process_elsewhere_is_dead() -> None:
    now = time.time()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    dead = liveness([_report(ELSEWHERE, now - 5), _report("far/1", now - 31), _report("far/2", now, "stopped")],
                    now, heartbeat_s=5)
    assert not dead(ELSEWHERE)  # reported 5 s ago
    assert dead("far/1")  # silent for six heartbeats
    assert dead("far/2")  # said it stopped
    assert not dead("never-reported/7")  # unknown: presumed alive (its lease still runs out)
    assert dead(f"{process_identity().split('/')[0]}/{gone.pid}")  # this host: checked directly
    assert not dead(process_identity())


def _blocking_job(services: Services, caller: str) -> Job:
    async def go() -> Job:
        key = (await services.store.create(10)).key
        job = Job(id=f"b-{caller.replace('/', '-')}", key_id=key.id, task=VideoTask(kind="t2v", prompt="x"),
                  price=1.0, status=JobStatus.QUEUED, created_at=time.time(), blocking=True, caller=caller,
                  dialect="segmind")
        return await services.store.submit(job, SubmitLimits(None, 9))

    return asyncio.run(go())


def test_blocking_jobs_of_a_silent_replica_elsewhere_are_failed_and_released(tmp_path: Path) -> None:
    services = Services.build(Settings(data_dir=tmp_path, run_workers=False, heartbeat_s=5))
    silent, alive = _blocking_job(services, "far/1"), _blocking_job(services, ELSEWHERE)

    async def go() -> list[str]:
        await services.store.report_worker(_report("far/1", time.time() - 60))
        await services.store.report_worker(_report(ELSEWHERE, time.time()))
        return [job.id for job in await fail_lost_callers(services)]

    assert asyncio.run(go()) == [silent.id]
    after = asyncio.run(services.store.get(silent.id))
    assert after is not None and after.status is JobStatus.FAILED and "gone" in (after.error or "")
    assert asyncio.run(services.store.balance(silent.key_id)) == 10  # released
    assert asyncio.run(services.store.get(alive.id)).status is JobStatus.QUEUED  # type: ignore[union-attr]


def test_an_api_process_reports_itself_but_is_not_a_worker(tmp_path: Path) -> None:
    services = Services.build(Settings(data_dir=tmp_path, run_workers=False, heartbeat_s=5))

    async def go() -> tuple[list[WorkerStatus], int, dict[str, object]]:
        presence = Presence(services)
        task = asyncio.create_task(presence.run_forever())
        await asyncio.sleep(0.3)
        reports = await services.store.workers()
        code, body = await health(services)
        task.cancel()
        await presence.leave()
        return reports, code, body

    reports, code, body = asyncio.run(go())
    assert [(r.id, r.state) for r in reports] == [(services.identity, API_STATE)]
    assert code == 503 and body["workers"] == []  # an API process generates nothing
    after = asyncio.run(services.store.workers())
    assert [r.state for r in after] == ["stopped"]
