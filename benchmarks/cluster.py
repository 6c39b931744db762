"""Cluster overhead: the same tiny jobs through the embedded server and through a cluster.

    python benchmarks/cluster.py --jobs 20

The embedded side is ``takeone serve --profile tiny --workers W`` (SQLite, local files,
local worker processes). The cluster side is what ``benchmarks/services/stack.py`` starts: a
PostgreSQL server, a SeaweedFS bucket, a 3-node Ray cluster with W worker actors, and two
``serve --no-workers`` replicas; jobs alternate between the replicas and are polled through
the other one. Both sides run the same phases, side by side in one run:

- ``sequential``: one job at a time, from ``POST /v2/kling-2.6`` until a status poll (every
  ``--poll`` seconds) sees ``COMPLETED`` and the result link is fetched. Each job's time in
  the system is also read from the store's own timestamps (``finished_at - created_at``,
  written by the store's clock at submit and at completion), which polling cannot blur; what
  the cluster adds per job is the difference of those medians;
- ``burst``: ``--jobs`` submitted at once, then polled; throughput in jobs per second.

The status columns are the latency (p50, p99) of every status call of both phases.

Every column gives min / median / max over the jobs. The last line is one figure:
``cluster overhead per job (store timestamps, median - median): X ms`` (the target is under
100 ms). Uses the test suite's throwaway servers, so it needs
what the tests need (PostgreSQL's binaries, the test extra).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.services.server import Server
from benchmarks.services.stack import ClusterStack
from takeone.backends.postgres.store import PostgresStore
from takeone.backends.sqlite.store import SqliteStore
from takeone.core.store import Store

JOB = {"prompt": "a steady fox", "duration": 5, "generate_audio": False, "seed": 7}


@dataclass
class Side:
    """One deployment as the benchmark sees it: where to submit (in turn) and where to poll."""

    name: str
    submit_urls: list[str]
    poll_urls: list[str]
    key: str
    job_s: list[float] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)
    store_s: list[float] = field(default_factory=list)  # finished_at - created_at, per job
    status_ms: list[float] = field(default_factory=list)
    burst_s: float = 0.0


def run_job(side: Side, index: int, poll_s: float, client: httpx.Client,
            ids: list[str] | None = None) -> float:
    """Submit on one URL, poll on another, fetch the result; seconds from submit to result."""
    headers = {"x-api-key": side.key}
    submit = side.submit_urls[index % len(side.submit_urls)]
    poll = side.poll_urls[index % len(side.poll_urls)]
    start = time.perf_counter()
    r = client.post(submit + "/v2/kling-2.6", json=JOB, headers=headers)
    r.raise_for_status()
    rid = r.json()["request_id"]
    if ids is not None:
        ids.append(rid)
    while True:
        t = time.perf_counter()
        s = client.get(f"{poll}/v2/requests/{rid}/status", headers=headers)
        side.status_ms.append((time.perf_counter() - t) * 1000)
        state = s.json()["status"]
        if state == "COMPLETED":
            break
        if state == "FAILED":
            raise SystemExit(f"{side.name}: job {rid} failed: {s.text}")
        time.sleep(poll_s)
    client.get(f"{poll}/v2/requests/{rid}", headers=headers).raise_for_status()
    return time.perf_counter() - start


def measure(side: Side, jobs: int, poll_s: float, warmup: int, store: Store) -> None:
    with httpx.Client(timeout=120) as client:
        for i in range(warmup):
            run_job(side, i, poll_s, client)
        side.status_ms.clear()
        side.job_s = [run_job(side, i, poll_s, client, side.ids) for i in range(jobs)]
    side.store_s = store_seconds(store, side.ids)
    side.burst_s = burst(side, jobs, poll_s)


def store_seconds(store: Store, ids: list[str]) -> list[float]:
    """Each job's submit-to-finish time by the store's own clock (no polling interval in it)."""
    async def read() -> list[float]:
        jobs = [await store.get(rid) for rid in ids]
        return [j.finished_at - j.created_at for j in jobs if j is not None and j.finished_at is not None]

    try:
        return asyncio.run(read())
    finally:
        store.close()


def burst(side: Side, jobs: int, poll_s: float) -> float:
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            with httpx.Client(timeout=300) as client:
                run_job(side, i, poll_s, client)
        except BaseException as exc:  # noqa: BLE001 (reported below)
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(jobs)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit(f"{side.name}: burst failed: {errors[0]!r}")
    return time.perf_counter() - start


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def spread(values: list[float]) -> str:
    return f"{min(values):.3f}/{statistics.median(values):.3f}/{max(values):.3f}"


def summary(s: Side, jobs: int) -> dict[str, float]:
    return {"job_min_s": min(s.job_s), "job_p50_s": statistics.median(s.job_s), "job_p90_s": pct(s.job_s, 0.9),
            "job_max_s": max(s.job_s), "store_min_s": min(s.store_s), "store_p50_s": statistics.median(s.store_s),
            "store_max_s": max(s.store_s),
            "burst_jobs_per_s": jobs / s.burst_s, "status_p50_ms": statistics.median(s.status_ms),
            "status_p99_ms": pct(s.status_ms, 0.99)}


def report(sides: list[Side], jobs: int, out: Path) -> None:
    print(f"{'':<10} {'polled job s min/med/max':>25} {'store job s min/med/max':>25} {'burst jobs/s':>13}"
          f" {'status p50 ms':>14} {'status p99 ms':>14}")
    for s in sides:
        print(f"{s.name:<10} {spread(s.job_s):>25} {spread(s.store_s):>25}"
              f" {jobs / s.burst_s:>13.3f} {statistics.median(s.status_ms):>14.1f} {pct(s.status_ms, 0.99):>14.1f}")
    embedded, cluster = sides
    added = (statistics.median(cluster.store_s) - statistics.median(embedded.store_s)) * 1000
    polled = (statistics.median(cluster.job_s) - statistics.median(embedded.job_s)) * 1000
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"jobs": jobs, **{s.name: summary(s, jobs) for s in sides},
                               "overhead_ms": added, "polled_overhead_ms": polled}, indent=2))
    print(f"cluster overhead per job (store timestamps, median - median): {added:.0f} ms")


def with_embedded(root: Path, workers: int, body: Callable[[Side, Store], None]) -> Side:
    server = Server(root / "embedded", ["--profile", "tiny", "--workers", str(workers), "--log-level", "warning"])
    server.start(timeout=300)
    try:
        out = subprocess.run([sys.executable, "-m", "takeone.cli", "keys", "create", "--data-dir",
                              str(server.data_dir), "--credits", "100000"], capture_output=True, text=True, check=True)
        side = Side("embedded", [server.url], [server.url], out.stdout.strip().splitlines()[-1])
        body(side, SqliteStore.open(server.data_dir / "takeone.db"))
        return side
    finally:
        server.stop()


def with_cluster(root: Path, workers: int, body: Callable[[Side, Store], None]) -> Side:
    with ClusterStack(root / "cluster", min_workers=workers, max_workers=workers,
                      extra=("--log-level", "warning")) as stack:
        urls = [r.url for r in stack.replicas]
        side = Side("cluster", urls, urls[1:] + urls[:1], stack.key(100000))
        body(side, PostgresStore.open(stack.database))
        return side


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1, help="worker processes or actors on each side")
    parser.add_argument("--poll", type=float, default=0.05, help="seconds between status polls")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "cluster.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sides = [with_embedded(root, args.workers, lambda s, st: measure(s, args.jobs, args.poll, args.warmup, st)),
                 with_cluster(root, args.workers, lambda s, st: measure(s, args.jobs, args.poll, args.warmup, st))]
    report(sides, args.jobs, args.json)


if __name__ == "__main__":
    main()
