"""Cluster mode end to end, on real parts: two API replicas on PostgreSQL and a SeaweedFS
bucket, GPU worker actors on a 3-node Ray cluster, driven by the segmind SDK; then the
faults an operator meets (a replica killed, a Ray node gone, PostgreSQL restarted, the bucket
away for a while), each checked against the ledger: nothing lost, nothing charged twice."""

from __future__ import annotations

import base64
import contextlib
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import segmind
from segmind.v2 import AsyncJob

from benchmarks.services.stack import ClusterStack, wait_for
from tests.integration.harness import Server, png_bytes
from tests.mp4probe import probe

pytestmark = [pytest.mark.cluster, pytest.mark.postgres]

JOB = {"prompt": "a steady fox", "duration": 5, "generate_audio": False}  # costs 0.438
PRICE = 0.438


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClusterStack]:
    # Each denoising step takes 1 s more (3 steps), so a job runs long enough to be cancelled or to
    # lose its node mid-way; min 1 actor so the replicas report ready from the start.
    with ClusterStack(tmp_path_factory.mktemp("cluster"), min_workers=1, step_delay_s=1.0) as s:
        yield s


def client(server: Server, key: str) -> segmind.SegmindClient:
    return segmind.SegmindClient(api_key=key, base_url=server.url + "/v1", timeout=120)


def job_on(server: Server, key: str, job: AsyncJob) -> AsyncJob:
    """The same job, seen through another replica (the URLs are the only difference)."""
    status, response = (u.split("/v2/", 1)[1] for u in (job.status_url, job.response_url))
    return AsyncJob(request_id=job.request_id, status_url=f"{server.url}/v2/{status}",
                    response_url=f"{server.url}/v2/{response}", submit_response=job.submit_response,
                    _client=client(server, key))


def status(server: Server, key: str, rid: str) -> dict[str, Any]:
    r = httpx.get(f"{server.url}/v2/requests/{rid}/status", headers={"x-api-key": key}, timeout=15)
    return dict(r.json())


def submit(server: Server, key: str, body: dict[str, Any] | None = None) -> str:
    r = httpx.post(server.url + "/v2/kling-2.6", json=body or JOB, headers={"x-api-key": key}, timeout=30)
    assert r.status_code == 200, r.text
    return str(r.json()["request_id"])


def finished(server: Server, key: str, rid: str, timeout: float, stack: ClusterStack) -> dict[str, Any]:
    return dict(wait_for(lambda: (s := status(server, key, rid))["status"] in ("COMPLETED", "FAILED") and s,
                         timeout, f"job {rid} did not finish", stack.logs))


def ledger(stack: ClusterStack, rid: str) -> list[str]:
    return sorted(str(r[0]) for r in stack.sql("SELECT kind FROM ledger WHERE job_id = %s", rid))


def test_a_job_submitted_on_one_replica_is_polled_and_downloaded_through_the_other(stack: ClusterStack) -> None:
    one, two = stack.replicas
    key = stack.key(10)
    job = client(one, key).submit_async("kling-2.6", **JOB)
    result = job_on(two, key, job).wait(timeout=180, interval=0.2)
    assert result["status"] == "COMPLETED", result
    link = str(result["output"])
    assert link.startswith(stack.s3.endpoint), link  # a presigned link to the bucket itself
    video = httpx.get(link, timeout=30)
    assert video.status_code == 200
    info = probe(video.content)
    assert info.frames > 0 and info.width > 0
    tampered = link.replace("Signature=", "Signature=0")
    assert httpx.get(tampered, timeout=30).status_code == 403
    assert stack.credits(key, replica=0) == pytest.approx(10 - PRICE)
    assert ledger(stack, job.request_id) == ["commit", "reserve"]


def test_blocking_calls_work_on_both_replicas(stack: ClusterStack) -> None:
    key = stack.key(10)
    for server in stack.replicas:
        response = client(server, key).run_sync("kling-2.6", **JOB)
        assert response.headers["content-type"].startswith("video/mp4")
        assert probe(response.content).frames > 0
    assert stack.credits(key, replica=1) == pytest.approx(10 - 2 * PRICE)


