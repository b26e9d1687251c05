//! HTTP routes of the native protocol (Trodo's). Translation is in `troupe_ingest::native`;
//! this module authenticates, applies and answers as the Trodo SDKs expect (any status below
//! 400 is success; `identify` reads `distinctId` from the answer).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use troupe_core::Outcome;
use troupe_ingest::native;
use troupe_store::Project;

use crate::error::{json_value, ApiError};
use crate::routes::{apply_items, apply_limited, Sender};
use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/events", post(event))
        .route("/api/events/bulk", post(events_bulk))
        .route("/api/sdk/batch", post(batch))
        .route("/api/sdk/{*kind}", post(sdk_write))
}

/// Routes of the Trodo SDKs that troupe deliberately does not implement.
const OUT_OF_SCOPE: &[&str] = &["runs", "spans", "otel", "prompts", "datasets", "experiments"];

/// The project of a native request: the `X-Trodo-Site-Id` header, else the body's `siteId`.
pub(crate) async fn project(app: &AppState, headers: &HeaderMap, body: &Value) -> Result<Project, ApiError> {
    let key = headers
        .get("x-trodo-site-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| body.get("siteId").and_then(Value::as_str).map(str::to_string))
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("missing site id: send the X-Trodo-Site-Id header".into()))?;
    app.projects
        .by_ingestion_key(app.store.as_ref(), &key)
        .await?
        .ok_or_else(|| ApiError::Unauthorized(format!("unknown site id '{key}' in X-Trodo-Site-Id")))
}

async fn event(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    write(&app, &headers, "events", body).await
}

async fn sdk_write(
    State(app): State<Arc<AppState>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let top = kind.split('/').next().unwrap_or_default();
    if OUT_OF_SCOPE.contains(&top) {
        return Err(ApiError::NotFound(format!(
            "/api/sdk/{kind} is not part of troupe: agent runs, spans, prompts, datasets and experiments are out of scope"
        )));
    }
    if native::WriteKind::parse(&kind).is_none() {
        return Err(ApiError::NotFound(format!("no route /api/sdk/{kind}")));
    }
    write(&app, &headers, &kind, body).await
}

/// One write of `kind`: all of its commands succeed, or the first error is the answer.
async fn write(app: &AppState, headers: &HeaderMap, kind: &str, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = json_value(&body)?;
    let project = project(app, headers, &body).await?;
    let commands = native::translate(kind, &body, &app.limits)?.into_single()?;
    let mut reply = json!({"success": true});
    if native::WriteKind::parse(kind) == Some(native::WriteKind::UsersUpsert) {
        upsert_reply(app, &project, &body, &mut reply).await?;
    }
    for result in apply_limited(app, &project, commands, Sender::IngestionKey, "native").await? {
        match result? {
            Outcome::Stored { uuid } => reply["uuid"] = json!(uuid),
            Outcome::Duplicate => reply["duplicate"] = json!(true),
            Outcome::Dropped => reply["dropped"] = json!(true),
            Outcome::Identified { distinct_id, person_id, merged, group_memberships } => {
                reply["distinctId"] = json!(distinct_id);
                reply["personId"] = json!(person_id);
                reply["merged"] = json!(merged);
                reply["group_memberships"] = json!(group_memberships);
            }
            Outcome::Applied => {}
        }
    }
    Ok(Json(reply))
}

/// Trodo's answer to `users/upsert`: `{distinctId, created, applied, skipped}` — whether the user
/// is new (read before the write: a resent upsert answers `false`), and which fixed properties
/// were stored and which skipped ([`native::UPSERT_FIXED_PROPERTIES`]).
async fn upsert_reply(app: &AppState, project: &Project, body: &Value, reply: &mut Value) -> Result<(), ApiError> {
    let distinct_id = body.get("distinctId").and_then(Value::as_str).unwrap_or_default();
    let created = app.store.person(project.id, distinct_id, 0).await?.is_none();
    let (applied, skipped) = native::upsert_fixed_keys(body);
    reply["distinctId"] = json!(distinct_id);
    reply["created"] = json!(created);
    reply["applied"] = json!(applied);
    reply["skipped"] = json!(skipped);
    Ok(())
}

async fn events_bulk(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    write_batch(&app, &headers, "events", body).await
}

async fn batch(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Json<Value>, ApiError> {
    write_batch(&app, &headers, "items", body).await
}

/// A batch keeps its valid items and reports the rejected ones with their index.
async fn write_batch(app: &AppState, headers: &HeaderMap, field: &str, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body = json_value(&body)?;
    let project = project(app, headers, &body).await?;
    let items = native::batch_items(&body, field, &app.limits)?.items;
    let report = apply_items(app, &project, items, Sender::IngestionKey, "native").await?;
    Ok(Json(json!({
        "success": true,
        "accepted": report.accepted,
        "duplicates": report.duplicates,
        "rejected": report.rejected_json(),
    })))
}
