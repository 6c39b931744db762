"""GPU worker actors on a real Ray cluster (a head and two fake-GPU nodes on 127.0.0.1): the
pool grows from zero with the queue and shrinks back, a job whose node disappears runs again
elsewhere and is charged once, a cancel stops a running actor's job within about a step, and
an actor killed outright is restarted by Ray. The API is a real ``takeone serve
--no-workers``; the pool runs in this process against the same SQLite file and files."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from benchmarks.services.ray_cluster import LocalRayCluster
from takeone.backends.factory import open_store
from takeone.core.jobs import Job
from takeone.core.settings import Settings
from takeone.dispatch.ray.actor import ActorState
from takeone.dispatch.ray.pool import RayDispatcher
from tests.integration.harness import Server
from tests.mp4probe import probe

pytestmark = pytest.mark.cluster

JOB = {"prompt": "a steady fox", "duration": 5, "generate_audio": False}  # costs 0.438
PRICE = 0.438
T = TypeVar("T")


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalRayCluster]:
    ray = LocalRayCluster(nodes=2).start()
    try:
        ray.connect()
        print(f"ray cluster up in {ray.startup_s:.1f} s")
        yield ray
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    server = Server(tmp_path_factory.mktemp("ray-api"), ["--no-workers", "--profile", "tiny"])
    server.start(wait_ready=False)
    yield server
    server.stop()


class PoolRunner:
    """A :class:`RayDispatcher` on an event loop of its own thread, as a server runs it."""

    def __init__(self, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        self.store = open_store(settings)
        self.pool = RayDispatcher(self.store, settings, poll_s=0.5)

    def call(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def job(self, job_id: str) -> Job:
        job = self.call(self.store.get(job_id))
        assert job is not None
        return job

    def states(self) -> list[ActorState]:
        import ray

        return [ray.get(m.handle.state.remote(), timeout=30) for m in self.pool.members]

    def close(self) -> None:
        self.call(self.pool.stop(), timeout=120)
        self.loop.call_soon_threadsafe(self.loop.stop)


@pytest.fixture()
def make_pool(api: Server, cluster: LocalRayCluster) -> Iterator[Callable[..., PoolRunner]]:
    runners: list[PoolRunner] = []
    base = Settings(data_dir=api.data_dir, profile="tiny", worker_backend="ray", ray_address=cluster.address,
                    worker_idle_s=2.0, heartbeat_s=1.0, lease_s=10.0)

    def make(**changes: Any) -> PoolRunner:
        runner = PoolRunner(replace(base, **changes))
        runner.call(runner.pool.start())
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        runner.close()


def submit(api: Server, key: str) -> str:
    r = httpx.post(api.url + "/v2/kling-2.6", json=JOB, headers={"x-api-key": key}, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["request_id"])


def result(api: Server, key: str, rid: str) -> dict[str, Any]:
    return dict(httpx.get(f"{api.url}/v2/requests/{rid}", headers={"x-api-key": key}, timeout=15).json())


def wait_for(check: Callable[[], object], timeout: float, why: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, why
        time.sleep(0.2)
    return value


def finished(api: Server, key: str, rid: str, timeout: float = 120) -> dict[str, Any]:
    return dict(wait_for(lambda: (r := result(api, key, rid))["status"] in ("COMPLETED", "FAILED") and r,
                         timeout, f"job {rid} never finished:\n{api.log()}"))


def running_on(runner: PoolRunner, rid: str) -> ActorState:
    """The actor running ``rid``, once it runs it."""
    def find() -> ActorState | None:
        return next((s for s in runner.states() if s.job_id == rid), None)

    return wait_for(find, 120, f"no actor ever ran {rid}")  # type: ignore[no-any-return]


def test_the_pool_grows_from_zero_with_the_queue_and_shrinks_back(
        api: Server, make_pool: Callable[..., PoolRunner]) -> None:
    runner = make_pool(min_workers=0, max_workers=2)
    time.sleep(1.5)
    assert runner.pool.view().actors == 0
    health = api.health()
    assert any(w["id"].endswith("/pool") and w["state"] == "ready" for w in health["workers"]), health
    key = api.key(10)
    rids = [submit(api, key), submit(api, key)]
    wait_for(lambda: runner.pool.view().actors == 2, 30, "the pool never grew to two actors")
    results = [finished(api, key, rid) for rid in rids]
    for r in results:
        assert r["status"] == "COMPLETED", r
        video = probe(httpx.get(r["output"], timeout=30).content)
        assert video.frames > 0 and video.codec == "h264"
    owners = {s.owner for s in runner.states()}
    assert len(owners) == 2 and all(o.split("/")[2] == "0" for o in owners)
    listed = {w["id"] for w in api.health()["workers"]}
    assert owners <= listed, listed
    assert api.balance(key) == pytest.approx(10 - 2 * PRICE)
    wait_for(lambda: not runner.pool.members, 40, "the idle pool never shrank back to zero")


def test_a_job_whose_node_disappears_runs_again_elsewhere_and_is_charged_once(
        api: Server, cluster: LocalRayCluster, make_pool: Callable[..., PoolRunner]) -> None:
    runner = make_pool(min_workers=1, max_workers=1, debug_step_delay_s=1.5)
    key = api.key(10)
    rid = submit(api, key)
    state = running_on(runner, rid)
    cluster.remove_node_of(state.pid)
    try:
        r = finished(api, key, rid)
        assert r["status"] == "COMPLETED", r
        assert probe(httpx.get(r["output"], timeout=30).content).frames > 0
        assert runner.job(rid).attempts == 2
        assert api.balance(key) == pytest.approx(10 - PRICE)
        assert {s.node_id for s in runner.states()} != {state.node_id}
    finally:
        cluster.add_node()


def test_cancel_reaches_a_running_actor_and_a_killed_actor_is_restarted(
        api: Server, make_pool: Callable[..., PoolRunner]) -> None:
    runner = make_pool(min_workers=1, max_workers=1, debug_step_delay_s=2.5)  # 3 steps
    key = api.key(10)
    rid = submit(api, key)
    before = running_on(runner, rid)
    wait_for(lambda: runner.job(rid).progress, 30, "the job never made progress")
    r = httpx.post(f"{api.url}/v2/requests/{rid}/cancel", headers={"x-api-key": key}, timeout=15)
    assert r.status_code == 200 and r.json()["status"] == "FAILED", r.text
    cancelled = time.monotonic()
    wait_for(lambda: all(s.job_id is None for s in runner.states()), 10, "the actor kept running the job")
    assert time.monotonic() - cancelled < 4.0  # within a 2.5 s step; the 2 steps left take 5 s
    assert api.balance(key) == pytest.approx(10)
    after = finished(api, key, submit(api, key))
    assert after["status"] == "COMPLETED", after
    assert [s.pid for s in runner.states()] == [before.pid]  # the same actor served it

    os.kill(before.pid, signal.SIGKILL)
    rid = submit(api, key)
    r2 = finished(api, key, rid)
    assert r2["status"] == "COMPLETED", r2
    assert runner.job(rid).attempts == 1
    (restarted,) = runner.states()
    assert restarted.pid != before.pid
    assert api.balance(key) == pytest.approx(10 - 2 * PRICE)


def test_an_actor_runs_compatible_queued_jobs_as_one_batch(
        api: Server, make_pool: Callable[..., PoolRunner]) -> None:
    """A Ray actor claims and runs a batch as a local worker does (``--max-batch``), each job
    completed and charged as itself."""
    key = api.key(10)
    rids = [submit(api, key) for _ in range(3)]  # queued before the actor exists: one claim takes all
    runner = make_pool(min_workers=1, max_workers=1, max_batch=4, batch_window_ms=0.0)
    for rid in rids:
        r = finished(api, key, rid)
        assert r["status"] == "COMPLETED", r
        assert runner.job(rid).metrics["batch_size"] == 3
        assert probe(httpx.get(r["output"], timeout=30).content).frames > 0
    assert api.balance(key) == pytest.approx(10 - 3 * PRICE)


def test_a_pool_whose_actors_cannot_load_cools_down_and_recovers_once_mended(
        api: Server, make_pool: Callable[..., PoolRunner], tmp_path: Path) -> None:
    """Saved tiny weights with a broken model_index.json: the actor's loads raise the same
    error three times, it cools down and the pool says so on /healthz (before: the actor and
    the pool failed for good and the queue was failed); the job waits, and once the file is
    mended the next try loads it: the job completes, charged once, on its first attempt."""
    from diffusers import LTX2Pipeline

    from takeone.models.ltx2.tiny import build_tiny_components

    weights = tmp_path / "weights"
    LTX2Pipeline(**build_tiny_components()).save_pretrained(weights)
    index = weights / "model_index.json"
    good = index.read_bytes()
    index.write_text("{ not json")
    key = api.key(10)
    runner = make_pool(min_workers=1, max_workers=1, weights_dir=weights, load_cooldown_s=3.0)
    rid = submit(api, key)

    def cooling() -> dict[str, Any] | None:
        r = httpx.get(api.url + "/healthz", timeout=5)
        return dict(r.json()) if r.status_code == 503 and "cooling down" in (r.json()["error"] or "") else None

    try:
        health = wait_for(cooling, 180, "/healthz never said the pool cools down")
    except AssertionError:
        raise AssertionError(f"no cool-down: {api.health()}\n{runner.states()}\n{api.log()[-3000:]}") from None
    assert health["status"] == "unavailable" and "failed to load 3 times" in health["error"], health
    assert any(w["id"].endswith("/pool") and w["state"] == "cooling" for w in health["workers"]), health
    assert result(api, key, rid)["status"] == "QUEUED"
    index.write_bytes(good)  # the operator mends the file; nothing restarts
    r = finished(api, key, rid, timeout=120)
    assert r["status"] == "COMPLETED", r
    assert runner.job(rid).attempts == 1
    assert api.balance(key) == pytest.approx(10 - PRICE)


def test_the_api_process_never_imports_ray_or_torch_with_the_ray_package(tmp_path: Path) -> None:
    import subprocess
    import sys

    code = ("import sys, takeone.dispatch.ray.pool, takeone.dispatch.ray.actor; "
            "print(sorted(m for m in ('ray', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.stdout.strip() == "[]", out.stderr
