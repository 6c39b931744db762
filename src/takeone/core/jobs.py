"""Jobs and their states; every transition is checked here, in one place.

    QUEUED -> PROCESSING -> COMPLETED
       |          |------> FAILED
       |          `------> QUEUED   (retried after a worker crash or server restart)
       `-----------------> FAILED   (cancelled or timed out while queued)
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from takeone.core.errors import Conflict, RateLimited
from takeone.core.task import VideoTask


class JobStatus(str, enum.Enum):
    """The queue states (dialects map them onto their own words)."""

    QUEUED = "QUEUED"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"

    def is_terminal(self) -> bool:
        return self in (JobStatus.COMPLETED, JobStatus.FAILED)

    def can_become(self, new: JobStatus) -> bool:
        return new in _TRANSITIONS[self]


_TRANSITIONS: dict[JobStatus, frozenset[JobStatus]] = {
    JobStatus.QUEUED: frozenset({JobStatus.PROCESSING, JobStatus.FAILED}),
    JobStatus.PROCESSING: frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.QUEUED}),
    JobStatus.COMPLETED: frozenset(),
    JobStatus.FAILED: frozenset(),
}


@dataclass(frozen=True)
class Job:
    """One accepted generation request, as persisted."""

    id: str
    key_id: str
    task: VideoTask
    price: float
    status: JobStatus
    created_at: float
    blocking: bool = False
    progress: float = 0.0
    attempts: int = 0
    error: str | None = None
    output: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    started_at: float | None = None
    finished_at: float | None = None
    route: str = ""  # the dialect's name for the operation it was submitted to
    caller: str | None = None  # blocking jobs: the API process waiting for the answer
    worker: str | None = None  # running jobs: the lease owner
    request_hash: str | None = None  # what its idempotency key was first used for
    dialect: str = field(kw_only=True)  # the API dialect it was submitted through: only it reads the job
    webhook_url: str | None = None  # where its status changes are delivered (the outbox)
    external_id: str | None = None  # the client's own id for it, unique per key and dialect
    meta: dict[str, Any] = field(default_factory=dict)  # the dialect's own echo fields

LOST_WORKER = "the worker running this job stopped answering"
EXPIRY_PAGE = 500  # finished jobs the sweeper loads at once (memory stays bounded at any size)


def replays(existing: Job, new: Job, idem: str) -> bool:
    """Whether a submit with a used Idempotency-Key answers with ``existing`` (True), or may
    make a new attempt (False: the earlier request failed, nothing was charged, so the store
    frees the key). A key reused for another request is a :class:`Conflict` (409)."""
    if existing.request_hash != new.request_hash or existing.route != new.route:
        raise Conflict(
            f"Idempotency-Key {idem!r} was already used for a different request"
            f" (to {existing.route}, request {existing.id}); use a new key for a new request")
    return existing.status is not JobStatus.FAILED


BatchKey = Callable[["Job"], Hashable | None]
"""What a queued job may share a run with: jobs with equal keys batch; None runs alone."""
BATCH_SCAN = 64
"""How many queued jobs, in queue order, a batch claim looks through for the first one's company."""


def pick_batch(queued: Sequence[Job], key: BatchKey, limit: int) -> list[Job]:
    """The first of ``queued`` (in the stores' queue order) and up to ``limit - 1`` later ones
    with its key.

    The job whose turn it is always leads, so batching never starves a job; a job whose key is None (its
    family cannot batch its case) runs alone, and so does every job when ``limit`` is 1.
    """
    if not queued:
        return []
    first = key(queued[0]) if limit > 1 else None
    if first is None:
        return [queued[0]]
    mates = [job for job in queued[1:] if key(job) == first]
    return [queued[0], *mates[: limit - 1]]


def lease_lost(owner: str | None, expires_at: float | None, now: float, is_dead: Callable[[str], bool],
               keep: frozenset[str] = frozenset()) -> bool:
    """A running job's lease is lost when it expired or its owner is known dead, unless the
    owner is one of ``keep`` (alive and running it right now)."""
    if owner in keep:
        return False
    return (expires_at is not None and expires_at < now) or (owner is not None and is_dead(owner))


@dataclass(frozen=True)
class SubmitLimits:
    """What a submit must respect: the key's concurrent jobs, the server's queue length and
    the key's share of that queue (None: no share of its own, only the whole queue)."""

    max_concurrent: int | None
    max_queue: int
    max_queued: int | None = None


def check_queue(limits: SubmitLimits, queued: int, queued_for_key: int) -> None:
    """:class:`RateLimited` if the key has its whole share of the queue waiting, or the queue
    is full (the counts are the store's, inside the submit's transaction)."""
    if queued >= limits.max_queue:
        raise RateLimited(f"the queue is full ({limits.max_queue} jobs waiting); retry later", 30)
    if limits.max_queued is not None and queued_for_key >= limits.max_queued:
        raise RateLimited(
            f"this key already has {queued_for_key} jobs waiting, its share of the queue"
            f" ({limits.max_queued} of {limits.max_queue}); retry when one has started", 10)


@dataclass(frozen=True)
class WorkerStatus:
    """One worker slot as its dispatcher last reported it (``seen_at``: the report's time)."""

    id: str
    profile: str
    state: str  # starting | ready | failed | stopped (a ready worker may be running ``job_id``)
    seen_at: float
    device: str | None = None
    job_id: str | None = None
    error: str | None = None
    pid: int | None = None


