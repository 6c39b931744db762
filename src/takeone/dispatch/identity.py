"""Who holds a lease or waits for a blocking answer: ``host/pid[/slot]``, and whether that
process is known to be gone.

Only a process on this host can be known dead (``os.kill(pid, 0)``); one elsewhere is
presumed alive until its lease runs out, which is what leases are for.

Example::

    me = process_identity()            # "gpu-box-1/4242"
    is_dead(f"{me}/0")                 # False
"""

from __future__ import annotations

import os
import socket


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


def _is_zombie(pid: int) -> bool:
    """A killed child not yet reaped still answers ``kill(pid, 0)``."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
