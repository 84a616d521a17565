-- What people did through the service (the API or the dashboard): who, what, on what, why.
-- Written by the call that acts, right after acting; both doors go through that call.
CREATE TABLE IF NOT EXISTS audit (
    id TEXT PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    comment TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_by_time ON audit (at);

-- Service-wide switches; `emergency_stop` while engaged aborts every drill and pauses
-- every schedule. One row per switch, kept when released, for who and when.
CREATE TABLE IF NOT EXISTS switches (
    name TEXT PRIMARY KEY,
    engaged BIGINT NOT NULL,
    changed_by TEXT NOT NULL,
    changed_at BIGINT NOT NULL,
    note TEXT
);
