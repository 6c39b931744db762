"""The embedded SQLite database (WAL) that holds keys, the credit ledger, jobs and workers.

One :class:`Database` per process, and any number of processes on one file (API replicas,
``takeone worker``). SQLite serialises writers; every multi-row change runs in one
``BEGIN IMMEDIATE`` transaction (:meth:`Database.begin`) so that reserving credits and
persisting a job are atomic. Reads use their own connection, so status polls keep being
answered while another process holds the write lock. The schema is versioned
(``PRAGMA user_version``) and upgraded in place on open.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from takeone.backends.sqlite.legacy import legacy_task

SCHEMA_VERSION = 7
BUSY_TIMEOUT_S = 30.0
PING_TIMEOUT_S = 1.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    scopes TEXT,
    rate_limit INTEGER,
    max_concurrent INTEGER,
    balance INTEGER NOT NULL DEFAULT 0,
    reserved INTEGER NOT NULL DEFAULT 0,
    created_at REAL NOT NULL,
    revoked_at REAL
);
CREATE TABLE IF NOT EXISTS ledger (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key_id TEXT NOT NULL,
    job_id TEXT,
    kind TEXT NOT NULL,
    amount INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ledger_key ON ledger(key_id);
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    request TEXT NOT NULL,
    price INTEGER NOT NULL,
    charge TEXT NOT NULL,
    status TEXT NOT NULL,
    blocking INTEGER NOT NULL DEFAULT 0,
    progress REAL NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    output TEXT,
    metrics TEXT NOT NULL DEFAULT '{}',
    idempotency_key TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    dialect TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created_at);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(key_id, status);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idem ON jobs(key_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
"""

# Version 2: leases, blocking callers, worker reports, shared rate counters, task JSON.
UPGRADE_2 = """
ALTER TABLE jobs ADD COLUMN caller TEXT;
ALTER TABLE jobs ADD COLUMN lease_owner TEXT;
ALTER TABLE jobs ADD COLUMN lease_expires_at REAL;
CREATE TABLE IF NOT EXISTS workers (
    id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    state TEXT NOT NULL,
    device TEXT,
    job_id TEXT,
    error TEXT,
    pid INTEGER,
    seen_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rate_hits (key_id TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS rate_hits_key ON rate_hits(key_id, at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
INSERT OR IGNORE INTO meta (key, value) VALUES ('ping', '0');
"""


# Version 3: what an idempotency key was first used for, to refuse its reuse for another request.
UPGRADE_3 = """
ALTER TABLE jobs ADD COLUMN request_hash TEXT;
"""

# Version 4: dialects (a job is read only through the dialect that made it), webhooks (per-job
# URL, the outbox, per-key URL and sealed secret), clients' own task ids, access-key pairs.
# A new database has the dialect column from the start, with no default (every job names its
# own); an older one gets it here, filled with the dialect its jobs were made through.
LEGACY_DIALECT = "segmind"  # takeone before dialects served only the Segmind routes
UPGRADE_4_DIALECT = (
    "ALTER TABLE jobs ADD COLUMN dialect TEXT NOT NULL DEFAULT ''",
    f"UPDATE jobs SET dialect = '{LEGACY_DIALECT}'",
)
UPGRADE_4 = """
ALTER TABLE jobs ADD COLUMN webhook_url TEXT;
ALTER TABLE jobs ADD COLUMN external_id TEXT;
ALTER TABLE jobs ADD COLUMN meta TEXT NOT NULL DEFAULT '{}';
CREATE UNIQUE INDEX IF NOT EXISTS jobs_external ON jobs(key_id, dialect, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS jobs_key_dialect ON jobs(key_id, dialect, created_at);
ALTER TABLE api_keys ADD COLUMN webhook_url TEXT;
ALTER TABLE api_keys ADD COLUMN webhook_secret TEXT;
ALTER TABLE api_keys ADD COLUMN access_key TEXT;
ALTER TABLE api_keys ADD COLUMN access_secret TEXT;
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_access ON api_keys(access_key)
    WHERE access_key IS NOT NULL;
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    webhook_id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL,
    event TEXT NOT NULL,
    status TEXT NOT NULL,
    url TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    lease_owner TEXT,
    lease_until REAL,
    last_error TEXT,
    created_at REAL NOT NULL,
    done_at REAL
);
CREATE INDEX IF NOT EXISTS outbox_due ON webhook_outbox(done_at, next_at);
CREATE INDEX IF NOT EXISTS outbox_job ON webhook_outbox(job_id);
"""

# Version 5: each key's own share of the queue; the index behind round-robin claims.
UPGRADE_5 = """
ALTER TABLE api_keys ADD COLUMN max_queued INTEGER;
CREATE INDEX IF NOT EXISTS jobs_key_started ON jobs(key_id, started_at);
"""
# Version 6: what grows with the number of stored jobs stays off the hot paths. Each status's
# job count is kept by triggers in the transaction that changes it (/metrics and the submit's
# queue check read it rather than counting the table), and finished jobs are found by their
# finish time (the sweeper pages through them). A tuple: the trigger bodies hold semicolons.
UPGRADE_6: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS job_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS job_counts_insert AFTER INSERT ON jobs BEGIN"
    " INSERT INTO job_counts (status, n) VALUES (NEW.status, 1)"
    " ON CONFLICT (status) DO UPDATE SET n = n + 1; END",
    "CREATE TRIGGER IF NOT EXISTS job_counts_delete AFTER DELETE ON jobs BEGIN"
    " UPDATE job_counts SET n = n - 1 WHERE status = OLD.status; END",
    "CREATE TRIGGER IF NOT EXISTS job_counts_update AFTER UPDATE OF status ON jobs"
    " WHEN OLD.status IS NOT NEW.status BEGIN"
    " UPDATE job_counts SET n = n - 1 WHERE status = OLD.status;"
    " INSERT INTO job_counts (status, n) VALUES (NEW.status, 1)"
    " ON CONFLICT (status) DO UPDATE SET n = n + 1; END",
    "DELETE FROM job_counts",
    "INSERT INTO job_counts (status, n) SELECT status, COUNT(*) FROM jobs GROUP BY status",
    "CREATE INDEX IF NOT EXISTS jobs_finished ON jobs(finished_at)"
    " WHERE status IN ('COMPLETED', 'FAILED')",
)

