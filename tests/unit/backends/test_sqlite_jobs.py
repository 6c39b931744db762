from pathlib import Path

from takeone.backends.sql.store import SqlStore
from takeone.backends.sqlite.driver import SqliteDriver
from takeone.core.jobs import Job, JobStatus, SubmitLimits, WorkerStatus
from takeone.core.task import VideoTask


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        self.now += 1
        return self.now


def _setup(tmp_path: Path) -> tuple[SqlStore, str, Clock]:
    clock = Clock()
    db = SqliteDriver(tmp_path / "j.db")
    key = SqlStore(db, clock).create(100).key
    return SqlStore(db, clock), key.id, clock


def _submit(store: SqlStore, key_id: str, n: int, clock: Clock, blocking: bool = False) -> Job:
    job = Job(id=f"j{n}", key_id=key_id, task=VideoTask(kind="t2v", prompt=f"p{n}"),
              price=1.0, status=JobStatus.QUEUED, created_at=clock(), blocking=blocking, dialect="segmind")
    return store.submit(job, SubmitLimits(None, 100))


def test_transitions_are_checked() -> None:
    assert JobStatus.QUEUED.can_become(JobStatus.PROCESSING)
    assert not JobStatus.COMPLETED.can_become(JobStatus.FAILED)
    assert not JobStatus.QUEUED.can_become(JobStatus.COMPLETED)
    assert JobStatus.FAILED.is_terminal() and not JobStatus.PROCESSING.is_terminal()


def test_fifo_claim_and_queue_position(tmp_path: Path) -> None:
    store, key, clock = _setup(tmp_path)
    for n in range(3):
        _submit(store, key, n, clock)
    assert [store.queue_position(f"j{n}") for n in range(3)] == [1, 2, 3]
    claimed = store.claim("h/1/0", 30)
    assert claimed is not None and claimed.id == "j0" and claimed.attempts == 1
    assert store.queue_position("j1") == 1 and store.queue_position("j0") is None
    assert store.complete("j1", "x.mp4", {}) is None  # not running: refused


def test_requeue_until_attempts_run_out(tmp_path: Path) -> None:
    store, key, clock = _setup(tmp_path)
    _submit(store, key, 0, clock)
    store.claim("h/1/0", 30)
    assert store.requeue("j0", 2, "crash").status is JobStatus.QUEUED  # type: ignore[union-attr]
    store.claim("h/1/0", 30)
    failed = store.requeue("j0", 2, "crashed again")
    assert failed is not None and failed.status is JobStatus.FAILED and failed.error == "crashed again"


def test_expired_or_dead_leases_requeue_running_jobs(tmp_path: Path) -> None:
    store, key, clock = _setup(tmp_path)
    _submit(store, key, 0, clock)
    _submit(store, key, 1, clock, blocking=True)
    _submit(store, key, 2, clock)
    _submit(store, key, 3, clock)
    store.claim("dead/1/0", 1000)  # j0: its owner is gone
    store.claim("live/2/0", 1000)  # j1 (blocking): never retried
    store.claim("live/2/1", 5)  # j2: lease runs out
    assert store.expire_leases(2, lambda owner: owner.startswith("dead")) != []
    assert store.get("j0").status is JobStatus.QUEUED  # type: ignore[union-attr]
    assert store.get("j1").status is JobStatus.PROCESSING  # type: ignore[union-attr]
    assert store.get("j2").status is JobStatus.PROCESSING  # type: ignore[union-attr]
    clock.now += 10
    store.expire_leases(2, lambda owner: owner.startswith("dead"))
    assert store.get("j2").status is JobStatus.QUEUED  # type: ignore[union-attr]
    assert not store.renew("j2", "live/2/1", 30)  # the old owner lost it: it must stop
    assert store.renew("j1", "live/2/0", 30, progress=0.5)
    assert store.get("j1").progress == 0.5  # type: ignore[union-attr]
    clock.now += 100
    store.expire_leases(2, lambda owner: False)
    assert store.get("j1").status is JobStatus.FAILED  # type: ignore[union-attr]


def test_blocking_jobs_of_a_lost_caller_fail(tmp_path: Path) -> None:
    store, key, clock = _setup(tmp_path)
    job = Job(id="b", key_id=key, task=VideoTask(kind="t2v"), price=1.0, status=JobStatus.QUEUED,
              created_at=clock(), blocking=True, caller="host/99", dialect="segmind")
    store.submit(job, SubmitLimits(None, 100))
    assert store.fail_lost_callers(lambda c: False, "gone") == []
    [failed] = store.fail_lost_callers(lambda c: c == "host/99", "gone")
    assert (failed.status, failed.error) == (JobStatus.FAILED, "gone")


def test_worker_reports_replace_each_other(tmp_path: Path) -> None:
    store, _, clock = _setup(tmp_path)
    store.report_worker(WorkerStatus("h/1/0", "tiny", "starting", clock()))
    store.report_worker(WorkerStatus("h/1/0", "tiny", "ready", clock(), device="cpu", pid=7))
    [w] = store.workers()
    assert (w.state, w.device, w.pid) == ("ready", "cpu", 7)


def test_expired_jobs_are_listed_for_the_sweeper(tmp_path: Path) -> None:
    store, key, clock = _setup(tmp_path)
    _submit(store, key, 0, clock)
    store.fail("j0", "cancelled")
    assert [j.id for j in store.expired(clock.now + 10, 10)] == ["j0"]
    assert store.expired(clock.now - 100, 10) == []
    store.delete("j0")
    assert store.get("j0") is None
