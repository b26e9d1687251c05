//! HTTP routes of the PostHog capture protocol. Translation is in `troupe_ingest::posthog`.
//!
//! posthog-python counts only an exact 200 as success (anything else is resent), so success is
//! always `200 {"status": 1}`. Errors take PostHog's shape: `{type, code, detail, attr}`.

use std::io::Read;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_core::CoreError;
use troupe_ingest::posthog;

use crate::error::{error_field, json_value, ApiError, ApiQuery, ErrorShape, ProtocolError};
use crate::routes::{apply_items, Sender};
use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    let mut router = Router::new();
    for path in ["/batch", "/capture", "/e", "/i/v0/e"] {
        router = router.route(path, post(capture)).route(&format!("{path}/"), post(capture));
    }
    router
}

#[derive(Deserialize, Default)]
struct CaptureParams {
    compression: Option<String>,
}

/// PostHog's error shape: `{type, code, detail, attr}`.
pub(crate) struct PostHogShape;

impl ErrorShape for PostHogShape {
    fn body(error: &ApiError) -> Value {
        let kind = match error.status() {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::TOO_MANY_REQUESTS => "throttled_error",
            s if s.is_server_error() => "server_error",
            _ => "validation_error",
        };
        json!({"type": kind, "code": error.code(), "detail": error.to_string(), "attr": error_field(error)})
    }
}

type PostHogError = ProtocolError<PostHogShape>;

async fn capture(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<CaptureParams>,
    body: Bytes,
) -> Result<Response, PostHogError> {
    let raw = decompress_js(&body, params.compression.as_deref())?;
    let body = json_value(&raw)?;
    let capture = posthog::translate(body, &app.limits)?;
    let key = capture.key.or_else(|| crate::auth::bearer(&headers).map(str::to_string)).ok_or_else(|| {
        ApiError::Unauthorized("missing project API key: send api_key in the body (or token in properties)".into())
    })?;
    let project = app
        .projects
        .by_ingestion_key(app.store.as_ref(), &key)
        .await?
        .ok_or_else(|| ApiError::Unauthorized(format!("project API key '{key}' is not valid")))?;
    let total = capture.items.len();
    let report = apply_items(&app, &project, capture.items, Sender::IngestionKey, "posthog").await?;
    let Some((_, first)) = report.rejected.first() else {
        return Ok((StatusCode::OK, Json(json!({"status": 1}))).into_response());
    };
    // Valid events are stored; the client hears about the others (and does not resend a 400).
    let body = json!({
        "type": "validation_error", "code": "invalid_events", "detail": report.summary(total, "events"),
        "attr": first.field(), "rejected": report.rejected_json(),
    });
    Ok((StatusCode::BAD_REQUEST, Json(body)).into_response())
}

/// posthog-js sends gzip without `Content-Encoding` (`?compression=gzip-js`).
fn decompress_js(body: &Bytes, compression: Option<&str>) -> Result<Vec<u8>, ApiError> {
    let gzipped = compression == Some("gzip-js") || body.starts_with(&[0x1f, 0x8b]);
    if !gzipped {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .take(crate::MAX_BODY_BYTES as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| CoreError::invalid("body", format!("is not valid gzip: {e}")))?;
    if out.len() > crate::MAX_BODY_BYTES {
        return Err(CoreError::invalid("body", "is larger than 20 MiB decompressed").into());
    }
    Ok(out)
}
