-- troupe embedded schema, version 1. Tables carry no primary keys: the writer replaces the rows
-- of the entities a batch touched with one set-based DELETE and one append per table, which is
-- cheaper in DuckDB than per-row upserts through an index.

CREATE TABLE projects (
    id              UINTEGER  NOT NULL,
    name            VARCHAR   NOT NULL,
    ingestion_key   VARCHAR   NOT NULL,
    secret_key_hash VARCHAR   NOT NULL,
    created_at      TIMESTAMP NOT NULL
);

CREATE TABLE group_types (
    project_id   UINTEGER NOT NULL,
    slot         UTINYINT NOT NULL,
    name         VARCHAR  NOT NULL,
    display_name VARCHAR  NOT NULL
);

CREATE TABLE persons (
    project_id   UINTEGER  NOT NULL,
    id           VARCHAR   NOT NULL,
    distinct_ids VARCHAR[] NOT NULL,
    properties   VARCHAR   NOT NULL,
    identified   BOOLEAN   NOT NULL,
    created_at   TIMESTAMP NOT NULL,
    updated_at   TIMESTAMP NOT NULL
);

-- Lookup of a person by any of its ids; queries resolve event distinct ids through it, so a
-- merge makes earlier anonymous events count for the merged person.
CREATE TABLE person_distinct_ids (
    project_id  UINTEGER NOT NULL,
    distinct_id VARCHAR NOT NULL,
    person_id   VARCHAR NOT NULL
);

CREATE TABLE memberships (
    project_id UINTEGER  NOT NULL,
    person_id  VARCHAR   NOT NULL,
    slot       UTINYINT  NOT NULL,
    group_keys VARCHAR[] NOT NULL
);

CREATE TABLE group_profiles (
    project_id UINTEGER  NOT NULL,
    slot       UTINYINT  NOT NULL,
    group_key  VARCHAR   NOT NULL,
    name       VARCHAR,
    properties VARCHAR   NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);

CREATE TABLE charges (
    project_id UINTEGER  NOT NULL,
    person_id  VARCHAR   NOT NULL,
    amount     DOUBLE    NOT NULL,
    properties VARCHAR   NOT NULL,
    time       TIMESTAMP NOT NULL
);

-- One column per group type slot (group_0, group_1, …) is added at open, as many as the
-- configured group type limit: counting by a group type is a column switch.
CREATE TABLE events (
    project_id     UINTEGER  NOT NULL,
    uuid           VARCHAR   NOT NULL,
    dedup_key      UBIGINT,
    event          VARCHAR   NOT NULL,
    distinct_id    VARCHAR   NOT NULL,
    ts             TIMESTAMP NOT NULL,
    received_at    TIMESTAMP NOT NULL,
    properties     VARCHAR   NOT NULL,
    groups_untyped VARCHAR[]
);
