"""``takeone serve`` (the API, and by default its workers) and ``takeone worker`` (workers
only, against the same store as one or more ``serve --no-workers`` processes).

    takeone serve --profile tiny
    takeone serve --no-workers --port 8001
    takeone worker --profile tiny --devices 0 1

Cluster mode: state in PostgreSQL and a bucket, workers as actors on a Ray cluster::

    takeone serve --no-workers --database postgresql://takeone@db/takeone --storage s3://videos/takeone
    takeone worker --workers ray --ray-address head:6379 --database ... --storage ... --max-workers 8
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from takeone.cli.arguments import (
    DefaultsFormatter,
    SubParsers,
    add_data_dir,
    add_weights_args,
    check_profile,
    weights_dir,
)
from takeone.cli.logs import configure_logging
from takeone.core.settings import DEFAULT_PORT, Settings, env_fetch_allow


def register(sub: SubParsers[argparse.ArgumentParser]) -> None:
    _add_serve(sub)
    _add_worker(sub)


def _add_common(p: argparse.ArgumentParser) -> None:
    add_data_dir(p)
    p.add_argument("--profile", default="ltx-2", help="model profile (see `takeone profiles`; tiny for testing)")
    add_weights_args(p)
    p.add_argument("--workers", type=_workers, metavar="N|local|ray",
                   help="local worker processes (a number; default: one per GPU, else one), or where"
                        " workers run: local (processes on this machine) or ray (actors on a Ray cluster)")
    p.add_argument("--store-busy-timeout", type=float, default=30.0, metavar="SECONDS",
                   help="how long a write waits for SQLite's lock (another process's migration or"
                        " backup) before /healthz reports the store unavailable (default 30)")
    p.add_argument("--storage", metavar="s3://BUCKET/PREFIX",
                   help="keep inputs and outputs in an S3-compatible bucket instead of the data folder"
                        " (credentials: the AWS_* variables or ~/.aws, as for any S3 client)")
    p.add_argument("--s3-endpoint", metavar="URL",
                   help="the S3-compatible service (MinIO, SeaweedFS, R2...); default: AWS or $AWS_ENDPOINT_URL")
    p.add_argument("--s3-public-endpoint", metavar="URL",
                   help="where clients reach the bucket for `output` links, if not --s3-endpoint")
    ray = p.add_argument_group("Ray workers (--workers ray)")
    ray.add_argument("--ray-address", metavar="ADDR",
                     help="the Ray cluster to join (default: $RAY_ADDRESS, else a local one)")
    ray.add_argument("--min-workers", type=int, default=0, metavar="N",
                     help="actors kept even when the queue is empty")
    ray.add_argument("--max-workers", type=int, metavar="N",
                     help="at most this many actors (default: one per GPU in the cluster)")
    ray.add_argument("--worker-gpus", type=float, default=1.0, metavar="GPUS",
                     help="GPUs each actor reserves (0 for a CPU-only pool)")
    ray.add_argument("--worker-idle", type=float, default=60.0, metavar="SECONDS",
                     help="seconds an idle actor above --min-workers lives before it is retired")
    p.add_argument("--gpus-per-job", type=int, default=1, metavar="N",
                   help="devices forming one worker group that runs one job at a time (CPU ranks"
                        " over gloo where there is no GPU); see README, Speed options")
    p.add_argument("--parallel", default="auto", choices=["auto", "cfg", "sequence"],
                   help="how a group splits a job: cfg (guided halves), sequence (video tokens)")
    p.add_argument("--job-timeout", type=float, default=3600.0, help="per-job deadline in seconds")
    p.add_argument("--max-batch", type=int, metavar="N",
                   help="at most N compatible queued jobs share one denoising run (default: the profile's"
                        " limit, see `takeone profiles`; 1 turns batching off)")
    p.add_argument("--batch-window-ms", type=float, metavar="MS",
                   help="how long a lone job waits for company before it runs (default: 25 on a GPU, 0 on CPU)")
    p.add_argument("--load-cooldown", type=float, default=60.0, metavar="SECONDS",
                   help="a worker that keeps crashing rests this long (doubling, at most 900 s) and"
                        " retries; queued jobs wait")
    p.add_argument("--debug-step-delay", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--debug-load-delay", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                   help="least severe log lines shown")
    p.add_argument("--log-format", default="text", choices=["text", "json"],
                   help="text for people, json (one object per line) for log shippers")


def _add_serve(sub: SubParsers[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("serve", help="run the API server (and, unless --no-workers, its workers)",
                       formatter_class=DefaultsFormatter,
                       description="Run the API in the foreground (it holds the terminal; Ctrl+C stops it).")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (0.0.0.0 for every interface)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port to listen on")
    _add_common(p)
    p.add_argument("--no-workers", action="store_true",
                   help="serve the API only; run `takeone worker` on the same data folder")
    p.add_argument("--access-log", action="store_true",
                   help="also log one line per HTTP request (by default: one line per finished job)")
    p.add_argument("--public-url", help="absolute base URL clients use (default: from each request)")
    p.add_argument("--fetch-allow", action="append", default=[], metavar="HOST",
                   help="exempt HOST from the image-fetch address checks (development); repeatable")
    p.add_argument("--prices", type=Path,
                   help="TOML price table overriding the defaults")
    p.add_argument("--sync-timeout", type=float, default=900.0,
                   help="seconds a blocking POST /v1 call waits before 504 (default 900)")
    p.add_argument("--retention", type=float, default=24.0, help="hours results are kept (default 24)")
    p.add_argument("--sweep-interval", type=float, default=300.0,
                   help="seconds between retention sweeps (default 300)")
    p.add_argument("--max-queue", type=int, default=1000, help="queued jobs before submits get 429")
    p.add_argument("--health-details", action="store_true",
                   help="/healthz shows worker ids, pids, running jobs and full errors to anyone"
                        " (default: only to a key created with --scope health)")
    p.add_argument("--queue-share", type=float, default=0.5, metavar="FRACTION",
                   help="the part of --max-queue one key may fill (keys create --max-queued overrides)")
    p.add_argument("--rate-limit", type=int, help="default requests per minute for keys without one")
    p.add_argument("--header-timeout", type=float, default=15.0,
                   help="seconds a client has to send a request's headers")
    p.add_argument("--body-timeout", type=float, default=120.0,
                   help="seconds a client has to send a request's body (408 after)")
    p.add_argument("--webhook-retry-delays", type=_delays, metavar="S,S,...",
                   default=Settings.webhook_retry_delays_s,
                   help="seconds to wait after each failed webhook attempt (default: Standard"
                   " Webhooks' 5,300,1800,7200,18000,36000,36000)")
    p.set_defaults(run=_serve)


def _delays(text: str) -> tuple[float, ...]:
    try:
        delays = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of seconds: {text!r}") from None
    if not delays or any(not 0 <= d < 1e7 for d in delays):
        raise argparse.ArgumentTypeError(f"give one or more delays from 0 to 1e7 seconds: {text!r}")
    return delays


def _add_worker(sub: SubParsers[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("worker", help="run workers only, pulling jobs from the data folder's store",
                       formatter_class=DefaultsFormatter)
    _add_common(p)
    p.add_argument("--devices", nargs="+", metavar="GPU",
                   help="GPU indices to run one worker on each (default: every GPU, else one CPU worker)")
    p.set_defaults(run=_worker)


def _workers(text: str) -> int | str:
    """``--workers``: a count of local processes, or where workers run (local | ray)."""
    if text in ("local", "ray"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"give a number of workers, local or ray, not {text!r}") from None


def _backend_args(args: argparse.Namespace) -> dict[str, Any]:
    """The Settings fields that say where state and workers live (shared by serve and worker)."""
    from takeone.backends.factory import check_database_url, check_storage_url
    from takeone.core.accounts import check_limit
    from takeone.core.errors import InvalidRequest

    count = args.workers if isinstance(args.workers, int) else None
    backend = args.workers if isinstance(args.workers, str) else "local"
    if args.min_workers < 0:
        raise InvalidRequest("--min-workers", args.min_workers, "must be 0 or more")
    check_limit("--max-workers", args.max_workers)
    if args.max_workers is not None and args.max_workers < args.min_workers:
        raise InvalidRequest("--max-workers", args.max_workers, f"is below --min-workers {args.min_workers}")
    if not 0 <= args.worker_gpus <= 64:
        raise InvalidRequest("--worker-gpus", args.worker_gpus, "must be from 0 to 64")
    if args.ray_address is not None and backend != "ray":
        raise InvalidRequest("--ray-address", args.ray_address, "needs --workers ray")
    if args.max_batch is not None and not 1 <= args.max_batch <= 64:
        raise InvalidRequest("--max-batch", args.max_batch, "must be from 1 to 64")
    if args.batch_window_ms is not None and not 0 <= args.batch_window_ms <= 60_000:
        raise InvalidRequest("--batch-window-ms", args.batch_window_ms, "must be from 0 to 60000")
    return dict(
        workers=count, worker_backend=backend, ray_address=args.ray_address,
        min_workers=args.min_workers, max_workers=args.max_workers, worker_gpus=args.worker_gpus,
        worker_idle_s=args.worker_idle,
        database_url=check_database_url(args.database) if args.database else None,
        storage_url=check_storage_url(args.storage) if args.storage else None,
        s3_endpoint=args.s3_endpoint, s3_public_endpoint=args.s3_public_endpoint,
        secret_file=args.secret_file, max_batch=args.max_batch, batch_window_ms=args.batch_window_ms,
        store_busy_timeout_s=args.store_busy_timeout,
    )


def _check_numbers(args: argparse.Namespace) -> None:
    """Refuse values that would make no sense at run time, naming the flag."""
    from takeone.core.accounts import check_limit
    from takeone.core.errors import InvalidRequest

    check_limit("--rate-limit", getattr(args, "rate_limit", None))
    check_limit("--workers", args.workers if isinstance(args.workers, int) else None)
    check_limit("--max-queue", getattr(args, "max_queue", 1))
    share = getattr(args, "queue_share", 0.5)
    if not 0 < share <= 1:
        raise InvalidRequest("--queue-share", share, "must be a fraction above 0 and at most 1")
    if args.gpus_per_job < 1:
        raise InvalidRequest("--gpus-per-job", args.gpus_per_job, "must be 1 or more")
    if args.gpus_per_job > 1 and args.workers == "ray" and getattr(args, "worker_gpus", 1.0) not in (0.0, 1.0):
        raise InvalidRequest("--worker-gpus", args.worker_gpus,
                             "must be 1 (a GPU per rank) or 0 (a CPU per rank) with --gpus-per-job above 1")
    for flag in ("sync_timeout", "job_timeout", "retention", "sweep_interval", "header_timeout",
                 "body_timeout", "worker_idle", "load_cooldown", "store_busy_timeout"):
        value = getattr(args, flag, 1.0)
        if not value > 0 or value == float("inf"):
            raise InvalidRequest("--" + flag.replace("_", "-"), value, "must be a positive number")


def serve_settings(args: argparse.Namespace) -> Settings:
    _check_numbers(args)
    return Settings(
        data_dir=args.data_dir, profile=args.profile, host=args.host, port=args.port,
        weights_dir=weights_dir(args), offload=args.offload,
        public_url=args.public_url,
        fetch_allow=frozenset(args.fetch_allow) | env_fetch_allow(),
        run_workers=not args.no_workers, prices_file=args.prices,
        sync_timeout_s=args.sync_timeout, job_timeout_s=args.job_timeout,
        retention_s=args.retention * 3600, link_ttl_s=max(args.retention * 3600, 3600),
        max_queue=args.max_queue, queue_share=args.queue_share, default_rate_limit=args.rate_limit,
        health_details=args.health_details,
        debug_step_delay_s=args.debug_step_delay, sweep_interval_s=args.sweep_interval,
        debug_load_delay_s=args.debug_load_delay, header_timeout_s=args.header_timeout,
        load_cooldown_s=args.load_cooldown,
        body_timeout_s=args.body_timeout, webhook_retry_delays_s=args.webhook_retry_delays,
        gpus_per_job=args.gpus_per_job, parallel=args.parallel,
        **_backend_args(args),
    )


def worker_settings(args: argparse.Namespace) -> Settings:
    _check_numbers(args)
    return Settings(
        data_dir=args.data_dir, profile=args.profile, weights_dir=weights_dir(args),
        offload=args.offload,
        devices=tuple(args.devices) if args.devices else None, job_timeout_s=args.job_timeout,
        debug_step_delay_s=args.debug_step_delay, debug_load_delay_s=args.debug_load_delay,
        load_cooldown_s=args.load_cooldown, gpus_per_job=args.gpus_per_job, parallel=args.parallel,
        **_backend_args(args),
    )


def _serve(args: argparse.Namespace) -> int:
    import asyncio

    import uvicorn

    from takeone.edge.app import create_app
    from takeone.edge.limits import guarded_h11
    from takeone.edge.services import Services

    settings = serve_settings(args)
    if _local_workers(settings) and (problem := check_profile(settings.profile, settings.weights_dir)):
        print(f"takeone: {problem}", file=sys.stderr)
        return 2
    configure_logging(args.log_level, args.log_format)
    warn_about_placement(settings)
    services = Services.build(settings, check_store=True)
    asyncio.run(services.check_secret())
    listener = bind_port(settings.host, settings.port)  # a busy port is said at once, before the banner
    log_banner(settings, services)
    config = uvicorn.Config(create_app(settings, services), log_level=args.log_level, log_config=None,
                            timeout_graceful_shutdown=10, access_log=args.access_log,
                            http=guarded_h11(settings.header_timeout_s))
    # uvicorn re-raises the signal that stopped it once it has shut down; a supervisor's SIGTERM
    # is a clean stop (exit 0), as Ctrl+C is (130, from KeyboardInterrupt)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    uvicorn.Server(config).run(sockets=[listener])
    return 0


def bind_port(host: str, port: int) -> socket.socket:
    """The listening address, bound now; :class:`InvalidRequest` naming ``--port`` if it is taken."""
    from takeone.core.errors import InvalidRequest

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))  # uvicorn listens once the app is ready
    except OSError as exc:
        sock.close()
        raise InvalidRequest("--port", port, f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                             " (is another server running there? give another --port)") from None
    sock.set_inheritable(True)
    return sock


def warn_about_placement(settings: Settings) -> None:
    """Ray actors on other nodes reach only shared state: say so when it is local."""
    if settings.run_workers and settings.worker_backend == "ray" and not settings.clustered:
        logging.getLogger("takeone.serve").warning(
            "--workers ray with the data folder's SQLite file and files: actors on other machines"
            " cannot reach them; give --database and --storage for a cluster of several machines")
    elif settings.run_workers and settings.worker_backend == "ray" and settings.storage_url is None:
        logging.getLogger("takeone.serve").warning(
            "--workers ray without --storage: actors on other machines cannot read inputs or store"
            " results in this data folder; give --storage s3://BUCKET/PREFIX")


def _local_workers(settings: Settings) -> bool:
    """Workers that load weights on this machine (Ray actors load them on their own nodes)."""
    return settings.run_workers and settings.worker_backend == "local"


def describe_workers(settings: Settings) -> str:
    from takeone.dispatch.local.devices import worker_configs

    if not settings.run_workers:
        return "none here (--no-workers): run `takeone worker` against the same store"
    if settings.worker_backend == "ray" and settings.gpus_per_job > 1:
        from takeone.dispatch.ray.group import describe_ray_groups

        return describe_ray_groups(settings)
    if settings.worker_backend == "ray":
        most = settings.max_workers if settings.max_workers is not None else "one per GPU"
        return (f"Ray actors at {settings.ray_address or 'the default Ray address'}"
                f" ({settings.min_workers} to {most}, {settings.worker_gpus:g} GPU each)")
    configs = worker_configs(settings)
    where = ", ".join(f"gpu {c.visible_gpu}" if c.visible_gpu else "cpu" for c in configs)
    if settings.gpus_per_job == 1:
        return f"{len(configs)} local ({where})"
    from takeone.dispatch.local.devices import unused_gpus

    text = (f"{len(configs)} local group(s) of {settings.gpus_per_job} ranks ({where}),"
            f" parallel {settings.parallel}")
    left = unused_gpus(settings)
    return text + (f"; GPU {','.join(left)} unused (too few for a group)" if left else "")


def describe_batching(settings: Settings) -> str:
    """The batch limit and window this server's workers use, for the start banner."""
    from takeone.dispatch.protocol import max_batch_of

    limit = max_batch_of(settings)
    if settings.gpus_per_job > 1:
        return "batching off (a worker group runs one job at a time)"
    if limit <= 1:
        return "batching off (one job per run; --max-batch N turns it on)"
    window = ("25 ms on a GPU, 0 on CPU" if settings.batch_window_ms is None
              else f"{settings.batch_window_ms:g} ms")
    return f"batching up to {limit} compatible jobs per run (a lone job waits {window} for company)"


