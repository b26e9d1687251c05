-- Hashes of the distinct ids of persons erased for good (core::state::kept_out_key; the ids
-- themselves are not kept): writes naming one are dropped instead of starting a new person.
CREATE TABLE kept_out (
    project_id UINTEGER NOT NULL,
    key        UBIGINT  NOT NULL
);
