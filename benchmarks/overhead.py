"""Serving overhead: one tiny generation called directly, then through the server's two paths.

    python benchmarks/overhead.py --repeats 20

Three timings of the same request (kling-2.6, 5 s, fixed seed, audio on), each after warm-up:

- ``direct``: ``load_video_model("tiny")`` once, then ``render(...)`` per request, in a child
  process set up like the server's CPU worker (nice 10, a torch thread per usable core), so
  the comparison is fair on CPU-only machines;
- ``blocking``: ``POST /v1/kling-2.6`` against ``takeone serve --profile tiny`` on a free port,
  until the whole MP4 body is read;
- ``queued``: ``POST /v2/kling-2.6``, then ``GET`` the status URL every ``--poll-interval``
  seconds until ``COMPLETED``, then ``GET`` the result (JSON with the signed link; the MP4 is
  not downloaded). The poll interval is a client choice: half of it is added at the median.

Prints min, median, p90 and max of each and what the server adds at the median. The last line
is one figure, the blocking path's median minus the direct median, and says so:
``serving overhead (blocking median - direct median): 12.3 ms``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.server import start_server

BODY: dict[str, Any] = {"prompt": "a red fox running through snow", "duration": 5,
                        "generate_audio": True, "seed": 42}
SLUG = "kling-2.6"
RESULTS = Path(__file__).resolve().parent / "results" / "overhead.json"


@dataclass(frozen=True)
class Timing:
    path: str
    runs: int
    median_ms: float
    p90_ms: float
    min_ms: float
    max_ms: float


def summarize(path: str, seconds: list[float]) -> Timing:
    ms = sorted(s * 1000 for s in seconds)
    p90 = statistics.quantiles(ms, n=10, method="inclusive")[-1] if len(ms) > 1 else ms[0]
    return Timing(path, len(ms), round(statistics.median(ms), 1), round(p90, 1), round(ms[0], 1),
                  round(ms[-1], 1))


# -- direct, in a child process set up like the worker --------------------------------------------


def direct_child(warmup: int) -> None:
    """Render in-process exactly as the worker does, with the worker's priority and threads.

    It answers one timed render per ``run`` line on stdin, so the parent can interleave direct
    and served requests and both meet the same background load.
    """
    import torch

    from takeone.edge.dialects.segmind.registry import get_endpoint
    from takeone.engine.render import render
    from takeone.engine.worker import usable_cores
    from takeone.models.loader import load_video_model
    from takeone.models.registry import get_profile

    os.nice(10)
    torch.set_num_threads(usable_cores())  # as the server's CPU worker sets it
    endpoint = get_endpoint(SLUG)
    request = endpoint.to_task(endpoint.parse(json.dumps(BODY).encode()), {})
    model, profile = load_video_model("tiny"), get_profile("tiny")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.mp4"
        call = lambda: render(model, profile, request, out, lambda d, t: None, lambda: False)  # noqa: E731
        _timed(call, warmup, 0)
        print("ready", flush=True)
        for _ in sys.stdin:
            print(_timed(call, 0, 1)[0], flush=True)


class Direct:
    """The direct child seen from the parent: one ``run()`` is one timed render."""

    def __init__(self, warmup: int) -> None:
        cmd = [sys.executable, __file__, "--direct-child", "--warmup", str(warmup)]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        if self._line() != "ready":
            raise SystemExit("the direct child failed to start")

    def run(self) -> float:
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return float(self._line())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)

    def _line(self) -> str:
        assert self.proc.stdout is not None
        return self.proc.stdout.readline().strip()


def _timed(call: Callable[[], object], warmup: int, repeats: int) -> list[float]:
    for _ in range(warmup):
        call()
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return seconds


# -- through a real server --------------------------------------------------------------------------


def blocking(client: httpx.Client, url: str) -> None:
    response = client.post(f"{url}/v1/{SLUG}", json=BODY)
    if response.status_code != 200 or response.content[4:8] != b"ftyp":
        raise RuntimeError(f"blocking call failed: {response.status_code} {response.text[:300]}")


def queued(client: httpx.Client, url: str, poll_interval: float) -> None:
    submitted = client.post(f"{url}/v2/{SLUG}", json=BODY).json()
    while (status := client.get(submitted["status_url"]).json()["status"]) != "COMPLETED":
        if status == "FAILED":
            raise RuntimeError(f"queued request failed: {submitted['request_id']}")
        time.sleep(poll_interval)
    result = client.get(submitted["response_url"]).json()
    if "output" not in result:
        raise RuntimeError(f"no output in {result}")


def measure(warmup: int, repeats: int, poll_interval: float) -> dict[str, list[float]]:
    """Rounds of direct, blocking, queued after warm-up: interleaved, so drifting background
    load on a shared machine hits all three alike."""
    seconds: dict[str, list[float]] = {"direct": [], "blocking": [], "queued": []}
    direct = Direct(warmup)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            proc, url, key = start_server(Path(tmp))
            try:
                with httpx.Client(headers={"x-api-key": key}, timeout=120) as client:
                    paths: dict[str, Callable[[], float]] = {"direct": direct.run,
                             "blocking": lambda: _timed(lambda: blocking(client, url), 0, 1)[0],
                             "queued": lambda: _timed(lambda: queued(client, url, poll_interval), 0, 1)[0]}
                    for _ in range(warmup):
                        blocking(client, url)
                        queued(client, url, poll_interval)
                    for _ in range(repeats):
                        for name, call in paths.items():
                            seconds[name].append(call())
            finally:
                proc.terminate()
                proc.wait(timeout=30)
    finally:
        direct.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--poll-interval", type=float, default=0.01, help="seconds between status polls")
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--direct-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.direct_child:
        direct_child(args.warmup)
        return
    seconds = measure(args.warmup, args.repeats, args.poll_interval)
    timings = [summarize(name, values) for name, values in seconds.items()]
    direct = timings[0]
    print(f"{'path':<10}{'runs':>6}{'min ms':>9}{'median ms':>11}{'p90 ms':>9}{'max ms':>9}{'added ms':>10}")
    for t in timings:
        print(f"{t.path:<10}{t.runs:>6}{t.min_ms:>9.1f}{t.median_ms:>11.1f}{t.p90_ms:>9.1f}{t.max_ms:>9.1f}"
              f"{t.median_ms - direct.median_ms:>10.1f}")
    result = {"body": BODY, "poll_interval_s": args.poll_interval, "load_avg_1m": os.getloadavg()[0],
              "timings": [asdict(t) for t in timings],
              "added_median_ms": {t.path: round(t.median_ms - direct.median_ms, 1) for t in timings[1:]}}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"serving overhead (blocking median - direct median): {timings[1].median_ms - direct.median_ms:.1f} ms")


if __name__ == "__main__":
    main()
