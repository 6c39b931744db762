"""The parts one API process wires together, built once from :class:`Settings`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from takeone.accounts.keys import KeyStore
from takeone.accounts.limits import RateLimiter
from takeone.backends.sqlite.db import Database
from takeone.backends.sqlite.jobs import SqliteJobStore
from takeone.media.images import FetchPolicy
from takeone.dispatch.local.devices import count_gpus
from takeone.dispatch.local.dispatcher import Dispatcher, LocalDispatcher
from takeone.engine.worker import WorkerConfig
from takeone.core.settings import Settings
from takeone.edge.dialects.segmind.pricing import PriceTable
from takeone.core.blobs import Storage
from takeone.backends.local_blobs import LocalStorage, load_or_create_secret


@dataclass
class Services:
    settings: Settings
    db: Database
    keys: KeyStore
    jobs: SqliteJobStore
    storage: Storage
    limiter: RateLimiter
    prices: PriceTable
    fetch_policy: FetchPolicy
    clock: Callable[[], float] = field(default=time.time)
    dispatcher: Dispatcher | None = None

    @classmethod
    def build(cls, settings: Settings, clock: Callable[[], float] = time.time) -> Services:
        db = Database(settings.db_path)
        return cls(
            settings=settings,
            db=db,
            keys=KeyStore(db, clock),
            jobs=SqliteJobStore(db, clock),
            storage=LocalStorage(settings.outputs_dir, load_or_create_secret(settings.secret_path)),
            limiter=RateLimiter(time.monotonic),
            prices=PriceTable.load(settings.resolved_prices_file()),
            fetch_policy=FetchPolicy(allow_hosts=settings.fetch_allow),
            clock=clock,
        )

    def make_dispatcher(self) -> LocalDispatcher:
        s = self.settings
        return LocalDispatcher(
            self.jobs, worker_configs(s), s.outputs_dir, max_attempts=s.max_attempts,
            job_timeout_s=s.job_timeout_s, start_timeout_s=s.worker_start_timeout_s,
        )

    def require_dispatcher(self) -> Dispatcher:
        assert self.dispatcher is not None, "the server has not started"
        return self.dispatcher


def worker_configs(settings: Settings) -> list[WorkerConfig]:
    """One worker per GPU, or one on a CPU-only machine (``--workers`` overrides)."""
    gpus = count_gpus()
    count = settings.workers or max(gpus, 1)
    return [
        WorkerConfig(profile=settings.profile,
                     visible_gpu=str(i % gpus) if gpus else None,
                     weights_dir=str(settings.weights_dir) if settings.weights_dir else None,
                     offload=settings.offload,
                     step_delay_s=settings.debug_step_delay_s)
        for i in range(count)
    ]
