-- The journal: runs, their append-only events, plan locks, and an inbox of commands
-- (abort, approve, reject) written by other processes. Portable SQL for SQLite and
-- PostgreSQL; timestamps are microseconds since the Unix epoch.
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    plan_name TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    finished_at BIGINT,
    owner_host TEXT NOT NULL,
    owner_pid BIGINT NOT NULL,
    owner_started BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,
    lock_name TEXT
);
CREATE INDEX IF NOT EXISTS runs_by_plan ON runs (plan_name, created_at);

CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    kind TEXT NOT NULL,
    step TEXT,
    payload TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);

CREATE TABLE IF NOT EXISTS locks (
    name TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    acquired_at BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS inbox (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    step TEXT,
    actor TEXT NOT NULL,
    comment TEXT,
    created_at BIGINT NOT NULL,
    consumed_at BIGINT
);
CREATE INDEX IF NOT EXISTS inbox_by_run ON inbox (run_id, kind);
