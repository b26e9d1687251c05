//! HTTP side of the OpenPanel protocol. Translation is in `troupe_ingest::openpanel`.
//!
//! @openpanel/sdk accepts only 200/202 with an empty or JSON body and reads `deviceId` and
//! `sessionId` from it; it retries everything else (400s included) three times and silently drops
//! after a 401. The project is the `openpanel-client-id` header.

use std::net::SocketAddr;

use axum::extract::ConnectInfo;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use troupe_ingest::openpanel;

use crate::error::{json_value, ApiError};
use crate::routes::{apply_limited, Sender};
use crate::AppState;

/// Whether a `/track` request is OpenPanel's rather than Mixpanel's.
pub fn is_openpanel(headers: &HeaderMap, body: &[u8]) -> bool {
    if headers.contains_key("openpanel-client-id") {
        return true;
    }
    let json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    json && serde_json::from_slice::<Value>(body).is_ok_and(|v| v.get("type").is_some() && v.get("payload").is_some())
}

/// OpenPanel's anonymous visitor: a stable id from the client id, user agent and address (the
/// first `X-Forwarded-For` hop behind a proxy), as OpenPanel's own server derives it.
fn device_id(headers: &HeaderMap, client_id: &str, peer: Option<SocketAddr>) -> String {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let forwarded = header("x-forwarded-for").split(',').next().unwrap_or_default().trim().to_string();
    let ip = if forwarded.is_empty() { peer.map(|p| p.ip().to_string()).unwrap_or_default() } else { forwarded };
    let digest = Sha256::digest(format!("{client_id}\0{}\0{ip}", header("user-agent")).as_bytes());
    format!("device-{}", &hex::encode(digest)[..20])
}

pub async fn handle(
    app: &AppState,
    headers: &HeaderMap,
    peer: Option<ConnectInfo<SocketAddr>>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let client_id = headers
        .get("openpanel-client-id")
        .and_then(|v| v.to_str().ok())
        .filter(|k| !k.is_empty())
        .ok_or_else(|| ApiError::Unauthorized("missing client id: send the openpanel-client-id header".into()))?
        .to_string();
    let project = app
        .projects
        .by_ingestion_key(app.store.as_ref(), &client_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized(format!("unknown client id '{client_id}'")))?;
    let body = json_value(body)?;
    let device = device_id(headers, &client_id, peer.map(|ConnectInfo(addr)| addr));
    let commands = openpanel::translate(&body, &device, &app.limits)?.into_single()?;
    for result in apply_limited(app, &project, commands, Sender::IngestionKey, "openpanel").await? {
        result?;
    }
    let profile = body.pointer("/payload/profileId").cloned().filter(|v| !v.is_null());
    let device_id = profile.map(|p| p.as_str().map(str::to_string).unwrap_or_else(|| p.to_string())).unwrap_or(device);
    Ok((StatusCode::OK, Json(json!({"deviceId": device_id, "sessionId": format!("session-{device_id}")})))
        .into_response())
}
