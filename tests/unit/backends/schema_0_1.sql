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
    finished_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs(status, created_at);
CREATE INDEX IF NOT EXISTS jobs_key ON jobs(key_id, status);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_idem ON jobs(key_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;
