"""How a worker runner talks to its dispatcher: a small interface, so the runner can live
in a spawned local process (a pipe) or in a remote actor (a queue) without changing.

Example::

    runner = JobRunner(PipeTransport(conn), config)
"""

from __future__ import annotations

import threading
from multiprocessing.connection import Connection
from typing import Protocol

from takeone.engine.messages import FromWorker, ToWorker


class Transport(Protocol):
    def send(self, message: FromWorker) -> None:
        """Deliver one message to the dispatcher (thread-safe)."""

    def recv(self) -> ToWorker:
        """The next message from the dispatcher; ``EOFError`` once it is gone."""


class PipeTransport:
    """One end of a ``multiprocessing`` pipe."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._lock = threading.Lock()

    def send(self, message: FromWorker) -> None:
        with self._lock:
            self.conn.send(message)

    def recv(self) -> ToWorker:
        try:
            message: ToWorker = self.conn.recv()
        except OSError as exc:
            raise EOFError(str(exc)) from exc
        return message
