//! HTTP routes of the Mixpanel ingestion API. Translation is in `troupe_ingest::mixpanel`.
//!
//! mixpanel-python reads only the body: success must be JSON `{"status": 1, "error": null}` and
//! an error `{"status": 0, "error": "…"}` (a bare `1` or `{}` makes it raise).
//! `/track` is shared with OpenPanel (see `track`).

use std::sync::Arc;

use axum::body::Bytes;
use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use troupe_core::CoreError;
use troupe_ingest::mixpanel::{self, Endpoint};

use crate::auth::{basic_user, hash_secret};
use crate::error::{item_error, ApiError};
use crate::routes::apply_items;
use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/track", post(track))
        .route("/track/", post(track))
        .route("/import", post(import))
        .route("/import/", post(import))
        .route("/engage", post(engage))
        .route("/engage/", post(engage))
        .route("/groups", post(groups))
        .route("/groups/", post(groups))
}

/// An error in Mixpanel's shape.
struct MixpanelError(ApiError);

impl<E: Into<ApiError>> From<E> for MixpanelError {
    fn from(e: E) -> Self {
        MixpanelError(e.into())
    }
}

impl IntoResponse for MixpanelError {
    fn into_response(self) -> Response {
        let status = self.0.status();
        let mut body = json!({"status": 0, "error": self.0.to_string(), "code": self.0.code()});
        if let ApiError::Invalid(e) = &self.0 {
            body["field"] = json!(e.field());
        }
        let mut response = (status, Json(body)).into_response();
        if status.is_server_error() {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

/// `/track` is Mixpanel's and OpenPanel's: OpenPanel's header or `{type, payload}` body decides.
async fn track(State(app): State<Arc<AppState>>, request: Request) -> Response {
    // The peer address is there when the server runs with connect info (`troupe serve`).
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().cloned();
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let Ok(body) = axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await else {
        return MixpanelError(ApiError::BadJson("the body could not be read (larger than 20 MiB?)".into()))
            .into_response();
    };
    if super::openpanel::is_openpanel(&headers, &body) {
        return super::openpanel::handle(&app, &headers, peer, &body).await.unwrap_or_else(IntoResponse::into_response);
    }
    handle(&app, &headers, Endpoint::Track, &body).await.unwrap_or_else(IntoResponse::into_response)
}

async fn import(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, MixpanelError> {
    handle(&app, &headers, Endpoint::Import, &body).await
}

async fn engage(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, MixpanelError> {
    handle(&app, &headers, Endpoint::Engage, &body).await
}

async fn groups(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, MixpanelError> {
    handle(&app, &headers, Endpoint::Groups, &body).await
}

/// The messages of a request: the form field `data`, or a JSON body.
fn data(headers: &HeaderMap, body: &Bytes) -> Result<Value, ApiError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if is_json {
        return serde_json::from_slice(body).map_err(|e| ApiError::BadJson(e.to_string()));
    }
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| CoreError::invalid("body", format!("is not form-encoded: {e}")))?;
    let raw = form.into_iter().find(|(k, _)| k == "data").map(|(_, v)| v).ok_or_else(|| CoreError::missing("data"))?;
    Ok(mixpanel::decode_data(&raw)?)
}

async fn handle(
    app: &AppState,
    headers: &HeaderMap,
    endpoint: Endpoint,
    body: &Bytes,
) -> Result<Response, MixpanelError> {
    let data = data(headers, body)?;
    let request = mixpanel::translate(endpoint, &data, &app.settings.mixpanel_group_keys, &app.limits)?;
    let token = request.token.ok_or_else(|| ApiError::Unauthorized("missing project token in the messages".into()))?;
    let project = app
        .projects
        .by_ingestion_key(app.store.as_ref(), &token)
        .await?
        .ok_or_else(|| ApiError::Unauthorized(format!("project token '{token}' is not valid")))?;
    if endpoint == Endpoint::Import {
        // Historical import needs the project's secret as Basic auth, as Mixpanel's does.
        let secret = basic_user(headers).ok_or_else(|| {
            ApiError::Unauthorized("/import needs the project's secret key as Basic auth ('<secret>:')".into())
        })?;
        if hash_secret(&secret) != project.secret_key_hash {
            return Err(ApiError::Unauthorized("that secret key is not valid for this project".into()).into());
        }
    }
    let total = request.items.len();
    let report = apply_items(app, project.id, request.items).await?;
    if report.rejected.is_empty() {
        return Ok((StatusCode::OK, Json(json!({"status": 1, "error": null}))).into_response());
    }
    let error = format!(
        "{} of {total} messages were rejected; the other {} were stored. First: {}",
        report.rejected.len(),
        report.accepted,
        report.rejected[0].1
    );
    let rejected: Vec<Value> = report.rejected.iter().map(|(i, e)| item_error(*i, e)).collect();
    Ok((StatusCode::BAD_REQUEST, Json(json!({"status": 0, "error": error, "rejected": rejected}))).into_response())
}
