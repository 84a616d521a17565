-- What `lifeboat serve` keeps: runs requested but not started yet (by a schedule, an
-- incident webhook or the API), schedules with the occurrences decided so far, incident
-- triggers received, and leases (the scheduler's leader). Every uniqueness that makes a
-- trigger fire once is a key here, so replicas and restarts cannot fire it twice.
CREATE TABLE IF NOT EXISTS requests (
    id TEXT PRIMARY KEY,
    origin TEXT NOT NULL,
    plan_file TEXT NOT NULL,
    plan_name TEXT NOT NULL,
    plan_source TEXT NOT NULL,
    params TEXT NOT NULL,
    state TEXT NOT NULL,
    requested_by TEXT NOT NULL,
    schedule_name TEXT,
    scheduled_at BIGINT,
    trigger_id TEXT,
    not_before BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    decided_by TEXT,
    decided_at BIGINT,
    decision_comment TEXT,
    started_by TEXT,
    started_at BIGINT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS requests_by_state ON requests (state, not_before);
CREATE INDEX IF NOT EXISTS requests_by_schedule ON requests (schedule_name, state);

CREATE TABLE IF NOT EXISTS schedules (
    name TEXT PRIMARY KEY,
    definition TEXT NOT NULL,
    paused BIGINT NOT NULL,
    paused_by TEXT,
    paused_at BIGINT,
    pause_note TEXT,
    considered_until BIGINT NOT NULL,
    next_at BIGINT,
    last_fired_at BIGINT,
    last_run_id TEXT
);

CREATE TABLE IF NOT EXISTS occurrences (
    schedule_name TEXT NOT NULL,
    scheduled_at BIGINT NOT NULL,
    decided_at BIGINT NOT NULL,
    outcome TEXT NOT NULL,
    run_id TEXT,
    fire_at BIGINT,
    reason TEXT,
    PRIMARY KEY (schedule_name, scheduled_at)
);

CREATE TABLE IF NOT EXISTS triggers (
    id TEXT PRIMARY KEY,
    source TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    route TEXT,
    labels TEXT NOT NULL,
    outcome TEXT NOT NULL,
    run_id TEXT,
    detail TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS triggers_once ON triggers (source, fingerprint, starts_at);

CREATE TABLE IF NOT EXISTS leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    term BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
