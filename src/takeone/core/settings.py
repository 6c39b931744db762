"""One settings object, built by the CLI (or a test) and passed down.

Nothing in takeone reads the environment at import time; :func:`env_fetch_allow` is called by
the CLI when it builds :class:`Settings`.

Example::

    settings = Settings(data_dir=Path("data"), profile="tiny")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_PORT = 8000
DAY_S = 24 * 3600


@dataclass(frozen=True)
class Settings:
    """Everything the server, the worker and the CLI need to know."""

    data_dir: Path = Path("takeone-data")
    profile: str = "ltx-2"
    weights_dir: Path | None = None
    offload: str | None = None
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    public_url: str | None = None
    fetch_allow: frozenset[str] = field(default_factory=frozenset)
    workers: int | None = None
    run_workers: bool = True  # False: this process serves the API only (``--no-workers``)
    devices: tuple[str, ...] | None = None  # GPU indices for local workers (default: all)
    gpus_per_job: int = 1  # devices (or CPU ranks) forming one worker group that runs one job
    parallel: str = "auto"  # a group's strategy: auto | cfg | sequence
    prices_file: Path | None = None
    sync_timeout_s: float = 900.0
    job_timeout_s: float = 3600.0
    retention_s: float = DAY_S
    link_ttl_s: float = DAY_S
    max_queue: int = 1000
    queue_share: float = 0.5  # a key's default share of max_queue (a key's own max_queued wins)
    max_attempts: int = 2
    default_rate_limit: int | None = None
    max_body_bytes: int = 32 * 1024 * 1024
    sweep_interval_s: float = 300.0
    worker_start_timeout_s: float = 900.0
    lease_s: float = 30.0
    header_timeout_s: float = 15.0  # a client must send its request headers within this
    body_timeout_s: float = 120.0  # ... and its whole body within this
    heartbeat_s: float = 5.0
    # Batching: at most this many compatible queued jobs share one denoising run (None: the
    # profile's default; 1: off); a lone job waits at most the window for company (None: 25 ms
    # on a GPU, 0 on the CPU).
    max_batch: int | None = None
    batch_window_ms: float | None = None
    load_cooldown_s: float = 60.0  # a worker that keeps crashing rests this long (doubling) then retries
    store_busy_timeout_s: float = 30.0
    # Webhooks: seconds to wait after each failed attempt (Standard Webhooks' schedule), and
    # how long one attempt may take.
    webhook_retry_delays_s: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
    webhook_timeout_s: float = 15.0  # the whole attempt: connect, send, the answer's last byte
    health_details: bool = False  # /healthz shows worker ids, pids, jobs and full errors to anyone
    webhook_late_note_s: float = 30.0  # /healthz notes deliveries waiting longer for a slot
    # Slows every denoising step down; only for exercising timeouts, cancels and crashes.
    debug_step_delay_s: float = 0.0
    debug_load_delay_s: float = 0.0
    # Cluster mode: a shared database and bucket instead of the data folder's SQLite file and
    # files, and worker actors on a Ray cluster instead of local processes.
    secret_file: Path | None = None  # None: the data folder's secret.key (replicas must share it)
    database_url: str | None = None  # postgresql://...; None: SQLite in the data folder
    storage_url: str | None = None  # s3://BUCKET/PREFIX; None: files in the data folder
    s3_endpoint: str | None = None  # an S3-compatible service's URL (None: AWS, or AWS_ENDPOINT_URL)
    s3_public_endpoint: str | None = None  # where clients reach the bucket, if not s3_endpoint
    worker_backend: str = "local"  # local | ray
    ray_address: str | None = None  # None: start or join Ray the default way ("auto")
    min_workers: int = 0  # ray: actors kept even when idle
    max_workers: int | None = None  # ray: at most this many actors (None: one per GPU in the cluster)
    worker_gpus: float = 1.0  # ray: GPUs each actor reserves (0 for CPU-only pools)
    worker_idle_s: float = 60.0  # ray: an actor idle this long is retired (above min_workers)

    @property
    def db_path(self) -> Path:
        return self.data_dir / "takeone.db"

    @property
    def scratch_dir(self) -> Path:
        """Where workers render before a finished file is stored (beside the blobs, so
        storing it is a rename)."""
        return self.data_dir / "tmp"

    @property
    def clustered(self) -> bool:
        """True when the state lives outside the data folder (a database or a bucket)."""
        return self.database_url is not None or self.storage_url is not None

    @property
    def secret_path(self) -> Path:
        return self.secret_file or self.data_dir / "secret.key"

    def resolved_prices_file(self) -> Path | None:
        if self.prices_file is not None:
            return self.prices_file
        candidate = self.data_dir / "prices.toml"
        return candidate if candidate.exists() else None


def env_fetch_allow(environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """Hosts named in ``TAKEONE_FETCH_ALLOW`` (comma or space separated)."""
    env = os.environ if environ is None else environ
    raw = env.get("TAKEONE_FETCH_ALLOW", "")
    return frozenset(h for h in raw.replace(",", " ").split() if h)