def log_banner(settings: Settings, services: Any) -> None:
    """One start line an operator can act on: where, what, with which workers and limits."""
    from takeone import __version__
    from takeone.backends.factory import describe_blobs, describe_store

    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    base = (settings.public_url or f"http://{host}:{settings.port}").rstrip("/")
    workers = describe_workers(settings)
    allow = ", ".join(sorted(settings.fetch_allow)) or "none (private addresses refused)"
    lines = [
        f"takeone {__version__} serving profile {settings.profile} on {base}"
        f" (listening on {settings.host}:{settings.port})",
        f"  playground {base}/   API docs {base}/docs   metrics {base}/metrics",
        f"  data folder {settings.data_dir.resolve()}",
        f"  store {describe_store(settings)}; blobs {describe_blobs(settings)}",
        f"  workers {workers}",
        f"  {describe_batching(settings)}",
        *(f"  {line.strip()}" for line in _profile_lines(settings)),
        f"  image fetch allow-list: {allow}",
        f"  retention {settings.retention_s / 3600:g} h; blocking calls wait up to {settings.sync_timeout_s:g} s",
    ]
    logging.getLogger("takeone.serve").info("\n".join(lines), extra={
        "url": base, "profile": settings.profile, "data_dir": str(settings.data_dir.resolve()),
        "workers": workers, "fetch_allow": sorted(settings.fetch_allow)})


