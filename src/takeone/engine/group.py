"""A worker group: N rank processes that run one job at a time as one worker.

Rank 0 talks to the dispatcher exactly as a single worker does (one lease, a progress message
per step, the result); it forwards each job to the other ranks over a pipe of their own, and
every rank renders it together (see :mod:`takeone.engine.parallel` for who computes what).
Only rank 0 stores the MP4. A rank that cannot go on ends the group rather than leave the
others waiting in a collective: a follower exits when rank 0's pipe closes, rank 0 retires
the group after a failed job, and the process that started the group kills every rank as
soon as one exits (:mod:`takeone.dispatch.local.group`), so the dispatcher sees one worker
death, requeues the job and builds the group again with backoff.

Example::

    group_rank_main(conn, peers, config, rank=0, world=2, port=29517)
"""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from takeone.core.blobs import output_key
from takeone.core.errors import GenerationFailed, JobCancelled
from takeone.core.task import VideoTask
from takeone.engine.config import WorkerConfig
from takeone.engine.messages import (
    FromWorker,
    JobDone,
    JobFailed,
    JobProgress,
    RunBatch,
    RunJob,
    Shutdown,
    ToWorker,
    WorkerLoadFailed,
    WorkerReady,
    WorkerRetiring,
)
from takeone.engine.transport import PipeTransport, Transport
from takeone.engine.worker import JobRunner, model_notes

log = logging.getLogger("takeone.worker")


class PeerTransport:
    """A follower's link to rank 0: jobs come in; nothing goes out (rank 0 reports)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def send(self, message: FromWorker) -> None:
        del message

    def recv(self) -> ToWorker:
        try:
            message: ToWorker = self.conn.recv()
        except OSError as exc:
            raise EOFError(str(exc)) from exc
        return message


def rank_device(rank: int) -> str:
    """``cuda:RANK`` among the group's visible GPUs (a local group's ranks all see the group's
    GPUs), ``cuda:0`` where the rank sees only its own (a Ray rank), else the CPU."""
    import torch

    if not torch.cuda.is_available():
        return "cpu"
    return f"cuda:{rank if torch.cuda.device_count() > 1 else 0}"


def group_rank_main(conn: Connection | None, peers: list[Connection], config: WorkerConfig,
                    rank: int, world: int, port: int) -> None:
    """Entry point of one rank's process (rank 0 gets the dispatcher's ``conn``)."""
    if config.visible_gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = config.visible_gpu
    import torch

    from takeone.engine.parallel import init_group

    device = rank_device(rank)
    if device == "cpu":  # the ranks share the cores
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // world))
    config = dataclasses.replace(config, device=device)
    transport: Transport = PipeTransport(conn) if conn is not None else PeerTransport(peers[0])
    try:
        init_group(rank, world, port, torch.device(device))
        runner = GroupRunner(transport, config, peers if rank == 0 else [], rank, world)
    except Exception as exc:  # noqa: BLE001 - reported by rank 0; a follower's exit ends the group
        transport.send(WorkerLoadFailed(f"rank {rank}: {type(exc).__name__}: {exc}"))
        return
    notes = (f"group: {world} ranks on {runner.device}, {runner.backend}, parallel {runner.strategy}",
             *model_notes(runner.model, runner.revisions))
    transport.send(WorkerReady(config.profile, f"{world}x {runner.device}", os.getpid(), notes))
    runner.serve()


class GroupRunner(JobRunner):
    """One rank's runner: rank 0 reports to the dispatcher; the others follow it."""

    def __init__(self, transport: Transport, config: WorkerConfig, peers: list[Connection],
                 rank: int, world: int) -> None:
        import torch

        from takeone.engine.parallel import StepAgreement, apply_strategy, backend_for

        super().__init__(transport, config)
        self.peers = peers
        self.rank = rank
        device = torch.device(self.device)
        self.backend = backend_for(device)
        self.strategy = apply_strategy(self.model, config.parallel, rank, world)
        self.agree = StepAgreement(device)

    def serve(self) -> None:
        """Run jobs until told to stop. After a failed job the ranks may be out of step (one
        left a collective the others still wait in): the group retires and is built again."""
        threading.Thread(target=self._read, daemon=True).start()
        while (work := self.inbox.get()) is not None:
            # A group claims single jobs; a batch sent anyway runs one job at a time, each
            # forwarded to every rank, so the ranks stay in step.
            for job in work.jobs if isinstance(work, RunBatch) else (work,):
                result = self._run(job)
                if self.orphaned.is_set():
                    return
                self.transport.send(result)
                self.cancelled.discard(job.job_id)
                if isinstance(result, JobFailed) and result.kind in ("oom", "error"):
                    self.transport.send(WorkerRetiring(f"a failed job ends the group: {result.error}"))
                    return
        for peer in self.peers:
            _send_quietly(peer, Shutdown())

    def _read(self) -> None:
        if self.rank == 0:
            super()._read()
            return
        try:  # a follower: rank 0 gone means the group is over, even mid-collective
            while not isinstance(msg := self.transport.recv(), Shutdown):
                if isinstance(msg, RunJob):
                    self.inbox.put(msg)
        except (EOFError, OSError):
            os._exit(0)
        self.inbox.put(None)

    def _run(self, job: RunJob) -> JobDone | JobFailed:
        self.agree.reset()
        for peer in self.peers:
            if not _send_quietly(peer, job):
                os._exit(1)  # a follower is gone: the group cannot run it
        result = super()._run(job)
        if isinstance(result, JobFailed) and result.kind in ("oom", "error") and self._rank_lost(result):
            # Not this job's fault: a rank died under it. Exit without a verdict, so the
            # dispatcher sees the group die and runs the job again on a new group.
            log.error("a rank of the group is gone (%s); ending the group", result.error)
            os._exit(1)
        return result

    def _rank_lost(self, result: JobFailed) -> bool:
        """A follower's pipe closed (it died), or the collective says a peer went away."""
        time.sleep(0.2)  # a killed rank's pipe closes with its sockets; let both be seen
        if any(_closed(peer) for peer in self.peers):
            return True
        return any(marker in result.error for marker in _LOST_PEER_MARKERS)

    def progress(self, job_id: str, step: int, total: int) -> None:
        if self.rank == 0:
            super().progress(job_id, step, total)
        self.agree.step(job_id in self.cancelled or self.orphaned.is_set())

    def stop_job(self, job_id: str) -> bool:
        return self.agree.stop  # agreed at the last step, the same on every rank

    def job_folder(self, job_id: str) -> Path:
        return super().job_folder(job_id if self.rank == 0 else f"{job_id}.rank{self.rank}")

    def run_prepared(self, job: RunJob, task: VideoTask, folder: Path) -> JobDone | JobFailed:
        if self.rank == 0:
            return super().run_prepared(job, task, folder)
        try:  # the same work as rank 0, so the collectives line up; the file is not kept
            self.loras.activate(task.loras)  # the same adapters as rank 0, or the halves would differ
            self.render(self.model, self.profile, task, folder / "out.mp4",
                        progress=lambda step, total: self.progress(job.job_id, step, total),
                        should_cancel=lambda: self.stop_job(job.job_id))
            if self.stop_job(job.job_id):
                raise JobCancelled()
        except Exception as exc:  # noqa: BLE001 - a failed job is data, as on rank 0
            return self.failure(job.job_id, exc)
        return JobDone(job.job_id, {})


