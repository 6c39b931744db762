"""One worker process seen from the API process: spawn it, talk to it, notice its death.

A reader thread turns the pipe into an asyncio queue; when the pipe closes (the process
exited or was killed) a :class:`WorkerDied` event is queued instead.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import threading
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from takeone.engine.config import WorkerConfig
from takeone.engine.messages import FromWorker, ToWorker
from takeone.engine.worker import worker_main


@dataclass(frozen=True)
class WorkerDied:
    exitcode: int | None


Event = FromWorker | WorkerDied


class WorkerProcess:
    """A spawned worker and the stream of its events.

    Example::

        proc = WorkerProcess(WorkerConfig(profile="tiny"), loop)
        proc.start()
        event = await proc.events.get()   # WorkerReady, WorkerLoadFailed or WorkerDied
    """

    def __init__(self, config: WorkerConfig, loop: asyncio.AbstractEventLoop) -> None:
        self.config = config
        self.loop = loop
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self._conn: Connection | None = None
        self._proc: BaseProcess | None = None
        self._send_lock = threading.Lock()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe(duplex=True)
        self._proc = ctx.Process(target=worker_main, args=(child, self.config), daemon=True,
                                 name=f"takeone-worker-{self.config.profile}")
        self._proc.start()
        child.close()
        self._conn = parent
        threading.Thread(target=self._read, daemon=True).start()

    def _relay(self) -> None:
        """Hand every event the worker sends to the loop, until its pipe closes."""
        assert self._conn is not None
        try:
            while True:
                self._emit(self._conn.recv())
        except (EOFError, OSError):
            pass

    def _read(self) -> None:
        assert self._proc is not None
        self._relay()
        self._proc.join(timeout=30)
        self._emit(WorkerDied(self._proc.exitcode))

    def _emit(self, event: Event) -> None:
        try:
            self.loop.call_soon_threadsafe(self.events.put_nowait, event)
        except RuntimeError:
            pass  # the loop is closed: the server is shutting down

    def send(self, message: ToWorker) -> bool:
        """Send a message; False if the worker is already gone."""
        if self._conn is None:
            return False
        try:
            with self._send_lock:
                self._conn.send(message)
            return True
        except (OSError, ValueError):
            return False

    def kill(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is None:
            return
        self._proc.join(timeout=timeout)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(timeout=5)
