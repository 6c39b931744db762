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
(c) ``waiters`` (PostgreSQL): ``--waiters`` blocking ``POST /v1/kling-2.6`` calls held at once,
    spread over ``--api-processes`` real ``takeone serve --no-workers`` processes sharing one
    database; this process is the runner: it claims each job and finishes it at once (a
    small output file, then ``complete``) at ``--finish-rate`` jobs per second. Measured:
    from ``complete`` returning (the commit, which sends the job's NOTIFY) to the waiter's
    answer arriving with its MP4 (p50 / p99 / max), on one clock (one machine); the finish
    rate reached, and the CPU seconds the API processes and the clients used.
(d) ``contention``: one ``takeone serve --no-workers`` process per store with
    ``--contention-jobs`` jobs stored; 4 pollers call ``GET /v2/requests/{id}/status`` in a
    loop for ``--contention-seconds`` (a finished job and the last queued one in turn),
    first alone, then while a fifth client scrapes ``/metrics`` in a loop: status p50 / p99
    of each phase, and the scrape's own latency.

Parts (c) and (d) go through HTTP and real server processes; (a) and (b) call the store.
Prints a table per part and writes benchmarks/results/scale.json. Every figure is min /
median / max where it has repeats; the last line names the figure it summarises.
PostgreSQL runs with fsync on (commits wait for the disk); SQLite in WAL with synchronous=NORMAL.
Stored jobs are bulk-loaded; on PostgreSQL the table is then vacuumed and analysed, as
autovacuum would have done to a table in service.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import multiprocessing.process
import os
import re
import statistics
import subprocess
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
import httpx

from benchmarks.services.postgres import PostgresServer
from benchmarks.services.server import Server, server_env
from takeone.backends.postgres.store import PostgresStore
from takeone.backends.sqlite.store import SqliteStore
from takeone.core.blobs import output_key
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
        # The count trigger would update one counter row once per loaded row, all in this one
        # transaction: each update walks the row's growing chain of versions, so a load of N
        # rows costs N squared (100,000 rows took minutes). Submits commit one row each and do
        # not pay this. So the load runs without triggers and adds its counts once, as the
        # trigger would have; main() checks the counters against the table afterwards.
        cur.execute("SET LOCAL session_replication_role = replica")
        with cur.copy(f"COPY jobs ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        added: dict[str, int] = {}
        for row in rows:
            added[row[6]] = added.get(row[6], 0) + 1
        for status, n in added.items():
            cur.execute("INSERT INTO job_counts (status, shard, n) VALUES (%s, 0, %s) ON CONFLICT (status, shard)"
                        " DO UPDATE SET n = job_counts.n + EXCLUDED.n", (status, n))
        queued: dict[str, int] = {}
        for row in rows:
            if row[6] == "QUEUED":
                queued[row[1]] = queued.get(row[1], 0) + 1
        for key_id, n in queued.items():  # each key's queue count, as its trigger would keep it
            cur.execute("INSERT INTO key_queue (key_id, shard, n) VALUES (%s, 0, %s) ON CONFLICT (key_id, shard)"
                        " DO UPDATE SET n = key_queue.n + EXCLUDED.n", (key_id, n))


def settle(store: Store) -> None:
    """After a load: what autovacuum does to a table in service (PostgreSQL). Without the
    visibility map a fresh load lacks, every index-only count (the queue position) reads the
    table's rows as well, which no running server would keep doing; then check the counters."""
    if isinstance(store, PostgresStore):
        with store.sync.db.pool.connection() as conn:
            conn.commit()
            conn.autocommit = True
            try:
                conn.execute("VACUUM (ANALYZE) jobs")
            finally:
                conn.autocommit = False
    check_counts(store)


def check_counts(store: Store) -> None:
    """The counters /metrics reads agree with a full count of the table (after a load)."""
    if isinstance(store, SqliteStore):
        return
    from psycopg.rows import tuple_row

    with store.sync.db.pool.connection() as conn, conn.cursor(row_factory=tuple_row) as cur:
        table = dict(cur.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
    kept = {status: n for status, n in store.sync.counts().items() if n}
    if kept != table:
        raise SystemExit(f"the job counters say {kept}, the table holds {table}")


def job_rows(start: int, count: int, queued_every: int, now: float,
             key_id: str | None = None) -> list[tuple[Any, ...]]:
    rows = []
    for i in range(start, start + count):
        queued = queued_every > 0 and i % queued_every == 0
        rows.append((f"s{i:09d}", key_id or f"k{i % 100}", "kling-2.6", REQUEST, 1_000_000, "reserved",
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
        settle(store)
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


# -- (c) and (d): real API processes over HTTP -------------------------------------------------

JOB = {"prompt": "a steady fox", "duration": 5, "generate_audio": False, "seed": 7}
OUTPUT = b"\x00\x00\x00\x18ftypisom" + bytes(1000)  # what the instant runner "renders"


def takeone(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "takeone.cli", *args], capture_output=True, text=True,
                         env=server_env(), timeout=120, check=False)
    if out.returncode != 0:
        raise SystemExit(f"takeone {args[0]} {args[1]} failed: {out.stderr}")
    return out.stdout


def make_key(store_args: list[str], admin: Path, max_queued: int) -> tuple[str, str]:
    """A key with credits to spare, made by the CLI: (key id, secret)."""
    out = takeone("keys", "create", *store_args, "--data-dir", str(admin), "--credits", "1000000000",
                  "--max-queued", str(max_queued))
    made = re.search(r"created (key_\w+)", out)
    if made is None:
        raise SystemExit(f"keys create printed no key id: {out}")
    return made.group(1), out.strip().splitlines()[-1]


def api_process(data_dir: Path, args: list[str]) -> Server:
    """``takeone serve --no-workers`` (no worker reports in, so not ready: started, not waited on)."""
    server = Server(data_dir, ["--profile", "tiny", "--no-workers", "--log-level", "warning", *args],
                    env=server_env(), health_details=False)
    return server.start(wait_ready=False, timeout=180)


def waiters(pg: PostgresServer, count: int, processes: int, finish_rate: float, root: Path) -> dict[str, Any]:
    url = pg.new_database()
    outputs = root / "outputs"  # every API process reads its local files from here
    outputs.mkdir(parents=True)
    _, secret = make_key(["--database", url], root / "admin", count * 2)
    servers: list[Server] = []
    try:
        for i in range(processes):
            folder = root / f"api-{i}"
            folder.mkdir()
            (folder / "outputs").symlink_to(outputs)
            servers.append(api_process(folder, ["--database", url, "--secret-file", str(root / "secret.key"),
                                                "--max-queue", str(count * 2)]))
        answered: dict[str, float] = {}
        client_cpu = time.process_time()
        asyncio.run(_hold(servers, secret, count, answered, _start_runner(url, count, finish_rate, outputs, root)))
        api_cpu = [cpu_seconds(server.proc.pid) if server.proc else None for server in servers]
        client_cpu = time.process_time() - client_cpu
        finished = {job: float(at) for job, at in json.loads((root / "finished.json").read_text()).items()}
    finally:
        for server in servers:
            server.stop()
    missing = set(finished) ^ set(answered)
    if missing or len(answered) != count:
        raise SystemExit(f"(c): {len(answered)} of {count} waiters answered; {len(missing)} finished jobs unanswered")
    gaps = [(answered[job] - finished[job]) * 1000 for job in finished]
    return {"waiters": count, "api_processes": processes, "finish_rate": finish_rate,
            "finish_to_answer_ms": spread(gaps),
            "finished_per_s": round((count - 1) / (max(finished.values()) - min(finished.values())), 2),
            "api_cpu_s": None if None in api_cpu else round(sum(t for t in api_cpu if t is not None), 2),
            "client_cpu_s": round(client_cpu, 2)}


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds a live process has used (Linux's /proc; None elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _start_runner(url: str, count: int, finish_rate: float, outputs: Path,
                  root: Path) -> multiprocessing.process.BaseProcess:
    """The instant runner in a process of its own (the waiting clients' event loop does not
    delay it, nor it them)."""
    runner = multiprocessing.get_context("spawn").Process(
        target=_finish_all, args=(url, count, finish_rate, str(outputs), str(root / "finished.json")))
    runner.start()
    return runner


async def _hold(servers: list[Server], secret: str, count: int, answered: dict[str, float],
                runner: multiprocessing.process.BaseProcess) -> None:
    limits = httpx.Limits(max_connections=count + 10, max_keepalive_connections=count + 10)
    async with httpx.AsyncClient(timeout=httpx.Timeout(600, connect=60), limits=limits) as client:
        async def wait_one(i: int) -> None:
            r = await client.post(servers[i % len(servers)].url + "/v1/kling-2.6", json=JOB,
                                  headers={"x-api-key": secret})
            body = r.content
            if r.status_code != 200 or body != OUTPUT:
                raise SystemExit(f"(c): a blocking call got {r.status_code}: {body[:300]!r}")
            answered[r.headers["x-request-id"]] = time.time()

        async def watch_runner() -> None:
            await asyncio.to_thread(runner.join)
            if runner.exitcode != 0:  # its jobs will never finish: stop rather than wait
                raise SystemExit(f"(c): the runner exited with {runner.exitcode}")

        await asyncio.gather(watch_runner(), *(wait_one(i) for i in range(count)))


def _finish_all(url: str, count: int, finish_rate: float, outputs: str, result: str) -> None:
    """The instant runner: once every call is queued, claim and finish them at ``finish_rate``
    a second; writes each job's finish time as the store wrote it (its ``finished_at``, set in
    the completing transaction, just before the commit that sends the job's NOTIFY)."""
    store = PostgresStore.open(url, max_size=2, min_size=1)
    finished: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 300
        while store.sync.counts().get("QUEUED", 0) < count:
            if time.monotonic() > deadline:
                raise SystemExit(f"(c): only {store.sync.counts()} of {count} blocking calls queued in 300 s")
            time.sleep(0.2)
        start = time.monotonic()
        for n in range(count):
            time.sleep(max(0.0, start + n / finish_rate - time.monotonic()))
            job = store.sync.claim("bench/runner", 60)
            assert job is not None
            key = output_key(job.id)
            (Path(outputs) / Path(key).name).write_bytes(OUTPUT)
            done = store.sync.complete(job.id, key, {})
            assert done is not None and done.finished_at is not None
            finished[job.id] = done.finished_at
    finally:
        store.close()
    Path(result).write_text(json.dumps(finished))


def contention(kind: str, pg: PostgresServer | None, stored: int, seconds: float, root: Path) -> dict[str, Any]:
    folder = root / f"contention-{kind}"
    folder.mkdir(parents=True)
    url = pg.new_database() if pg is not None else None
    store_args = ["--database", url] if url is not None else []
    key_id, secret = make_key(store_args, folder, 10)
    store: Store = (PostgresStore.open(url, max_size=2, min_size=1) if url is not None
                    else SqliteStore.open(folder / "takeone.db"))
    try:
        now = time.time()
        for start in range(0, stored, 100_000):
            bulk_insert(store, job_rows(start, min(100_000, stored - start), 10, now, key_id))
        settle(store)
    finally:
        store.close()
    jobs = ["s000000001", f"s{(stored - 1) // 10 * 10:09d}"]  # a finished job, the last queued
    server = api_process(folder, [*store_args, "--secret-file", str(folder / "secret.key")])
    try:
        for job in jobs:  # warm, and check the jobs are the key's
            r = httpx.get(f"{server.url}/v2/requests/{job}/status", headers={"x-api-key": secret}, timeout=30)
            if r.status_code != 200:
                raise SystemExit(f"(d): status of {job} answered {r.status_code}: {r.text[:300]}")
        alone, _ = _poll(server.url, secret, jobs, seconds, scrape=False)
        busy, scrapes = _poll(server.url, secret, jobs, seconds, scrape=True)
    finally:
        server.stop()
    return {"stored": stored, "seconds": seconds, "status_alone_ms": spread(alone),
            "status_while_scraped_ms": spread(busy), "metrics_scrape_ms": spread(scrapes)}


def _poll(url: str, secret: str, jobs: list[str], seconds: float, scrape: bool) -> tuple[list[float], list[float]]:
    stop = time.monotonic() + seconds
    status_ms: list[float] = []
    scrape_ms: list[float] = []
    lock = threading.Lock()
    failures: list[str] = []

    def poller(n: int) -> None:
        mine: list[float] = []
        with httpx.Client(timeout=60, headers={"x-api-key": secret}) as client:
            i = n
            while time.monotonic() < stop:
                t = time.perf_counter()
                r = client.get(f"{url}/v2/requests/{jobs[i % len(jobs)]}/status")
                mine.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200:
                    failures.append(f"status {r.status_code}")
                i += 1
        with lock:
            status_ms.extend(mine)

    def scraper() -> None:
        with httpx.Client(timeout=60) as client:
            while time.monotonic() < stop:
                t = time.perf_counter()
                r = client.get(f"{url}/metrics")
                scrape_ms.append((time.perf_counter() - t) * 1000)
                if r.status_code != 200 or "takeone_" not in r.text:
                    failures.append(f"/metrics {r.status_code}")

    threads = [threading.Thread(target=poller, args=(n,)) for n in range(4)]
    threads += [threading.Thread(target=scraper)] if scrape else []
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if failures:
        raise SystemExit(f"(d): {len(failures)} failed calls, first: {failures[0]}")
    return status_ms, scrape_ms


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 8, 32, 128],
                        help="concurrent workers for part (a); none: skip it")
    parser.add_argument("--jobs", type=int, default=2000, help="jobs per throughput run")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--stores", nargs="*", default=["sqlite", "postgres"], help="for (a), (b), (d)")
    parser.add_argument("--parts", nargs="+", default=["a", "b", "c", "d"], choices=["a", "b", "c", "d"])
    parser.add_argument("--waiters", type=int, default=1000, help="(c) blocking calls held at once")
    parser.add_argument("--api-processes", type=int, default=4, help="(c) API processes sharing them")
    parser.add_argument("--finish-rate", type=float, default=50.0, help="(c) jobs finished per second")
    parser.add_argument("--contention-jobs", type=int, default=100_000, help="(d) jobs stored")
    parser.add_argument("--contention-seconds", type=float, default=10.0, help="(d) seconds per phase")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    results: dict[str, Any] = {"command": " ".join(sys.argv), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                                        time.gmtime())}
    needs_pg = "postgres" in args.stores or "c" in args.parts
    pg = PostgresServer(fsync=True, max_connections=300, shared_buffers="128MB") if needs_pg else None
    pg_url = pg.start().url() if pg is not None else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for kind in args.stores:
                results[kind] = store_parts(kind, pg, pg_url, args, Path(tmp))
            if "c" in args.parts:
                assert pg is not None
                print(f"postgres: (c) {args.waiters} blocking calls over {args.api_processes} API processes, "
                      f"finished at {args.finish_rate:g}/s: job finished -> waiter answered, ms", flush=True)
                c = waiters(pg, args.waiters, args.api_processes, args.finish_rate, Path(tmp) / "waiters")
                g = c["finish_to_answer_ms"]
                print(f"  min {g['min']}  p50 {g['p50']}  p99 {g['p99']}  max {g['max']}  (n={g['n']})", flush=True)
                print(f"  finished at {c['finished_per_s']}/s; CPU seconds to the last answer: "
                      f"{c['api_cpu_s']} in the {args.api_processes} API processes, {c['client_cpu_s']}"
                      " in this process (the clients)", flush=True)
                results["waiters"] = c
    finally:
        if pg is not None:
            pg.close()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.output}; last line: {last_line(results, args)}")
    return 0


