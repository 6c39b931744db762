"""Who holds a lease or waits for a blocking answer: ``host/pid[/slot]``, and whether that
process is known to be gone.

A process on this host is known dead at once (``os.kill(pid, 0)``); one elsewhere is known
dead when its reports in the store stop (:func:`liveness`), and a lease it held runs out
anyway, which is what leases are for.

Example::

    me = process_identity()            # "gpu-box-1/4242"
    is_dead(f"{me}/0")                 # False
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable

from takeone.core.jobs import WorkerStatus

API_STATE = "api"  # what an API process reports about itself (it runs no jobs)
STALE_HEARTBEATS = 6  # reports older than this many heartbeats are from a process that is gone


def process_identity() -> str:
    return f"{socket.gethostname()}/{os.getpid()}"


def is_dead(identity: str) -> bool:
    parts = identity.split("/")
    if len(parts) < 2 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return _is_zombie(pid)


def liveness(reports: Iterable[WorkerStatus], now: float, heartbeat_s: float) -> Callable[[str], bool]:
    """An ``is_dead`` that also knows processes on other hosts: one whose last report (API
    processes and worker slots report every heartbeat) is stale, or says it stopped. A process
    that never reported is presumed alive (its lease, if any, still runs out)."""
    last = {r.id: r for r in reports}
    cutoff = now - STALE_HEARTBEATS * heartbeat_s

    def dead(identity: str) -> bool:
        if is_dead(identity):
            return True
        report = last.get(identity)
        return report is not None and (report.state == "stopped" or report.seen_at < cutoff)

    return dead


def _is_zombie(pid: int) -> bool:
    """A killed child not yet reaped still answers ``kill(pid, 0)``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
