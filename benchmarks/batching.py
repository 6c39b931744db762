"""Batching: the same burst of concurrent requests served one job per run, then batched.

    python benchmarks/batching.py                       # tiny on CPU: 8 jobs, batch 1 vs 4
    python benchmarks/batching.py --jobs 8 --max-batch 4 --rounds 2

For each ``--max-batch`` value (1, then the one given) it starts ``takeone serve --profile
tiny`` on a free port with that limit, sends one warm-up request, then per round posts
``--jobs`` same-shape requests (kling-2.6, 5 s, no audio, distinct prompts and seeds) at
once from as many threads to ``POST /v2/kling-2.6`` and polls each status URL every
``--poll-interval`` seconds until all are ``COMPLETED``. A job's latency is from its post to
the poll that saw it completed; jobs per second is the burst's job count over the time from
the first post to the last completion. Prints one row per limit, the ratios, writes
``benchmarks/results/batching.json`` (or ``--json PATH``), and ends with one line:
``batching: X.XXx jobs/s at batch 4 vs 1 (p95 latency Y.YYx)``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.server import start_server

SLUG = "kling-2.6"
RESULTS = Path(__file__).resolve().parent / "results" / "batching.json"


@dataclass(frozen=True)
class Row:
    max_batch: int
    jobs: int
    jobs_per_s: float
    p50_s: float
    p95_s: float


def body(n: int) -> dict[str, object]:
    return {"prompt": f"a paper boat on a river, take {n}", "duration": 5, "generate_audio": False, "seed": n}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def one_job(url: str, key: str, n: int, poll_s: float, out: dict[int, tuple[float, float]]) -> None:
    """Post job ``n`` and poll it to completion; record (posted, completed) monotonic times."""
    headers = {"x-api-key": key}
    with httpx.Client(timeout=60) as client:
        posted = time.monotonic()
        r = client.post(f"{url}/v2/{SLUG}", json=body(n), headers=headers)
        r.raise_for_status()
        status_url = r.json()["status_url"]
        while True:
            status = client.get(status_url, headers=headers).json()["status"]
            if status == "COMPLETED":
                out[n] = (posted, time.monotonic())
                return
            if status == "FAILED":
                raise SystemExit(f"job {n} failed: {client.get(status_url, headers=headers).text}")
            time.sleep(poll_s)


def burst(url: str, key: str, jobs: int, first: int, poll_s: float) -> tuple[float, list[float]]:
    """``jobs`` concurrent requests; (seconds from the first post to the last completion, latencies)."""
    times: dict[int, tuple[float, float]] = {}
    threads = [threading.Thread(target=one_job, args=(url, key, first + n, poll_s, times)) for n in range(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(times) != jobs:
        raise SystemExit("some jobs did not complete")
    span = max(done for _, done in times.values()) - min(posted for posted, _ in times.values())
    return span, [done - posted for posted, done in times.values()]


def measure(max_batch: int, args: argparse.Namespace) -> Row:
    with tempfile.TemporaryDirectory(prefix="takeone-batching-") as folder:
        extra = ("--max-batch", str(max_batch), "--batch-window-ms", str(args.window_ms))
        proc, url, key = start_server(Path(folder), extra=extra)
        try:
            burst(url, key, 1, 10_000, args.poll_interval)  # warm-up: first-run costs out of the figures
            spans, latencies = [], []
            for round_ in range(args.rounds):
                span, lat = burst(url, key, args.jobs, round_ * args.jobs, args.poll_interval)
                spans.append(span)
                latencies += lat
        finally:
            proc.terminate()
            proc.wait(timeout=60)
    jobs = args.jobs * args.rounds
    return Row(max_batch, jobs, round(jobs / sum(spans), 3), round(statistics.median(latencies), 3),
               round(percentile(latencies, 0.95), 3))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=8, help="concurrent requests per burst")
    parser.add_argument("--max-batch", type=int, default=4, help="the batched run's limit (compared with 1)")
    parser.add_argument("--rounds", type=int, default=2, help="bursts per limit")
    parser.add_argument("--window-ms", type=float, default=200.0, help="--batch-window-ms for both servers")
    parser.add_argument("--poll-interval", type=float, default=0.02, help="seconds between status polls")
    parser.add_argument("--json", type=Path, default=RESULTS, help=f"where the figures go (default {RESULTS.name} "
                        "in benchmarks/results)")
    args = parser.parse_args(argv)
    rows = [measure(1, args), measure(args.max_batch, args)]
    print(f"{'max-batch':>9}  {'jobs':>4}  {'jobs/s':>7}  {'p50 s':>6}  {'p95 s':>6}")
    for row in rows:
        print(f"{row.max_batch:>9}  {row.jobs:>4}  {row.jobs_per_s:>7.3f}  {row.p50_s:>6.2f}  {row.p95_s:>6.2f}")
    single, batched = rows
    throughput = batched.jobs_per_s / single.jobs_per_s
    p95 = batched.p95_s / single.p95_s
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": [asdict(r) for r in rows], "jobs_per_s_ratio": round(throughput, 3),
                                   "p95_ratio": round(p95, 3)}, indent=2) + "\n")
    print(f"batching: {throughput:.2f}x jobs/s at batch {batched.max_batch} vs 1 (p95 latency {p95:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
