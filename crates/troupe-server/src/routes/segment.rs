//! HTTP routes of the Segment protocol. Translation is in `troupe_ingest::segment`.
//!
//! Success is `200 {"success": true}` (both Segment clients take any 2xx). The write key comes
//! as Basic auth (`writeKey:`) or in the body. Errors: `{"success": false, "message", "code",
//! "field"}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use troupe_ingest::segment::{self, SegmentOptions};

use crate::error::{error_field, json_value, ApiError, ErrorShape, ProtocolError};
use crate::routes::{apply_items, Sender};
use crate::AppState;

const MESSAGE_ROUTES: &[&str] = &["identify", "track", "page", "screen", "group", "alias"];

pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/batch", post(batch)).route("/v1/import", post(batch)).route("/v1/{kind}", post(single))
}

/// Segment's error shape: `{success: false, message, code, field?}`.
pub(crate) struct SegmentShape;

impl ErrorShape for SegmentShape {
    fn body(error: &ApiError) -> Value {
        let mut body = json!({"success": false, "message": error.to_string(), "code": error.code()});
        if let Some(field) = error_field(error) {
            body["field"] = json!(field);
        }
        body
    }
}

type SegmentError = ProtocolError<SegmentShape>;

async fn batch(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, SegmentError> {
    handle(&app, &headers, None, &body).await
}

async fn single(
    State(app): State<Arc<AppState>>,
    Path(kind): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, SegmentError> {
    if !MESSAGE_ROUTES.contains(&kind.as_str()) {
        return Err(ApiError::NotFound(format!("no route /v1/{kind}")).into());
    }
    handle(&app, &headers, Some(&kind), &body).await
}

async fn handle(
    app: &AppState,
    headers: &HeaderMap,
    kind: Option<&str>,
    body: &Bytes,
) -> Result<Response, SegmentError> {
    let body = json_value(body)?;
    // The project first: how its `group` calls join is its own setting.
    let key = crate::auth::basic_user(headers).or_else(|| segment::body_write_key(&body)).ok_or_else(|| {
        ApiError::Unauthorized(
            "missing write key: send it as Basic auth ('<writeKey>:') or as writeKey in the body".into(),
        )
    })?;
    let project = app
        .projects
        .by_ingestion_key(app.store.as_ref(), &key)
        .await?
        .ok_or_else(|| ApiError::Unauthorized(format!("write key '{key}' is not valid")))?;
    let join = app.ingestion_settings.get(app.store.as_ref(), project.id).await?.segment_group;
    let options = SegmentOptions { group_type: app.settings.segment_group_type.clone(), join };
    let request = segment::translate(&body, kind, &options, &app.limits)?;
    let total = request.items.len();
    let report = apply_items(app, &project, request.items, Sender::IngestionKey, "segment").await?;
    if report.rejected.is_empty() {
        return Ok((StatusCode::OK, Json(json!({"success": true}))).into_response());
    }
    let message = report.summary(total, "messages");
    let body =
        json!({"success": false, "message": message, "code": "invalid_messages", "rejected": report.rejected_json()});
    Ok((StatusCode::BAD_REQUEST, Json(body)).into_response())
}
