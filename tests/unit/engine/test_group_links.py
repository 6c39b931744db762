"""The links inside a worker group, without a model: a follower never reports, a gone peer
reads as closed or EOF, a send to a closed pipe is refused quietly, and rank 0's wait ends
when a rank exits (NCCL would wait forever)."""

from __future__ import annotations

import multiprocessing
import time
from multiprocessing import Pipe

import pytest

from takeone.core.errors import GenerationFailed
from takeone.engine.group import PeerTransport, _closed, _next, _send_quietly
from takeone.engine.messages import CancelJob, JobDone, RunJob


def test_a_follower_reads_jobs_and_reports_nothing() -> None:
    rank0, follower = Pipe()
    link = PeerTransport(follower)
    rank0.send(RunJob("j1", {"kind": "t2v"}, "outputs/j1.mp4"))
    assert link.recv() == RunJob("j1", {"kind": "t2v"}, "outputs/j1.mp4")
    link.send(JobDone("j1"))  # rank 0 reports for the group
    assert not rank0.poll(0.05)
    rank0.close()
    with pytest.raises(EOFError):
        link.recv()


def test_a_closed_peer_is_seen_and_sends_to_it_are_refused() -> None:
    here, there = Pipe()
    assert not _closed(here)
    assert _send_quietly(here, CancelJob("j1")) and there.recv() == CancelJob("j1")
    there.close()
    assert _closed(here)
    here.close()
    assert not _send_quietly(here, CancelJob("j1"))


def test_rank_zeros_wait_ends_when_a_rank_exits() -> None:
    here, there = Pipe()
    ctx = multiprocessing.get_context("fork")
    alive = ctx.Process(target=time.sleep, args=(30,))
    gone = ctx.Process(target=time.sleep, args=(0,))
    alive.start()
    gone.start()
    try:
        there.send("ready")
        assert _next(here, [alive, gone]) == "ready"  # a message waiting is read at once
        gone.join(10)
        started = time.monotonic()
        with pytest.raises(GenerationFailed, match="rank 1 of the worker group exited"):
            _next(here, [alive, gone])
        assert time.monotonic() - started < 5
    finally:
        alive.kill()
        alive.join()