def spawn_group(config: WorkerConfig) -> tuple[Connection, list[BaseProcess]]:
    """Start ``config.gpus_per_job`` rank processes; returns rank 0's pipe and the ranks."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    world, port = config.gpus_per_job, free_port()
    parent, child = ctx.Pipe(duplex=True)
    links = [ctx.Pipe(duplex=True) for _ in range(world - 1)]
    ranks: list[BaseProcess] = [ctx.Process(target=group_rank_main, daemon=True, name=f"takeone-rank0-{config.profile}",
                         args=(child, [a for a, _ in links], config, 0, world, port))]
    ranks += [ctx.Process(target=group_rank_main, daemon=True, name=f"takeone-rank{r}-{config.profile}",
                          args=(None, [b], config, r, world, port))
              for r, (_, b) in enumerate(links, start=1)]
    for rank in ranks:
        rank.start()
    child.close()
    for a, b in links:
        a.close()
        b.close()
    return parent, ranks


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_one_job(config: WorkerConfig, task: VideoTask, output: Path,
                progress: Callable[[int, int], None]) -> dict[str, Any]:
    """Render ``task`` (inputs as local files) on a fresh group and write the MP4 to ``output``:
    what ``takeone generate --gpus-per-job N`` does. Returns the job's metrics."""
    from takeone.backends.local_blobs import LocalBlobStore

    with tempfile.TemporaryDirectory(prefix="takeone-group-") as tmp:
        blobs = LocalBlobStore(Path(tmp) / "blobs", secret=b"")
        inputs = {}
        for role, path in task.inputs().items():
            inputs[role] = f"inputs/{role}.png"
            blobs.put(inputs[role], Path(path).read_bytes())
        config = dataclasses.replace(config, blobs_root=str(Path(tmp) / "blobs"),
                                     scratch_dir=str(Path(tmp) / "scratch"), storage_url=None)
        conn, ranks = spawn_group(config)
        try:
            job = RunJob("local", task.with_inputs(inputs).to_dict(), output_key("local"))
            result = _follow(conn, job, progress, ranks)
            blobs.fetch_to(output_key("local"), output)
            return result.metrics
        finally:
            _send_quietly(conn, Shutdown())
            for rank in ranks:
                rank.join(timeout=30)
                if rank.is_alive():
                    rank.kill()


def _follow(conn: Connection, job: RunJob, progress: Callable[[int, int], None],
            ranks: list[BaseProcess]) -> JobDone:
    try:
        message = _next(conn, ranks)
        if isinstance(message, WorkerLoadFailed):
            raise GenerationFailed(f"the worker group did not load: {message.error}")
        conn.send(job)
        while True:
            message = _next(conn, ranks)
            if isinstance(message, JobProgress):
                progress(message.step, message.total)
            elif isinstance(message, JobDone):
                return message
            elif isinstance(message, JobFailed):
                raise GenerationFailed(message.error)
    except (EOFError, OSError) as exc:
        raise GenerationFailed("a rank of the worker group exited") from exc


def _next(conn: Connection, ranks: list[BaseProcess]) -> object:
    """Rank 0's next message; a rank that exits meanwhile ends the wait (NCCL would not)."""
    while not conn.poll(1.0):
        dead = [i for i, rank in enumerate(ranks) if not rank.is_alive()]
        if dead:
            raise GenerationFailed(f"rank {dead[0]} of the worker group exited")
    message: object = conn.recv()
    return message


_LOST_PEER_MARKERS = ("Connection closed by peer", "Connection reset by peer", "NCCL", "gloo")


def _closed(conn: Connection) -> bool:
    """True when the other end is gone (followers never write to rank 0)."""
    try:
        if conn.poll(0):
            conn.recv()
        return False
    except (EOFError, OSError):
        return True


def _send_quietly(conn: Connection, message: ToWorker) -> bool:
    try:
        conn.send(message)
        return True
    except (OSError, ValueError):
        return False
