"""Job notifications across processes: ``LISTEN takeone_jobs`` on a connection of its own.

Every submit and status change in the store sends ``NOTIFY takeone_jobs, '<job id>
<STATUS>'`` with its transaction. A :class:`JobListener` holds one connection listening on
that channel in a background thread and calls each registered callback with ``(job_id,
status)``, so API replicas wake their blocking waiters and dispatchers wake idle workers
without polling. After a lost connection (a server restart) it reconnects with backoff.
Notifications sent while it was disconnected are lost: consumers keep a slow poll as well.

Callbacks run on the listener's thread; one that feeds an event loop should hand over with
``loop.call_soon_threadsafe``. An exception in a callback is logged and does not stop others.

Example::

    listener = JobListener("postgresql://takeone@db/takeone")
    listener.add(lambda job_id, status: print(job_id, status))
    listener.close()
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import psycopg

from takeone.backends.postgres.db import NOTIFY_CHANNEL, connect

log = logging.getLogger(__name__)

Callback = Callable[[str, str], None]
POLL_S = 0.5
BACKOFF_FIRST_S = 0.1
BACKOFF_MAX_S = 2.0


class JobListener:
    """A background thread relaying ``takeone_jobs`` notifications to callbacks."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._callbacks: list[Callback] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listening = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, callback: Callback) -> None:
        """Register ``callback``; the first one starts the thread."""
        with self._lock:
            self._callbacks.append(callback)
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name="takeone-pg-listener", daemon=True)
                self._thread.start()

    def wait_listening(self, timeout: float) -> bool:
        """True once the thread holds a connection with ``LISTEN`` in place."""
        return self._listening.wait(timeout)

    def alive(self) -> bool:
        """True while the background thread runs (from the first callback until close)."""
        return self._thread is not None and self._thread.is_alive()

    def close(self, timeout: float = 5.0) -> None:
        self._stop.set()
        thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        delay = BACKOFF_FIRST_S
        while not self._stop.is_set():
            try:
                self._listen()
                delay = BACKOFF_FIRST_S
            except (psycopg.Error, OSError) as exc:
                log.info("job notifications: connection lost (%s); reconnecting in %.1f s", exc, delay)
                self._stop.wait(delay)
                delay = min(delay * 2, BACKOFF_MAX_S)
            finally:
                self._listening.clear()

    def _listen(self) -> None:
        with connect(self.url) as conn:
            conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
            self._listening.set()
            while not self._stop.is_set():
                for note in conn.notifies(timeout=POLL_S):
                    self._dispatch(note.payload)

    def _dispatch(self, payload: str) -> None:
        job_id, _, status = payload.partition(" ")
        with self._lock:
            callbacks = list(self._callbacks)
        for callback in callbacks:
            try:
                callback(job_id, status)
            except Exception:
                log.exception("a job notification callback failed")
