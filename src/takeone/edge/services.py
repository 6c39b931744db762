"""The parts one process wires together, built once from :class:`Settings`.

This is wiring only: which store, which blob store, which dispatcher. An API process uses
``store``, ``blobs`` and ``waiter``; a worker process (``takeone worker``) uses
:meth:`Services.make_dispatcher`; ``takeone serve`` does both in one process tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, Self, TypeVar

from takeone.backends.factory import open_blobs, open_store
from takeone.core.blobs import BlobStore
from takeone.core.credentials import check_shared_secret
from takeone.core.jobs import ChangeFeed, JobStatus
from takeone.core.server_secret import load_or_create_secret
from takeone.core.settings import Settings
from takeone.core.store import Store
from takeone.dispatch.identity import process_identity
from takeone.dispatch.local.devices import worker_configs
from takeone.dispatch.local.dispatcher import LocalDispatcher
from takeone.dispatch.protocol import Dispatcher, DispatcherSettings
from takeone.dispatch.waits import JobWaiter
from takeone.edge.imagework import ImageWork
from takeone.edge.surcharges import Surcharges
from takeone.media.images import FetchPolicy

T = TypeVar("T")


class PriceTableKind(Protocol):
    """A dialect's price table (its ``Dialect.prices``): its defaults, overridden by the
    operator's ``--prices`` file; ``ValueError`` naming the entry for a bad one."""

    @classmethod
    def load(cls, path: Path | None) -> Self: ...


@dataclass
class Services:
    settings: Settings
    store: Store
    blobs: BlobStore
    fetch_policy: FetchPolicy
    waiter: JobWaiter
    clock: Callable[[], float] = field(default=time.time)
    identity: str = field(default_factory=process_identity)
    dispatcher: Dispatcher | None = None
    price_tables: Mapping[type[Any], Any] = field(default_factory=dict)  # each dialect's, by its class
    server_secret: bytes = b""  # the data folder's secret.key: seals key credentials
    images: ImageWork = field(default_factory=ImageWork)  # clients' pictures, off the store's threads
    surcharges: Surcharges = field(default_factory=Surcharges)  # per profile and per LoRA

    @classmethod
    def build(cls, settings: Settings, clock: Callable[[], float] = time.time,
              check_store: bool = False) -> Services:
        store = open_store(settings, clock, check_store)
        secret = load_or_create_secret(settings.secret_path)
        return cls(
            settings=settings,
            store=store,
            blobs=open_blobs(settings, secret, check_store),
            price_tables=load_price_tables(settings.resolved_prices_file()),
            surcharges=Surcharges.load(settings.resolved_prices_file()),
            server_secret=secret,
            fetch_policy=FetchPolicy(allow_hosts=settings.fetch_allow),
            waiter=JobWaiter(store),
            clock=clock,
        )

    def prices(self, kind: type[T]) -> T:
        """The price table of class ``kind`` (a dialect's ``Dialect.prices``), as loaded."""
        table = self.price_tables[kind]
        if not isinstance(table, kind):
            raise TypeError(f"{kind.__name__}: the price tables hold a {type(table).__name__}")
        return table

    def make_dispatcher(self) -> Dispatcher:
        """Local worker processes, or (``--workers ray``) a pool of actors on a Ray cluster."""
        if self.settings.worker_backend == "ray":
            from takeone.dispatch.ray.pool import RayDispatcher

            return RayDispatcher(self.store, self.settings, on_finished=self.waiter.finished)
        return self._local_dispatcher()

    def _local_dispatcher(self) -> LocalDispatcher:
        return LocalDispatcher(self.store, worker_configs(self.settings),
                               DispatcherSettings.from_settings(self.settings), self.blobs,
                               on_finished=self.waiter.finished)

    async def check_secret(self) -> None:
        """Refuse to start with a server secret other than the store's (see ``--secret-file``)."""
        await check_shared_secret(self.store, self.server_secret, str(self.settings.secret_path))

    def follow_changes(self) -> None:
        """Wake this process's waiters and workers on other processes' changes, when the
        store announces them (correctness never depends on it: both also poll)."""
        if not isinstance(self.store, ChangeFeed):
            return
        loop = asyncio.get_running_loop()

        def changed(job_id: str, status: str) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: shutting down
                loop.call_soon_threadsafe(self._on_change, job_id, status)

        self.store.add_listener(changed)

    def _on_change(self, job_id: str, status: str) -> None:
        if status == JobStatus.FAILED.value:
            self.cancel_running(job_id)  # a cancel from another replica stops it here at once
        elif status == JobStatus.COMPLETED.value:
            self.waiter.finished(job_id)
        elif status == JobStatus.QUEUED.value and self.dispatcher is not None:
            self.dispatcher.notify()

    def cancel_running(self, job_id: str) -> None:
        self.waiter.finished(job_id)
        if self.dispatcher is not None:
            self.dispatcher.cancel_running(job_id)


def load_price_tables(path: Path | None) -> dict[type[Any], Any]:
    """Every dialect's price table, read from ``path`` (the ``--prices`` file) now, so that a
    bad entry stops the server at its start rather than at a request."""
    from takeone.edge.dialects.registry import dialects

    return {kind: kind.load(path) for kind in dict.fromkeys(d.prices for d in dialects())}
