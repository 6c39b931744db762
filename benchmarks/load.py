"""Status polling under load: many clients poll while tiny jobs run.

    python benchmarks/load.py --clients 200 --polls 20

Starts ``takeone serve --profile tiny`` on a free port (or uses ``--url`` and ``--key``),
queues jobs, lets every client poll its job's status concurrently, and prints min, p50, p99
and max over every poll of the run, and the error count. The last line is one figure, the p99:
``status p99 under load: 41.2 ms``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.server import start_server


@dataclass(frozen=True)
class LoadResult:
    clients: int
    requests: int
    errors: int
    min_ms: float
    p50_ms: float
    p99_ms: float
    max_ms: float


async def poll_load(url: str, key: str, status_urls: list[str], clients: int, polls: int,
                    interval: float = 1.0) -> LoadResult:
    """``clients`` concurrent pollers, each GETting a status URL ``polls`` times, once every
    ``interval`` seconds (the segmind SDK polls once a second), starts spread over one interval."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(headers={"x-api-key": key}, limits=limits, timeout=30) as client:
        runs = [_client(client, status_urls[i % len(status_urls)], polls, interval, i * interval / clients)
                for i in range(clients)]
        results = await asyncio.gather(*runs)
    latencies = sorted(t for lat, _ in results for t in lat)
    errors = sum(e for _, e in results)
    return LoadResult(clients, len(latencies), errors, latencies[0] * 1000 if latencies else 0.0,
                      _pct(latencies, 50), _pct(latencies, 99),
                      latencies[-1] * 1000 if latencies else 0.0)


async def _client(client: httpx.AsyncClient, url: str, polls: int, interval: float,
                  offset: float) -> tuple[list[float], int]:
    latencies: list[float] = []
    errors = 0
    await asyncio.sleep(offset)
    for _ in range(polls):
        start = time.perf_counter()
        try:
            r = await client.get(url)
            ok = r.status_code in (200, 422) and "status" in r.json()
        except httpx.HTTPError:
            ok = False
        latencies.append(time.perf_counter() - start)
        errors += 0 if ok else 1
        await asyncio.sleep(max(interval - latencies[-1], 0.0))
    return latencies, errors


def _pct(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0] * 1000
    return statistics.quantiles(values, n=100, method="inclusive")[int(pct) - 1] * 1000


def submit_jobs(url: str, key: str, count: int) -> list[str]:
    body = {"prompt": "load", "duration": 5, "generate_audio": False}
    with httpx.Client(headers={"x-api-key": key}, timeout=30) as client:
        return [client.post(f"{url}/v2/kling-2.6", json=body).json()["status_url"] for _ in range(count)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=10)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between one client's polls")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, key = start_server(Path(tmp), credits=1000)
        try:
            result = asyncio.run(poll_load(url, key, submit_jobs(url, key, args.jobs), args.clients,
                                           args.polls, args.interval))
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(json.dumps(asdict(result), indent=2))
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2))
    print(f"status p99 under load (min {result.min_ms:.1f}, p50 {result.p50_ms:.1f}, max {result.max_ms:.1f}):"
          f" {result.p99_ms:.1f} ms")


if __name__ == "__main__":
    main()
