-- Events numbered in commit order by the writer, so that a load of a project's columns from
-- their snapshot file reads from here only the events after it. Events stored before this
-- migration have none (a snapshot is first made from a load of every event).
ALTER TABLE events ADD COLUMN seq UBIGINT;

-- One row per committed write that changed stored events (erasures, anonymizations, retention,
-- a deleted group type): their count is the project's rewrite generation, which a snapshot of
-- its columns must have been taken at to be used.
CREATE TABLE event_rewrites (
    project_id UINTEGER   NOT NULL,
    changed_at TIMESTAMP  NOT NULL DEFAULT current_timestamp
);
