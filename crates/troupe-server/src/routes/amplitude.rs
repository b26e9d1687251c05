//! HTTP route of Amplitude's HTTP API v2 (`POST /2/httpapi`), as the `amplitude-analytics`
//! client sends it (its Batch API body is the same; `/batch` is PostHog's path here, so a client
//! in batch mode is pointed at `/2/httpapi` with `server_url`). Translation is in
//! `troupe_ingest::amplitude`.
//!
//! The client reads the JSON body's `code`: `{code: 200, events_ingested, payload_size_bytes,
//! server_upload_time}` on success; on a 400 it drops the events named in
//! `events_with_invalid_fields` and sends the rest again (their `insert_id`s make that a
//! duplicate). The project is the body's `api_key`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use troupe_ingest::amplitude;

use crate::error::{json_value, ApiError, ErrorShape, ProtocolError};
use crate::routes::{apply_items, Sender};
use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/2/httpapi", post(events))
}

/// Amplitude's error shape: `{code, error}` (the client reads `code` from the body).
pub(crate) struct AmplitudeShape;

impl ErrorShape for AmplitudeShape {
    fn body(error: &ApiError) -> Value {
        json!({"code": error.status().as_u16(), "error": error.to_string(), "troupe_code": error.code()})
    }
}

type AmplitudeError = ProtocolError<AmplitudeShape>;

async fn events(State(app): State<Arc<AppState>>, body: Bytes) -> Result<Response, AmplitudeError> {
    let size = body.len();
    let value = json_value(&body)?;
    let request = amplitude::translate(&value, &app.limits)?;
    let key = request.key.ok_or_else(|| ApiError::Unauthorized("missing api_key in the body".into()))?;
    let project = app
        .projects
        .by_ingestion_key(app.store.as_ref(), &key)
        .await?
        .ok_or_else(|| ApiError::Unauthorized(format!("api_key '{key}' is not valid")))?;
    let total = request.items.len();
    let report = apply_items(&app, &project, request.items, Sender::IngestionKey, "amplitude").await?;
    if report.rejected.is_empty() {
        let now = chrono::Utc::now().timestamp_millis();
        let body =
            json!({"code": 200, "events_ingested": total, "payload_size_bytes": size, "server_upload_time": now});
        return Ok((StatusCode::OK, Json(body)).into_response());
    }
    // Amplitude's shape for refused events: per field, the indexes of the events it refused.
    let mut invalid = serde_json::Map::new();
    for (index, error) in &report.rejected {
        let entry = invalid.entry(error.field().to_string()).or_insert_with(|| json!([]));
        if let Value::Array(indexes) = entry {
            indexes.push(json!(index));
        }
    }
    let body = json!({"code": 400, "error": report.summary(total, "events"), "events_with_invalid_fields": invalid,
        "rejected": report.rejected_json()});
    Ok((StatusCode::BAD_REQUEST, Json(body)).into_response())
}
