"""A worker group seen from the dispatcher: N rank processes that look like one worker.

:class:`GroupProcess` spawns the ranks (rank 0 gets the dispatcher's pipe, each other rank a
pipe to rank 0) and watches all of them: when any rank exits, the others are killed and one
:class:`WorkerDied` is reported, after whatever rank 0 had already sent. The dispatcher then
treats it as any worker death: the running job goes back to the queue (one attempt spent,
charged only when it completes) and the group is started again with backoff.

Example::

    proc = make_process(WorkerConfig(profile="tiny", gpus_per_job=2), loop)
    proc.start()
"""

from __future__ import annotations

import asyncio
import logging
import threading
from multiprocessing.connection import wait
from multiprocessing.process import BaseProcess

from takeone.dispatch.local.process import WorkerDied, WorkerProcess
from takeone.engine.config import WorkerConfig
from takeone.engine.group import spawn_group

log = logging.getLogger("takeone.dispatcher")


def make_process(config: WorkerConfig, loop: asyncio.AbstractEventLoop) -> WorkerProcess:
    """A group of ``config.gpus_per_job`` ranks, or a plain worker process."""
    return GroupProcess(config, loop) if config.gpus_per_job > 1 else WorkerProcess(config, loop)


def group_devices(gpus: list[str], per_job: int) -> tuple[list[str], list[str]]:
    """GPUs in groups of ``per_job`` (each as ``"0,1"``) and the ones left over, unused."""
    whole = len(gpus) - len(gpus) % per_job
    groups = [",".join(gpus[i:i + per_job]) for i in range(0, whole, per_job)]
    return groups, gpus[whole:]


class GroupProcess(WorkerProcess):
    """``config.gpus_per_job`` spawned ranks behind one event stream."""

    def __init__(self, config: WorkerConfig, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(config, loop)
        self.ranks: list[BaseProcess] = []
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        self._conn, self.ranks = spawn_group(self.config)
        self._proc = self.ranks[0]
        self._reader = threading.Thread(target=self._relay, daemon=True)
        self._reader.start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        """The first rank to exit ends the group: kill the rest, then report one death."""
        ended = wait([rank.sentinel for rank in self.ranks])
        first = next(rank for rank in self.ranks if rank.sentinel in ended)
        first.join(timeout=5)  # its sentinel closes a moment before its exit code is there
        if any(rank.is_alive() for rank in self.ranks):
            log.warning("rank %s of a %d-rank group exited (code %s); ending the group",
                        self.ranks.index(first), len(self.ranks), first.exitcode)
        self.kill()
        for rank in self.ranks:
            rank.join(timeout=30)
        if self._reader is not None:
            self._reader.join(timeout=5)  # what rank 0 sent before dying is heard first
        self._emit(WorkerDied(first.exitcode))

    def kill(self) -> None:
        for rank in self.ranks:
            if rank.is_alive():
                rank.kill()

    def stop(self, timeout: float = 10.0) -> None:
        for rank in self.ranks:
            rank.join(timeout=timeout)
        self.kill()
