"""The shared PostgreSQL database of cluster mode: connection pool, schema and migrations.

Every API replica and dispatcher opens the same database. The schema is versioned (the
``schema_version`` table) and upgraded on open, under a transaction-scoped advisory lock so
that replicas starting at once take turns; a migration that already ran is skipped. Amounts
are integer micro-credits (``BIGINT``), times are Unix seconds (``DOUBLE PRECISION``), and
job requests, metrics and dialect echo fields are ``JSONB``.

Example::

    version = upgrade("postgresql://takeone@db:5432/takeone")   # what `takeone db upgrade` runs
    pool = open_pool("postgresql://takeone@db:5432/takeone")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool, PoolTimeout

from takeone.core.errors import StoreUnavailable

Conn = psycopg.Connection[DictRow]

SCHEMA_VERSION = 4
CONNECT_TIMEOUT_S = 3
POOL_TIMEOUT_S = 8.0
RECONNECT_TIMEOUT_S = 10.0  # then a slot gives up; the next caller starts a fresh attempt
PING_TIMEOUT_S = 1.0
STATEMENT_TIMEOUT_S = 30.0  # like the embedded store's busy timeout
NOTIFY_CHANNEL = "takeone_jobs"
MIGRATION_LOCK = 0x74616B656F6E65  # "takeone": the advisory lock that serialises migrations
QUEUE_LOCK = 0x74616B656F6E66  # held by a submit from counting the queue to its commit

# Version 1: everything the SQLite store holds at its version 4, in PostgreSQL types.
MIGRATION_1 = """
CREATE TABLE api_keys (
    id TEXT PRIMARY KEY,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    scopes JSONB,
    rate_limit INTEGER,
    max_concurrent INTEGER,
    balance BIGINT NOT NULL DEFAULT 0 CHECK (balance >= 0),
    reserved BIGINT NOT NULL DEFAULT 0 CHECK (reserved >= 0),
    created_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION,
    webhook_url TEXT,
    webhook_secret TEXT,
    access_key TEXT UNIQUE,
    access_secret TEXT
);
CREATE INDEX api_keys_prefix ON api_keys (prefix);
CREATE TABLE ledger (
    id BIGSERIAL PRIMARY KEY,
    key_id TEXT NOT NULL,
    job_id TEXT,
    kind TEXT NOT NULL,
    amount BIGINT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL
);
CREATE INDEX ledger_key ON ledger (key_id);
CREATE TABLE jobs (
    id TEXT COLLATE "C" PRIMARY KEY,
    key_id TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    request JSONB NOT NULL,
    price BIGINT NOT NULL,
    charge TEXT NOT NULL,
    status TEXT NOT NULL,
    blocking BOOLEAN NOT NULL DEFAULT FALSE,
    progress DOUBLE PRECISION NOT NULL DEFAULT 0,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    output TEXT,
    metrics JSONB NOT NULL DEFAULT '{}',
    idempotency_key TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    started_at DOUBLE PRECISION,
    finished_at DOUBLE PRECISION,
    caller TEXT,
    lease_owner TEXT,
    lease_expires_at DOUBLE PRECISION,
    request_hash TEXT,
    dialect TEXT NOT NULL DEFAULT 'segmind',
    webhook_url TEXT,
    external_id TEXT,
    meta JSONB NOT NULL DEFAULT '{}'
);
CREATE INDEX jobs_queued ON jobs (created_at, id) WHERE status = 'QUEUED';
CREATE INDEX jobs_running ON jobs (status) WHERE status = 'PROCESSING';
CREATE INDEX jobs_key ON jobs (key_id, status);
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE status IN ('COMPLETED', 'FAILED');
CREATE UNIQUE INDEX jobs_idem ON jobs (key_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE UNIQUE INDEX jobs_external ON jobs (key_id, dialect, external_id) WHERE external_id IS NOT NULL;
CREATE INDEX jobs_key_dialect ON jobs (key_id, dialect, created_at, id);
CREATE TABLE workers (
    id TEXT PRIMARY KEY,
    profile TEXT NOT NULL,
    state TEXT NOT NULL,
    device TEXT,
    job_id TEXT,
    error TEXT,
    pid INTEGER,
    seen_at DOUBLE PRECISION NOT NULL
);
CREATE TABLE rate_hits (key_id TEXT NOT NULL, at DOUBLE PRECISION NOT NULL);
CREATE INDEX rate_hits_key ON rate_hits (key_id, at);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT);
INSERT INTO meta (key, value) VALUES ('ping', '0');
CREATE TABLE webhook_outbox (
    id BIGSERIAL PRIMARY KEY,
    webhook_id TEXT NOT NULL UNIQUE,
    job_id TEXT NOT NULL,
    event TEXT NOT NULL,
    status TEXT NOT NULL,
    url TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at DOUBLE PRECISION NOT NULL,
    lease_owner TEXT,
    lease_until DOUBLE PRECISION,
    last_error TEXT,
    created_at DOUBLE PRECISION NOT NULL,
    done_at DOUBLE PRECISION
);
CREATE INDEX outbox_due ON webhook_outbox (next_at) WHERE done_at IS NULL;
CREATE INDEX outbox_job ON webhook_outbox (job_id);
"""

# Version 2: each key's own share of the queue; the index behind round-robin claims.
MIGRATION_2 = """
ALTER TABLE api_keys ADD COLUMN max_queued INTEGER;
CREATE INDEX jobs_key_started ON jobs (key_id, started_at);
"""
# Version 3: each status's job count, kept by triggers in the transaction that changes a status
# (/metrics and the submit's queue check read it rather than counting the jobs table). A
# status's count is spread over COUNT_SHARDS rows, picked by the writing connection's backend
# pid, so concurrent claims and submits on different connections rarely update the same row;
# the counter row is the last lock a status change takes. Creating the triggers locks out
# writers until the migration commits, so the backfill below counts every job exactly once.
COUNT_SHARDS = 64
MIGRATION_3: tuple[str, ...] = (
    "CREATE TABLE job_counts (status TEXT NOT NULL, shard INTEGER NOT NULL, n BIGINT NOT NULL,"
    " PRIMARY KEY (status, shard))",
    "CREATE FUNCTION takeone_count_jobs() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " IF TG_OP <> 'INSERT' THEN"
    f" INSERT INTO job_counts (status, shard, n) VALUES (OLD.status, pg_backend_pid() % {COUNT_SHARDS}, -1)"
    " ON CONFLICT (status, shard) DO UPDATE SET n = job_counts.n - 1; END IF;"
    " IF TG_OP <> 'DELETE' THEN"
    f" INSERT INTO job_counts (status, shard, n) VALUES (NEW.status, pg_backend_pid() % {COUNT_SHARDS}, 1)"
    " ON CONFLICT (status, shard) DO UPDATE SET n = job_counts.n + 1; END IF;"
    " RETURN NULL; END $$",
    "CREATE TRIGGER job_counts_insert_delete AFTER INSERT OR DELETE ON jobs"
    " FOR EACH ROW EXECUTE FUNCTION takeone_count_jobs()",
    "CREATE TRIGGER job_counts_update AFTER UPDATE OF status ON jobs"
    " FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION takeone_count_jobs()",
    "INSERT INTO job_counts (status, shard, n) SELECT status, 0, COUNT(*) FROM jobs GROUP BY status",
)

# Version 4: no dialect is the default of a job's dialect (every submit names its own; the rows
# of version 1 to 3 keep theirs). Each key's queued jobs, kept by triggers and spread over
# shards like job_counts (a queue position under round-robin claims and a submit's per-key
# share read it rather than counting the key's queue), and the index that walks one key's
# queue in order.
MIGRATION_4: tuple[str, ...] = (
    "ALTER TABLE jobs ALTER COLUMN dialect DROP DEFAULT",
    "CREATE TABLE key_queue (key_id TEXT NOT NULL, shard INTEGER NOT NULL, n BIGINT NOT NULL,"
    " PRIMARY KEY (key_id, shard))",
    "CREATE FUNCTION takeone_count_key_queue() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
    " IF TG_OP <> 'INSERT' AND OLD.status = 'QUEUED' THEN"
    f" INSERT INTO key_queue (key_id, shard, n) VALUES (OLD.key_id, pg_backend_pid() % {COUNT_SHARDS}, -1)"
    " ON CONFLICT (key_id, shard) DO UPDATE SET n = key_queue.n - 1; END IF;"
    " IF TG_OP <> 'DELETE' AND NEW.status = 'QUEUED' THEN"
    f" INSERT INTO key_queue (key_id, shard, n) VALUES (NEW.key_id, pg_backend_pid() % {COUNT_SHARDS}, 1)"
    " ON CONFLICT (key_id, shard) DO UPDATE SET n = key_queue.n + 1; END IF;"
    " RETURN NULL; END $$",
    "CREATE TRIGGER key_queue_insert_delete AFTER INSERT OR DELETE ON jobs"
    " FOR EACH ROW EXECUTE FUNCTION takeone_count_key_queue()",
    "CREATE TRIGGER key_queue_update AFTER UPDATE OF status ON jobs"
    " FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION takeone_count_key_queue()",
    "INSERT INTO key_queue (key_id, shard, n) SELECT key_id, 0, COUNT(*) FROM jobs WHERE status = 'QUEUED'"
    " GROUP BY key_id",
    "CREATE INDEX jobs_key_queued ON jobs (key_id, created_at, id) WHERE status = 'QUEUED'",
)


def _statements(script: str) -> tuple[str, ...]:
    return tuple(s for s in script.split(";") if s.strip())


MIGRATIONS: tuple[tuple[str, ...], ...] = (_statements(MIGRATION_1), _statements(MIGRATION_2), MIGRATION_3,
                                          MIGRATION_4)

UNAVAILABLE = (psycopg.OperationalError, psycopg.InterfaceError)
"""What an unreachable, restarting or overloaded server raises (the pool's timeout included)."""


def describe(url: str) -> str:
    """``host:port/db`` of a connection URL, for messages (never the user's password)."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unparseable database URL"
    return f"{parts.get('host') or 'localhost'}:{parts.get('port') or 5432}/{parts.get('dbname') or ''}"


def first_line(exc: BaseException) -> str:
    """The cause in one line (a pool timeout says what it usually means)."""
    if isinstance(exc, PoolTimeout):
        return f"{exc} (the server is down, restarting or overloaded)"
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def connect(url: str, autocommit: bool = True) -> Conn:
    """One connection outside the pool (migrations, the notification listener)."""
    return psycopg.connect(url, autocommit=autocommit, row_factory=dict_row, connect_timeout=CONNECT_TIMEOUT_S)


def _configure(conn: Conn) -> None:
    """Autocommit (transactions are explicit), and no statement waits on a lock for ever."""
    conn.autocommit = True
    conn.execute(f"SET statement_timeout = {int(STATEMENT_TIMEOUT_S * 1000)}")


def open_pool(url: str, min_size: int = 1, max_size: int = 8,
              timeout_s: float = POOL_TIMEOUT_S) -> ConnectionPool[Conn]:
    """A pool of autocommit connections that drops dead ones (each is checked when taken) and
    reconnects by itself once the server is back; waits at most ``timeout_s`` for one."""
    pool: ConnectionPool[Conn] = ConnectionPool(
        url, min_size=min_size, max_size=max_size, open=False, name="takeone",
        kwargs={"row_factory": dict_row, "connect_timeout": CONNECT_TIMEOUT_S},
        configure=_configure, check=ConnectionPool.check_connection, timeout=timeout_s,
        reconnect_timeout=RECONNECT_TIMEOUT_S,
    )
    try:
        pool.open(wait=True, timeout=max(timeout_s, CONNECT_TIMEOUT_S + 1.0))
    except BaseException:
        pool.close(timeout=0)  # stop its reconnecting workers too
        raise
    return pool


@contextmanager
def transaction(pool: ConnectionPool[Conn], timeout_s: float | None = None) -> Iterator[Conn]:
    """Run the block in one transaction on a pooled connection; roll back if it raises."""
    with pool.connection(timeout=timeout_s) as conn, conn.transaction():
        yield conn


def migrate(conn: Conn) -> int:
    """Bring the schema up to :data:`SCHEMA_VERSION` (one transaction, under the migration
    lock); return the version. Running it again, or from two processes at once, is harmless."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = conn.execute("SELECT MAX(version) AS version FROM schema_version").fetchone()
        version = int(row["version"]) if row and row["version"] is not None else 0
        if version > SCHEMA_VERSION:
            raise StoreUnavailable(
                f"the database schema is version {version}, newer than this takeone understands"
                f" ({SCHEMA_VERSION}); upgrade takeone on this machine")
        for number in range(version + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[number - 1]:
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (number,))
    return max(version, SCHEMA_VERSION)


def upgrade(url: str) -> int:
    """Create or upgrade the schema of the database at ``url``; return its version.
    :class:`StoreUnavailable` (naming host, port and database) if it cannot be reached."""
    try:
        with connect(url) as conn:
            return migrate(conn)
    except (psycopg.Error, OSError) as exc:
        raise StoreUnavailable(f"cannot reach PostgreSQL at {describe(url)}: {first_line(exc)}") from exc