def test_a_cancel_on_the_other_replica_stops_the_running_job(stack: ClusterStack) -> None:
    one, two = stack.replicas
    key = stack.key(10)
    rid = submit(one, key)
    wait_for(lambda: status(two, key, rid)["status"] == "PROCESSING", 120, "never started", stack.logs)
    r = httpx.post(f"{two.url}/v2/requests/{rid}/cancel", headers={"x-api-key": key}, timeout=15)
    assert r.status_code == 200, r.text
    assert status(one, key, rid)["status"] == "FAILED"
    assert stack.credits(key) == pytest.approx(10)
    # the actor stops at its next step and serves the next job
    assert finished(one, key, submit(two, key), 180, stack)["status"] == "COMPLETED"
    assert ledger(stack, rid) == ["release", "reserve"]


def test_twelve_concurrent_submits_across_two_replicas_on_three_jobs_of_credit(stack: ClusterStack) -> None:
    key = stack.key(round(3 * PRICE, 3))
    answers: list[int] = []

    def one(i: int) -> None:
        server = stack.replicas[i % 2]
        r = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers={"x-api-key": key}, timeout=60)
        answers.append(r.status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200] * 3 + [406] * 9, answers
    key_id = stack.key_id(key)
    (balance, reserved), = stack.sql("SELECT balance, reserved FROM api_keys WHERE id = %s", key_id)
    assert balance + reserved == round(3 * PRICE * 1_000_000)


def test_a_killed_replica_loses_no_job(stack: ClusterStack, tmp_path: Path) -> None:
    """SIGKILL of an API replica: the other keeps serving, the jobs it accepted run, and a
    blocking call it was answering is failed and released (nobody is there to receive it)."""
    key = stack.key(10)
    doomed = Server(tmp_path / "doomed", [*stack.backend_args(), "--no-workers"], env=stack.env()).start()
    queued = [submit(doomed, key) for _ in range(2)]

    def hold_a_blocking_call() -> None:
        with contextlib.suppress(httpx.TransportError):  # the replica dies under it
            httpx.post(doomed.url + "/v1/kling-2.6", json=JOB, headers={"x-api-key": key}, timeout=120)

    blocking = threading.Thread(target=hold_a_blocking_call, daemon=True)
    blocking.start()
    time.sleep(1.0)
    doomed.kill(signal.SIGKILL)
    survivor = stack.replicas[1]
    outcomes = [finished(survivor, key, rid, 240, stack)["status"] for rid in queued]
    assert outcomes == ["COMPLETED", "COMPLETED"]
    key_id = stack.key_id(key)
    wait_for(lambda: not stack.sql("SELECT 1 FROM jobs WHERE key_id = %s AND status IN ('QUEUED', 'PROCESSING')",
                                   key_id), 180, "a job of the killed replica is stuck", stack.logs)
    rows = stack.sql("SELECT status, charge FROM jobs WHERE key_id = %s ORDER BY created_at", key_id)
    assert len(rows) == 3 and all(r[1] in ("committed", "released") for r in rows), rows
    charged = sum(1 for r in rows if r[1] == "committed")
    assert stack.credits(key, replica=1) == pytest.approx(10 - charged * PRICE)


def test_postgres_restarted_mid_run_loses_nothing(stack: ClusterStack) -> None:
    key = stack.key(10)
    one, two = stack.replicas
    rids = [submit(one, key), submit(two, key)]
    wait_for(lambda: status(one, key, rids[0])["status"] == "PROCESSING", 120, "never started", stack.logs)
    stack.pg.restart()
    for rid in rids:
        assert finished(two, key, rid, 240, stack)["status"] == "COMPLETED"
    assert finished(one, key, submit(one, key), 240, stack)["status"] == "COMPLETED"  # reconnected
    assert stack.credits(key) == pytest.approx(10 - 3 * PRICE)
    for rid in rids:
        assert ledger(stack, rid) == ["commit", "reserve"]


def test_the_bucket_away_for_a_while(stack: ClusterStack) -> None:
    """Submits that must store an input get a clear 503 and keep their credits; a job whose
    result cannot be stored fails with the reason and is released; then all is well again."""
    key = stack.key(10)
    one = stack.replicas[0]
    image = "data:image/png;base64," + base64.b64encode(png_bytes((64, 64))).decode()
    rid = submit(one, key)
    wait_for(lambda: status(one, key, rid)["status"] == "PROCESSING", 120, "never started", stack.logs)
    stack.s3.kill()
    try:
        r = httpx.post(one.url + "/v2/kling-2.1", json={"image": image, "duration": 5},
                       headers={"x-api-key": key}, timeout=60)
        assert r.status_code == 503, r.text
        assert "storage" in r.text.lower() or "bucket" in r.text.lower(), r.text
        done = finished(one, key, rid, 240, stack)
    finally:
        stack.s3.start()
    if done["status"] == "FAILED":  # the output could not be stored: released, no object left
        assert ledger(stack, rid) == ["release", "reserve"]
        left = stack.s3.client().list_objects_v2(Bucket="takeone", Prefix=f"videos/outputs/{rid}")
        assert left.get("KeyCount", 0) == 0
    else:  # the worker's retries outlasted the pause
        assert ledger(stack, rid) == ["commit", "reserve"]
    assert finished(one, key, submit(one, key), 240, stack)["status"] == "COMPLETED"