# Version 7: each key's queued jobs, kept by triggers like job_counts (a queue position under
# round-robin claims and a submit's per-key share read it rather than counting the key's queue),
# and the index that walks one key's queue in order.
UPGRADE_7: tuple[str, ...] = (
    "CREATE TABLE IF NOT EXISTS key_queue (key_id TEXT PRIMARY KEY, n INTEGER NOT NULL)",
    "CREATE TRIGGER IF NOT EXISTS key_queue_insert AFTER INSERT ON jobs WHEN NEW.status = 'QUEUED' BEGIN"
    " INSERT INTO key_queue (key_id, n) VALUES (NEW.key_id, 1)"
    " ON CONFLICT (key_id) DO UPDATE SET n = n + 1; END",
    "CREATE TRIGGER IF NOT EXISTS key_queue_delete AFTER DELETE ON jobs WHEN OLD.status = 'QUEUED' BEGIN"
    " UPDATE key_queue SET n = n - 1 WHERE key_id = OLD.key_id; END",
    "CREATE TRIGGER IF NOT EXISTS key_queue_update AFTER UPDATE OF status ON jobs"
    " WHEN (OLD.status = 'QUEUED') <> (NEW.status = 'QUEUED') BEGIN"
    " UPDATE key_queue SET n = n - 1 WHERE key_id = OLD.key_id AND OLD.status = 'QUEUED';"
    " INSERT INTO key_queue (key_id, n) SELECT NEW.key_id, 1 WHERE NEW.status = 'QUEUED'"
    " ON CONFLICT (key_id) DO UPDATE SET n = n + 1; END",
    "DELETE FROM key_queue",
    "INSERT INTO key_queue (key_id, n) SELECT key_id, COUNT(*) FROM jobs WHERE status = 'QUEUED' GROUP BY key_id",
    "CREATE INDEX IF NOT EXISTS jobs_key_queued ON jobs(key_id, created_at, id) WHERE status = 'QUEUED'",
)


def _connect(path: Path, timeout: float) -> sqlite3.Connection:
    conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=timeout)
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
    return conn


class Database:
    """Thread-safe handles on one SQLite file: a write connection, a read connection and a
    short-timeout connection for health probes.

    Example::

        db = Database(Path("data/takeone.db"))
        with db.begin() as conn:
            conn.execute("SELECT 1")
    """

    def __init__(self, path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.RLock()
        self._read_lock = threading.Lock()
        self._conn = _connect(path, busy_timeout_s)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._migrate()
        self._reader = _connect(path, busy_timeout_s)
        self._prober = _connect(path, PING_TIMEOUT_S)

    def _migrate(self) -> None:
        with self.begin() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version >= SCHEMA_VERSION:
                return
            for statement in SCHEMA.split(";"):
                if statement.strip():
                    conn.execute(statement)
            columns = {r["name"] for r in conn.execute("PRAGMA table_info(jobs)")}
            if "caller" not in columns:
                _run_script(conn, UPGRADE_2)
                _convert_legacy_rows(conn)
            if "request_hash" not in columns:
                _run_script(conn, UPGRADE_3)
            if "dialect" not in columns:
                for statement in UPGRADE_4_DIALECT:
                    conn.execute(statement)
            if "webhook_url" not in columns:
                _run_script(conn, UPGRADE_4)
            if "max_queued" not in {r["name"] for r in conn.execute("PRAGMA table_info(api_keys)")}:
                _run_script(conn, UPGRADE_5)
            if version < 6:
                for statement in UPGRADE_6:
                    conn.execute(statement)
            if version < 7:
                for statement in UPGRADE_7:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def begin(self) -> Iterator[sqlite3.Connection]:
        """Run the block in one write transaction; roll back if it raises."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def connection(self) -> Iterator[sqlite3.Connection]:
        """The read connection, for this thread alone until the block ends."""
        with self._read_lock:
            yield self._reader

    def check_integrity(self) -> str | None:
        """What ``PRAGMA quick_check`` finds wrong with the file, or None if it is sound."""
        with self._read_lock:
            rows = self._reader.execute("PRAGMA quick_check").fetchall()
        problems = [str(r[0]) for r in rows if str(r[0]) != "ok"]
        return "; ".join(problems[:3]) or None

    def probe(self, now: float) -> None:
        """One tiny committed write with a short timeout; raises if the file cannot take it."""
        self._prober.execute("UPDATE meta SET value = ? WHERE key = 'ping'", (repr(now),))

    def close(self) -> None:
        with self._lock, self._read_lock:
            for conn in (self._conn, self._reader, self._prober):
                conn.close()


def _run_script(conn: sqlite3.Connection, script: str) -> None:
    for statement in script.split(";"):
        if statement.strip():
            conn.execute(statement)


def _convert_legacy_rows(conn: sqlite3.Connection) -> None:
    """Jobs written before version 2 stored the first dialect's request; keep them runnable."""
    for row in conn.execute("SELECT id, request FROM jobs").fetchall():
        data = json.loads(row["request"])
        if "kind" not in data:
            conn.execute("UPDATE jobs SET request = ? WHERE id = ?",
                         (json.dumps(legacy_task(row["id"], data)), row["id"]))