def _profile_lines(settings: Settings) -> list[str]:
    """The profile's speed-ups as this machine sees them and, for workers here, the commits of
    the weights they will read (Ray actors read their own node's: their ready lines say)."""
    from takeone.models.outlook import speedup_lines
    from takeone.models.registry import get_profile
    from takeone.models.weights import revision_lines

    try:
        profile = get_profile(settings.profile)
    except ValueError:
        return []
    lines = speedup_lines(profile.speedups)
    if _local_workers(settings):
        lines += revision_lines(profile, settings.weights_dir)
    return lines


def _worker(args: argparse.Namespace) -> int:
    import asyncio

    settings = worker_settings(args)
    if _local_workers(settings) and (problem := check_profile(settings.profile, settings.weights_dir)):
        print(f"takeone: {problem}", file=sys.stderr)
        return 2
    configure_logging(args.log_level, args.log_format)
    warn_about_placement(settings)
    asyncio.run(run_workers(settings))
    return 0


async def run_workers(settings: Settings) -> None:
    """Run a dispatcher and its worker processes until SIGINT or SIGTERM."""
    import asyncio

    from takeone.backends.factory import describe_blobs, describe_store
    from takeone.edge.services import Services

    services = Services.build(settings, check_store=True)
    await services.check_secret()
    dispatcher = services.make_dispatcher()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await dispatcher.start()
    services.dispatcher = dispatcher
    services.follow_changes()
    logging.getLogger("takeone.worker").info(
        "workers for profile %s: %s; store %s; blobs %s", settings.profile, describe_workers(settings),
        describe_store(settings), describe_blobs(settings))
    try:
        await stop.wait()
    finally:
        await dispatcher.stop()
        services.store.close()
