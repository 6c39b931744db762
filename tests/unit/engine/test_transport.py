"""The pipe between a local worker and its dispatcher: messages cross whole (also from several
threads at once), and a dispatcher that is gone reads as EOFError."""

from __future__ import annotations

import threading
from multiprocessing import Pipe

import pytest

from takeone.engine.messages import CancelJob, JobDone, JobProgress, RunBatch, RunJob
from takeone.engine.transport import PipeTransport


def test_messages_cross_whole_both_ways() -> None:
    here, there = Pipe()
    worker = PipeTransport(here)
    batch = RunBatch((RunJob("j1", {"kind": "t2v", "prompt": "a fox"}, "outputs/j1.mp4"),
                      RunJob("j2", {"kind": "t2v", "prompt": "a hen"}, "outputs/j2.mp4")))
    there.send(batch)
    there.send(CancelJob("j2"))
    assert worker.recv() == batch
    assert worker.recv() == CancelJob("j2")
    worker.send(JobDone("j1", {"steps": 4}))
    assert there.recv() == JobDone("j1", {"steps": 4})


def test_sends_from_many_threads_do_not_interleave() -> None:
    here, there = Pipe()
    worker = PipeTransport(here)
    big = {"frames": "x" * 200_000}  # larger than a pipe buffer: an unlocked send could interleave

    def report(thread: int) -> None:
        for step in range(20):
            worker.send(JobDone(f"t{thread}-{step}", big) if step % 5 == 0 else JobProgress(f"t{thread}", step, 20))

    threads = [threading.Thread(target=report, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    got = [there.recv() for _ in range(80)]
    for t in threads:
        t.join()
    assert len(got) == 80
    for n in range(4):
        mine = [m.step for m in got if isinstance(m, JobProgress) and m.job_id == f"t{n}"]
        assert mine == [s for s in range(20) if s % 5]  # in order, none lost or torn
    assert all(m.metrics == big for m in got if isinstance(m, JobDone))


def test_a_gone_dispatcher_is_end_of_file() -> None:
    here, there = Pipe()
    worker = PipeTransport(here)
    there.close()
    with pytest.raises(EOFError):
        worker.recv()