def test_a_ray_node_lost_mid_job_runs_the_job_elsewhere_charged_once(stack: ClusterStack) -> None:
    key = stack.key(10)
    one = stack.replicas[0]
    rid = submit(one, key)
    wait_for(lambda: status(one, key, rid)["status"] == "PROCESSING", 120, "never started", stack.logs)
    (owner,), = stack.sql("SELECT lease_owner FROM jobs WHERE id = %s", rid)
    assert stack.ray is not None
    stack.ray.remove_node_of(int(str(owner).split("/")[1]))
    done = finished(one, key, rid, 300, stack)
    assert done["status"] == "COMPLETED", done
    (attempts,), = stack.sql("SELECT attempts FROM jobs WHERE id = %s", rid)
    assert attempts == 2
    assert ledger(stack, rid) == ["commit", "reserve"]
    assert stack.credits(key) == pytest.approx(10 - PRICE)


def test_progress_and_queue_position_through_either_replica(stack: ClusterStack) -> None:
    """More jobs than actors: the waiting ones show their place in the one shared queue, the
    running ones their progress, whichever replica is asked."""
    one, two = stack.replicas
    key = stack.key(10)
    rids = [submit(one if i % 2 else two, key) for i in range(6)]
    positions: set[int] = set()
    progress: set[float] = set()

    def look() -> bool:
        for i, rid in enumerate(rids):
            body = status(stack.replicas[i % 2], key, rid)
            metrics = body.get("metrics") or {}
            if body["status"] == "QUEUED" and metrics.get("queue_position"):
                positions.add(int(metrics["queue_position"]))
            if body["status"] == "PROCESSING":
                progress.add(float(metrics.get("progress", 0)))
        return all(status(two, key, rid)["status"] == "COMPLETED" for rid in rids)

    wait_for(look, 300, "the jobs did not all complete", stack.logs)
    assert positions and min(positions) == 1, positions
    assert any(0 < p < 1 for p in progress), progress
    assert stack.credits(key) == pytest.approx(10 - 6 * PRICE)


def test_a_lora_added_through_the_bucket_runs_on_a_ray_worker(stack: ClusterStack, tmp_path: Path) -> None:
    from benchmarks.services.stack import BUCKET
    from tests.support.loras import make_lora

    path = make_lora(tmp_path / "cel.safetensors", seed=3)
    out = stack.takeone("loras", "add", "cel", str(path), "--profile", "tiny", "--surcharge", "0.25",
                        "--storage", f"s3://{BUCKET}/videos", "--s3-endpoint", stack.s3.endpoint,
                        "--data-dir", str(tmp_path / "admin"))
    assert "added LoRA 'cel'" in out
    one, two = stack.replicas
    key = stack.key(10)
    h = {"x-api-key": key}
    listed = httpx.get(two.url + "/v1/loras", headers=h, timeout=15).json()["data"]
    assert [entry["name"] for entry in listed] == ["cel"]
    r = httpx.post(one.url + "/v2/kling-2.6", json={**JOB, "loras": [{"name": "cel", "scale": 0.9}]},
                   headers=h, timeout=30)
    assert r.status_code == 200, r.text
    rid = r.json()["request_id"]
    def finished() -> dict[str, Any] | None:
        body: dict[str, Any] = httpx.get(f"{two.url}/v2/requests/{rid}/status", headers=h, timeout=15).json()
        return body if body["status"] in ("COMPLETED", "FAILED") else None

    status = wait_for(finished, 180, "the LoRA job", stack.logs)
    assert status["status"] == "COMPLETED", status
    assert status["metrics"]["loras"] == [{"name": "cel", "scale": 0.9}]
    assert stack.credits(key, replica=1) == pytest.approx(10 - PRICE - 0.25)
