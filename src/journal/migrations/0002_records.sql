-- Side-channel records of a run: evidence that background work produces outside step
-- results (the RPO canary's acknowledged writes, fault injections and their reverts).
-- Keyed per channel so that a record written twice (a retried flush) is stored once.
CREATE TABLE IF NOT EXISTS records (
    run_id TEXT NOT NULL,
    channel TEXT NOT NULL,
    record_key BIGINT NOT NULL,
    at BIGINT NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (run_id, channel, record_key)
);