def store_parts(kind: str, pg: PostgresServer | None, pg_url: str | None, args: argparse.Namespace,
                tmp: Path) -> dict[str, Any]:
    """Parts (a), (b) and (d) on one store, as ``--parts`` asks; their results."""
    out: dict[str, Any] = {}
    if "a" in args.parts and args.workers:
        print(f"{kind}: (a) claimed and finished per second; claim ms min/p50/p99/max", flush=True)
        out["throughput"] = []
        for workers in args.workers:
            with open_store(kind, pg_url, workers + 4) as store:
                r = throughput(store, workers, args.jobs)
            out["throughput"].append(r)
            c = r["claim_ms"]
            print(f"  {workers:>4} workers  {r['jobs_per_s']:>8.1f} jobs/s  claim {c['min']}/{c['p50']}/"
                  f"{c['p99']}/{c['max']} ms", flush=True)
    if "b" in args.parts:
        print(f"{kind}: (b) store-call latency p50/p99 ms by jobs stored", flush=True)
        with open_store(kind, pg_url, 8) as store:
            out["latency"] = latency(store, args.sizes, args.repeats)
    if "d" in args.parts:
        print(f"{kind}: (d) GET status by 4 pollers, {args.contention_jobs:,} jobs stored, "
              f"{args.contention_seconds:g} s a phase: ms p50/p99/max", flush=True)
        d = contention(kind, pg if kind == "postgres" else None, args.contention_jobs, args.contention_seconds, tmp)
        for name in ("status_alone_ms", "status_while_scraped_ms", "metrics_scrape_ms"):
            f = d[name]
            print(f"  {name:<24} {f['p50']}/{f['p99']}/{f['max']}  (n={f['n']})", flush=True)
        out["contention"] = d
    return out


def last_line(results: dict[str, Any], args: argparse.Namespace) -> str:
    """The one figure the run ends on: the worst p99 of what it measured last."""
    if "c" in args.parts:
        return f"(c) finish-to-answer p99 {results['waiters']['finish_to_answer_ms']['p99']:.2f} ms"
    if "d" in args.parts:
        worst = max((results[k]["contention"]["status_while_scraped_ms"]["p99"], k) for k in args.stores)
        return f"(d) the worst status p99 while /metrics is scraped: {worst[0]:.2f} ms ({worst[1]})"
    if "b" in args.parts:
        worst = max((row["metrics"]["p99"], k) for k in args.stores for row in results[k]["latency"])
        return f"the worst /metrics store-call p99 over every size and store: {worst[0]:.2f} ms ({worst[1]})"
    return "(a) only: see the table"

if __name__ == "__main__":
    raise SystemExit(main())
