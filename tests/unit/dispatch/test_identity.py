"""Process identities: only a process of this host can be known dead at once; malformed or
foreign identities are presumed alive (their lease runs out instead); an unreaped child is dead."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from takeone.dispatch.identity import is_dead, process_identity

HOST = socket.gethostname()


def test_this_process_has_a_host_and_pid_identity() -> None:
    assert process_identity() == f"{HOST}/{os.getpid()}"
    assert not is_dead(process_identity())
    assert not is_dead(f"{process_identity()}/3")  # a slot of this process


@pytest.mark.parametrize("identity", ["", HOST, f"{HOST}/", f"{HOST}/abc", f"{HOST}/-1", "/123", "other-host/1"])
def test_what_cannot_be_checked_here_is_presumed_alive(identity: str) -> None:
    assert not is_dead(identity)


def test_a_killed_child_not_yet_reaped_is_dead() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert not is_dead(f"{HOST}/{child.pid}/0")
        os.kill(child.pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while not is_dead(f"{HOST}/{child.pid}/0"):  # a zombie until waited for
            assert time.monotonic() < deadline, "the killed child never read as dead"
            time.sleep(0.01)
        assert child.poll() is not None  # ... and it was a zombie, not gone: poll() reaps it now
    finally:
        child.kill()
        child.wait()
    assert is_dead(f"{HOST}/{child.pid}")
