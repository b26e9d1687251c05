-- The audit log (keys, members, settings, group types, erasures): appended, read newest first a
-- page at a time. Kept apart from `documents`, which are read whole per kind.
CREATE TABLE audit_log (
    project_id UINTEGER  NOT NULL,
    id         VARCHAR   NOT NULL,
    logged_at  TIMESTAMP NOT NULL,
    actor      VARCHAR   NOT NULL,
    action     VARCHAR   NOT NULL,
    target     VARCHAR   NOT NULL,
    details    VARCHAR   NOT NULL
);