class JobQueue(Protocol):
    """The queue's writes: every status change of a job. Any process may call any method; a
    running job has a lease (owner, expiry) that its dispatcher renews with every progress
    report, and an expired lease puts the job back in the queue (or fails it once its
    attempts are spent)."""

    async def submit(self, job: Job, limits: SubmitLimits,
                     idempotency_key: str | None = None) -> Job:
        """Persist a QUEUED job and reserve its price, atomically; return the existing job
        for a repeated idempotency key."""

    async def claim(self, owner: str, lease_s: float) -> Job | None:
        """Move the QUEUED job served next (round-robin across keys) to PROCESSING under a
        lease held by ``owner``."""

    async def claim_batch(self, owner: str, lease_s: float, limit: int, key: BatchKey) -> list[Job]:
        """Claim the QUEUED job served next and up to ``limit - 1`` queued jobs with its ``key``
        (:func:`pick_batch`) in one transaction; each gets its own lease (all held by
        ``owner``), attempt and status record. Empty when nothing is queued."""

    async def renew(self, job_id: str, owner: str, lease_s: float,
                    progress: float | None = None) -> bool:
        """Extend the lease (and record progress); False if the job is no longer running
        under ``owner`` (cancelled, failed, or requeued after the lease expired)."""

    async def complete(self, job_id: str, output: str, metrics: dict[str, Any]) -> Job | None:
        """PROCESSING -> COMPLETED and commit the price; None if the job was no longer running."""

    async def fail(self, job_id: str, error: str) -> Job | None:
        """-> FAILED and release the price; None if the job was already finished."""

    async def requeue(self, job_id: str, max_attempts: int, error: str) -> Job | None:
        """PROCESSING -> QUEUED if attempts remain (never for blocking jobs), else FAILED."""

    async def expire_leases(self, max_attempts: int, is_dead: Callable[[str], bool],
                            keep: frozenset[str] = frozenset()) -> list[Job]:
        """Requeue (or fail) running jobs whose lease expired or whose owner ``is_dead``;
        never those of the owners in ``keep`` (alive and running them right now)."""

    async def fail_lost_callers(self, is_dead: Callable[[str], bool], reason: str) -> list[Job]:
        """Fail unfinished blocking jobs whose waiting API process ``is_dead``."""


class JobReads(Protocol):
    """What status polls, histories, /metrics and idempotent submits read."""

    async def get(self, job_id: str) -> Job | None: ...

    async def statuses(self, job_ids: Sequence[str]) -> dict[str, JobStatus]:
        """The status of each of ``job_ids`` still stored (one absent is gone), in one read:
        what a process's held blocking calls check on each interval, whatever their number."""

    async def job_exists(self, job_id: str) -> bool: ...

    async def queue_position(self, job_id: str) -> int | None:
        """1 for the job served next; None unless the job is QUEUED."""

    async def queued_ids(self) -> list[str]: ...

    async def counts(self) -> dict[str, int]:
        """How many jobs the store holds in each status (finished ones until retention)."""

    async def recent_for_key(self, key_id: str, limit: int) -> list[Job]:
        """The key's most recent jobs, newest first."""

    async def jobs_for_key(self, key_id: str, dialect: str, limit: int, offset: int = 0,
                           after: str | None = None, ascending: bool = False,
                           route: str | None = None) -> list[Job]:
        """One dialect's jobs of a key (of one ``route`` if given), newest first (or oldest
        first), skipping ``offset`` or starting after the job ``after`` (a cursor)."""

    async def queue_counts(self, key_id: str) -> tuple[int, int]:
        """Queued jobs in all, and the key's own (a cheap early look; submit checks again)."""

    async def find_idempotent(self, key_id: str, idempotency_key: str) -> Job | None:
        """The key's job submitted with ``idempotency_key`` (None: none holds it)."""

    async def find_external(self, key_id: str, dialect: str, external_id: str) -> Job | None:
        """The key's job that the client named ``external_id`` in ``dialect``."""


class Retention(Protocol):
    """What the sweeper uses to forget finished jobs."""

    async def expired(self, before: float, limit: int = EXPIRY_PAGE) -> list[Job]:
        """At most ``limit`` finished jobs that finished before ``before``, the oldest first
        (the sweeper deletes a page, then asks again)."""

    async def delete(self, job_id: str) -> None: ...


class Presence(Protocol):
    """Worker reports and the store's own health, for /healthz."""

    async def report_worker(self, status: WorkerStatus) -> None: ...

    async def workers(self) -> list[WorkerStatus]: ...

    async def ping(self) -> None:
        """A tiny write: raises :class:`~takeone.core.errors.StoreUnavailable` when the
        store cannot take writes (locked past its timeout, disk full, corrupt)."""


class JobStore(JobQueue, JobReads, Retention, Presence, Protocol):
    """The durable queue: its writes, reads, retention and presence together."""


@runtime_checkable
class ChangeFeed(Protocol):
    """A store that announces job changes as they commit (PostgreSQL's LISTEN/NOTIFY), so
    waiters and idle workers in every process wake at once instead of at their next poll."""

    def add_listener(self, callback: Callable[[str, str], None]) -> None:
        """Call ``callback(job_id, status)`` for each change, from a background thread."""
