"""``GET /metrics`` on a real server: a completed job, a failed one and a retried webhook show
up in the Prometheus text, parsed with ``prometheus_client``'s own parser."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.harness import Server, running
from tests.integration.webhooks import Receiver

JOB = {"prompt": "a fox", "duration": 5, "generate_audio": False}


def scrape(server: Server) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = httpx.get(server.url + "/metrics")  # no API key
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain"), r.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def wait_for(check: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_metrics_after_a_completed_and_a_failed_job(fresh_dir: Path) -> None:
    receiver = Receiver([500, 200])
    args = ("--profile", "tiny", "--debug-step-delay", "0.3", "--sync-timeout", "1",
            "--webhook-retry-delays", "0.5,0.5")
    try:
        with running(fresh_dir, *args) as server:
            before = scrape(server)
            assert before[("takeone_store_up", ())] == 1
            assert before[("takeone_workers", (("state", "ready"),))] == 1
            assert before[("takeone_jobs_finished_total", (("outcome", "completed"),))] == 0
            h = {"x-api-key": server.key(10)}
            queued = httpx.post(server.url + "/v2/kling-2.6", json=JOB, headers=h,
                                params={"webhook": receiver.url()}).json()["request_id"]
            busy = scrape(server)
            assert busy[("takeone_queue_depth", ())] + busy[("takeone_workers", (("state", "busy"),))] == 1
            blocking = httpx.post(server.url + "/v1/kling-2.6", json=JOB, headers=h, timeout=60)
            assert blocking.status_code == 504  # its job failed: the deadline passed
            status = server.url + f"/v2/requests/{queued}/status"
            wait_for(lambda: httpx.get(status, headers=h).json()["status"] == "COMPLETED")
            wait_for(lambda: len(receiver.got) == 2)
            wait_for(lambda: scrape(server)[("takeone_webhook_deliveries_total",
                                             (("outcome", "delivered"),))] == 1)
            after = scrape(server)
    finally:
        receiver.close()
    assert after[("takeone_jobs_finished_total", (("outcome", "completed"),))] == 1
    assert after[("takeone_jobs_finished_total", (("outcome", "failed"),))] == 1
    assert after[("takeone_job_duration_seconds_count", (("outcome", "completed"),))] == 1
    assert after[("takeone_job_duration_seconds_sum", (("outcome", "failed"),))] >= 1.0
    assert after[("takeone_denoising_step_seconds_count", ())] > 0
    assert after[("takeone_denoising_step_seconds_sum", ())] >= 0.3 * after[
        ("takeone_denoising_step_seconds_count", ())] * 0.9
    assert after[("takeone_queue_depth", ())] == 0
    assert after[("takeone_jobs", (("status", "completed"),))] == 1  # from the store: cluster-wide
    assert after[("takeone_jobs", (("status", "failed"),))] == 1
    assert after[("takeone_jobs", (("status", "processing"),))] == 0
    assert after[("takeone_webhook_deliveries_total", (("outcome", "retrying"),))] == 1


def test_metrics_is_not_in_the_openapi_document(server: Server) -> None:
    assert "/metrics" not in httpx.get(server.url + "/openapi.json").json()["paths"]
    assert httpx.get(server.url + "/metrics").status_code == 200


