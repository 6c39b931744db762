"""How the store's cost grows, on SQLite and a real PostgreSQL (no model, no HTTP: the store
calls each request and each worker makes, where the cost that grows with stored jobs lives).

    python benchmarks/scale.py --sizes 1000 10000 100000 --workers 1 8 32 128

(a) ``throughput``: jobs claimed and finished per second by 1, 8, 32, 128 concurrent workers
    (threads, each claim -> complete at once, like a runner that finishes instantly), with
    each claim's latency (p50 / p99 / max).
(b) ``latency``: with N jobs stored (a tenth QUEUED, the rest COMPLETED, over 100 keys), the
    store calls of submit, status (a finished job; and the last queued job, whose queue
    position counts the jobs ahead of it), history (a key's newest 20) and /metrics (the
    counts by status): p50 / p99 over ``--repeats`` calls each.

Prints a table per part and writes benchmarks/results/scale.json. Every figure is min /
median / max where it has repeats; the last line names the figure it summarises.
PostgreSQL runs with fsync on (commits wait for the disk); SQLite in WAL with synchronous=NORMAL.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks.pgserver import ThrowawayPostgres
from takeone.backends.postgres.store import PostgresStore
from takeone.backends.sqlite.store import SqliteStore
from takeone.core.jobs import Job, JobStatus, SubmitLimits
from takeone.core.task import VideoTask

RESULTS = Path(__file__).resolve().parent / "results" / "scale.json"
LIMITS = SubmitLimits(max_concurrent=None, max_queue=10**9)
REQUEST = json.dumps(VideoTask(kind="t2v", prompt="a red fox").to_dict())
COLUMNS = ("id", "key_id", "endpoint", "request", "price", "charge", "status", "created_at",
           "finished_at", "dialect")
Store = SqliteStore | PostgresStore


def pct(ms: list[float], p: float) -> float:
    ordered = sorted(ms)
    return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)


def spread(ms: list[float]) -> dict[str, float]:
    return {"n": len(ms), "min": round(min(ms), 2), "p50": round(statistics.median(ms), 2),
            "p99": pct(ms, 0.99), "max": round(max(ms), 2)}


@contextmanager
def open_store(kind: str, pg_url: str | None, pool: int) -> Iterator[Store]:
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            store = SqliteStore.open(Path(folder) / "takeone.db")
            try:
                yield store
            finally:
                store.close()
        return
    assert pg_url is not None
    import psycopg

    name = f"scale_{int(time.time() * 1000)}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    store = PostgresStore.open(pg_url.rsplit("/", 1)[0] + "/" + name, max_size=pool, min_size=1)
    try:
        yield store
    finally:
        store.close()


def bulk_insert(store: Store, rows: list[tuple[Any, ...]]) -> None:
    """Stored jobs written straight to the table (the count triggers keep /metrics right)."""
    if isinstance(store, SqliteStore):
        with store.sync.db.begin() as conn:
            conn.executemany(f"INSERT INTO jobs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})",
                             rows)
        return
    with store.sync.db.pool.connection() as conn, conn.transaction(), conn.cursor() as cur:
        cur.execute("SET LOCAL statement_timeout = 0")  # a bulk load, not a request
        with cur.copy(f"COPY jobs ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    with store.sync.db.pool.connection() as conn:
        conn.execute("ANALYZE jobs")


def job_rows(start: int, count: int, queued_every: int, now: float) -> list[tuple[Any, ...]]:
    rows = []
    for i in range(start, start + count):
        queued = queued_every > 0 and i % queued_every == 0
        rows.append((f"s{i:09d}", f"k{i % 100}", "kling-2.6", REQUEST, 1_000_000, "reserved",
                     "QUEUED" if queued else "COMPLETED", now + i * 1e-6, None if queued else now + i * 1e-6,
                     "segmind"))
    return rows


def throughput(store: Store, workers: int, jobs: int) -> dict[str, Any]:
    bulk_insert(store, job_rows(0, jobs, 1, time.time()))
    claims: list[float] = []
    done = [0]
    lock = threading.Lock()

    def worker(n: int) -> None:
        mine: list[float] = []
        while True:
            t = time.perf_counter()
            job = store.sync.claim(f"bench/{n}", 60)
            mine.append((time.perf_counter() - t) * 1000)
            if job is None:
                break
            store.sync.complete(job.id, f"outputs/{job.id}.mp4", {})
            with lock:
                done[0] += 1
        with lock:
            claims.extend(mine)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(workers)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - start
    return {"workers": workers, "jobs": done[0], "seconds": round(seconds, 2),
            "jobs_per_s": round(done[0] / seconds, 1), "claim_ms": spread(claims)}


def timed(call: Callable[[], object], repeats: int) -> dict[str, float]:
    call()  # warm
    ms = []
    for _ in range(repeats):
        t = time.perf_counter()
        call()
        ms.append((time.perf_counter() - t) * 1000)
    return spread(ms)


def latency(store: Store, sizes: list[int], repeats: int) -> list[dict[str, Any]]:
    import asyncio

    key = asyncio.run(store.create(10**9)).key.id
    stored, out, n = 0, [], 0
    now = time.time()
    for size in sizes:
        for start in range(stored, size, 100_000):
            bulk_insert(store, job_rows(start, min(100_000, size - start), 10, now))
        stored = size
        last_queued = f"s{(size - 1) // 10 * 10:09d}"

        def submit(size: int = size) -> None:
            nonlocal n
            n += 1
            store.sync.submit(Job(id=f"new{size}_{n}", key_id=key, task=VideoTask(kind="t2v", prompt="p"),
                                  price=1.0, status=JobStatus.QUEUED, created_at=time.time(),
                                  dialect="segmind"), LIMITS)

        row = {"stored": size,
               "submit": timed(submit, repeats),
               "status_finished": timed(lambda: store.sync.get("s000000001"), repeats),
               "status_queued_last": timed(lambda job=last_queued: (store.sync.get(job),
                                                                    store.sync.queue_position(job)), repeats),
               "history": timed(lambda: store.sync.jobs_for_key("k7", "segmind", 20), repeats),
               "metrics": timed(store.sync.counts, repeats)}
        assert store.sync.queue_position(last_queued) is not None
        out.append(row)
        print(f"  {size:>9,} stored  " + "  ".join(
            f"{name} {row[name]['p50']:.2f}/{row[name]['p99']:.2f}"
            for name in ("submit", "status_finished", "status_queued_last", "history", "metrics")), flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 8, 32, 128],
                        help="concurrent workers for part (a); none: skip it")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per throughput run")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--stores", nargs="+", default=["sqlite", "postgres"])
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    results: dict[str, Any] = {"command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                        time.gmtime())}
    pg = ThrowawayPostgres(fsync=True) if "postgres" in args.stores else None
    pg_url = pg.__enter__() if pg is not None else None
    try:
        for kind in args.stores:
            if args.workers:
                print(f"{kind}: (a) claimed and finished per second; claim ms min/p50/p99/max", flush=True)
            runs = []
            for workers in args.workers:
                with open_store(kind, pg_url, workers + 4) as store:
                    r = throughput(store, workers, args.jobs)
                runs.append(r)
                c = r["claim_ms"]
                print(f"  {workers:>4} workers  {r['jobs_per_s']:>8.1f} jobs/s  claim {c['min']}/{c['p50']}/"
                      f"{c['p99']}/{c['max']} ms", flush=True)
            print(f"{kind}: (b) store-call latency p50/p99 ms by jobs stored", flush=True)
            with open_store(kind, pg_url, 8) as store:
                rows = latency(store, args.sizes, args.repeats)
            results[kind] = {"throughput": runs, "latency": rows}
    finally:
        if pg is not None:
            pg.__exit__(None, None, None)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    worst = max((row["metrics"]["p99"], kind) for kind in args.stores for row in results[kind]["latency"])
    print(f"wrote {args.output}; last line: the worst /metrics store-call p99 over every size "
          f"and store: {worst[0]:.2f} ms ({worst[1]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
