-- Keys of resent writes recognised across a restart (core::dedupe::RetryRecord): guarded
-- commands' client ids (forever) and content keys of writes without an id (for the retry
-- window; older ones are pruned). Events' own client ids stay on the events (dedup_key).
CREATE TABLE retry_keys (
    project_id UINTEGER  NOT NULL,
    key        UBIGINT   NOT NULL,
    seen_at    TIMESTAMP NOT NULL,
    forever    BOOLEAN   NOT NULL
);
