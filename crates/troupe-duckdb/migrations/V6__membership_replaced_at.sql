-- When a set_group last replaced a person's set of a type (NULL: built by add_group only). An
-- identify merge keeps the most recent set_group of a type whole and unions sets built by adds
-- (docs/semantics.md, "Identity and memberships"). Rows written before have NULL: add-built.
ALTER TABLE memberships ADD COLUMN replaced_at TIMESTAMP;
