-- Saved documents of the query layer and the dashboard (cohorts, insights, dashboards), as JSON.
CREATE TABLE documents (
    project_id UINTEGER  NOT NULL,
    kind       VARCHAR   NOT NULL,
    id         VARCHAR   NOT NULL,
    body       VARCHAR   NOT NULL,
    created_at TIMESTAMP NOT NULL,
    updated_at TIMESTAMP NOT NULL
);
