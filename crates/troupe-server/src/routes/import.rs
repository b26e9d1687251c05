//! `POST /api/projects/{project}/import?from=posthog|mixpanel|segment|amplitude` (secret key or
//! session): rows of another tool's export, NDJSON, one event or message per line, loaded into a
//! running server exactly as `troupe import` loads them offline (`troupe import --server` sends
//! its files here). Each row goes through its protocol's adapter; an event without an id takes
//! one derived from the line's bytes, so sending the same rows again stores nothing twice.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_core::{Outcome, PreparedCommand};
use troupe_ingest::export::{self, ExportOptions, ExportSource, Record};
use troupe_ingest::segment::SegmentOptions;

use crate::error::{ApiError, ApiQuery};
use crate::{AppState, Permission};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/projects/{project}/import", post(import))
}

#[derive(Deserialize)]
struct ImportQuery {
    from: ExportSource,
}

/// What a request's rows did: `{rows, new_events, duplicates, profile_rows, rejected: [{line,
/// error}]}`, lines counted from 1 in the body.
async fn import(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    ApiQuery(query): ApiQuery<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Admin).await?;
    let join = app.ingestion_settings.get(app.store.as_ref(), project.id).await?.segment_group;
    let options = ExportOptions {
        segment: SegmentOptions { group_type: app.settings.segment_group_type.clone(), join },
        mixpanel_group_keys: app.settings.mixpanel_group_keys.clone(),
    };
    let limits = app.limits.clone();
    // Translating megabytes of rows is CPU work: off the request threads.
    let translated = tokio::task::spawn_blocking(move || {
        let mut rows = 0;
        let mut lines = Vec::new();
        let mut commands: Vec<PreparedCommand> = Vec::new();
        let mut rejected = Vec::new();
        for (line, text) in export::ndjson_lines(&body) {
            rows += 1;
            let hash = export::row_hash(text);
            match export::translate(query.from, Record::Line(text.to_vec()), hash, &options, &limits) {
                Ok(row) => {
                    lines.extend(std::iter::repeat_n(line, row.len()));
                    commands.extend(row);
                }
                Err(error) => rejected.push((line, error)),
            }
        }
        (rows, lines, commands, rejected)
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "an import's translation stopped");
        ApiError::Internal
    })?;
    let (rows, lines, commands, mut rejected) = translated;
    app.rate_limits.check_project(project.id, &project.name, commands.len())?;
    let results = app.store.apply_prepared(project.id, commands).await?;
    let (mut new_events, mut duplicates, mut profile_rows) = (0, 0, std::collections::BTreeSet::new());
    let mut failed = std::collections::BTreeSet::new();
    for (line, result) in lines.into_iter().zip(results) {
        match result {
            Ok(Outcome::Stored { .. }) => new_events += 1,
            Ok(Outcome::Duplicate) => duplicates += 1,
            Ok(_) => {
                profile_rows.insert(line);
            }
            Err(e) => {
                if failed.insert(line) {
                    rejected.push((line, e.to_string()));
                }
            }
        }
    }
    rejected.sort_by_key(|(line, _)| *line);
    let rejected: Vec<Value> =
        rejected.into_iter().map(|(line, error)| json!({"line": line, "error": error})).collect();
    Ok(Json(json!({
        "rows": rows,
        "new_events": new_events,
        "duplicates": duplicates,
        "profile_rows": profile_rows.len(),
        "rejected": rejected,
    })))
}
