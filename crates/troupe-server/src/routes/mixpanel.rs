//! HTTP routes of the Mixpanel ingestion API. Translation is in `troupe_ingest::mixpanel`.
//!
//! mixpanel-python reads only the body: success must be JSON `{"status": 1, "error": null}` and
//! an error `{"status": 0, "error": "…"}` (a bare `1` or `{}` makes it raise).
//! `/track` is shared with OpenPanel: [`super::track`] dispatches it.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use troupe_ingest::mixpanel::{self, Endpoint};

use crate::auth::{basic_user, Scope};
use crate::error::{error_field, json_value, ApiError, ErrorShape, ProtocolError};
use crate::routes::{apply_items, Sender};
use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/import", post(import))
        .route("/import/", post(import))
        .route("/engage", post(engage))
        .route("/engage/", post(engage))
        .route("/groups", post(groups))
        .route("/groups/", post(groups))
}

/// Mixpanel's error shape: `{status: 0, error, code, field?}` (the client reads only the body).
pub(crate) struct MixpanelShape;

impl ErrorShape for MixpanelShape {
    fn body(error: &ApiError) -> Value {
        let mut body = json!({"status": 0, "error": error.to_string(), "code": error.code()});
        if let Some(field) = error_field(error) {
            body["field"] = json!(field);
        }
        body
    }
}

type MixpanelError = ProtocolError<MixpanelShape>;

/// `/track` (dispatched by [`super::track`], which OpenPanel shares): a Mixpanel track request.
pub(crate) async fn track(app: &AppState, headers: &HeaderMap, body: Option<&Bytes>) -> Response {
    let Some(body) = body else {
        return MixpanelError::from(ApiError::BadJson("the body could not be read (larger than 20 MiB?)".into()))
            .into_response();
    };
    handle(app, headers, Endpoint::Track, body).await.unwrap_or_else(IntoResponse::into_response)
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
        return json_value(body);
    }
    let raw = mixpanel::form_data(body)?;
    let text = mixpanel::data_text(&raw)?;
    match troupe_ingest::json::parse(&text, &troupe_ingest::json::JsonLimits::default()) {
        // Mixpanel's clients put the JSON in the form field `data`: the error names it.
        Err(troupe_ingest::json::JsonError::Syntax(e)) => {
            Err(troupe_core::CoreError::invalid("data", format!("is not valid JSON: {e}")).into())
        }
        parsed => Ok(parsed?),
    }
}

async fn handle(
    app: &AppState,
    headers: &HeaderMap,
    endpoint: Endpoint,
    body: &Bytes,
) -> Result<Response, MixpanelError> {
    let data = data(headers, body)?;
    let request = mixpanel::translate(endpoint, &data, &app.settings.mixpanel_group_keys, &app.limits)?;
    let token = request.key.ok_or_else(|| ApiError::Unauthorized("missing project token in the messages".into()))?;
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
        // Importing history is an admin's act, as the import route's.
        let grant = app.projects.by_secret(app.store.as_ref(), &secret).await?;
        match grant {
            Some(g) if g.project.id == project.id && g.key.scope == Scope::Admin => {}
            Some(g) if g.project.id == project.id => {
                return Err(ApiError::Forbidden(format!(
                    "the key '{}' has no admin scope: /import needs one",
                    g.key.name
                ))
                .into())
            }
            _ => return Err(ApiError::Unauthorized("that secret key is not valid for this project".into()).into()),
        }
    }
    let total = request.items.len();
    let sender = if endpoint == Endpoint::Import { Sender::SecretKey } else { Sender::IngestionKey };
    let report = apply_items(app, &project, request.items, sender, "mixpanel").await?;
    if report.rejected.is_empty() {
        return Ok((StatusCode::OK, Json(json!({"status": 1, "error": null}))).into_response());
    }
    let body = json!({"status": 0, "error": report.summary(total, "messages"), "rejected": report.rejected_json()});
    Ok((StatusCode::BAD_REQUEST, Json(body)).into_response())
}
