//! API errors: each maps to one HTTP status and a JSON body `{"error", "code", "field"?}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use thiserror::Error;
use troupe_core::CoreError;
use troupe_query::QueryError;
use troupe_store::StoreError;

#[derive(Debug, Error)]
pub enum ApiError {
    /// The request broke a rule; names the field.
    #[error(transparent)]
    Invalid(#[from] CoreError),
    #[error("request body is not valid JSON: {0}")]
    BadJson(String),
    /// The body is over a size limit (bytes, decompressed bytes, JSON values, nesting).
    #[error("request body is too large: {0}")]
    TooLarge(String),
    /// The body's `Content-Encoding` (or PostHog's `compression`) could not be decoded.
    #[error("request body could not be decoded: {0}")]
    BadEncoding(String),
    #[error("{0}")]
    BadQuery(String),
    #[error("{0}")]
    Unauthorized(String),
    /// Authenticated, but this key may not do this.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    /// Over a rate limit; retry after the given seconds.
    #[error("rate limit exceeded for {scope}: retry after {retry_after} s")]
    RateLimited { scope: String, retry_after: u64 },
    /// A failure of the store. Shown to clients by kind only: its text can hold a backend's
    /// own message, which is logged with the request id instead.
    #[error("{}", store_message(.0))]
    Store(#[from] StoreError),
    /// A fault of troupe itself (a panic): logged, answered without detail.
    #[error("internal error")]
    Internal,
}

/// What a client is told of a store error.
fn store_message(e: &StoreError) -> String {
    match e {
        StoreError::Unavailable(_) | StoreError::Closed => {
            "the store is unavailable; nothing was stored, retry later".into()
        }
        StoreError::Internal(_) => "internal error; nothing was stored".into(),
        // Our own texts ("a project named 'x' already exists", "group 'acme' not found").
        StoreError::Conflict(_) | StoreError::NotFound(_) | StoreError::Unsupported(_) => e.to_string(),
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Store(e) => ApiError::Store(e),
            other => ApiError::BadQuery(other.to_string()),
        }
    }
}

impl From<troupe_ingest::json::JsonError> for ApiError {
    fn from(e: troupe_ingest::json::JsonError) -> Self {
        match e {
            troupe_ingest::json::JsonError::OverLimit(why) => ApiError::TooLarge(why),
            troupe_ingest::json::JsonError::Syntax(why) => ApiError::BadJson(why),
        }
    }
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::BadJson(_) | ApiError::BadQuery(_) | ApiError::BadEncoding(_) => {
                StatusCode::BAD_REQUEST
            }
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) | ApiError::Store(StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Store(StoreError::Conflict(_)) => StatusCode::CONFLICT,
            ApiError::Store(StoreError::Unsupported(_)) => StatusCode::NOT_IMPLEMENTED,
            // Nothing of a failed write was stored, so the client's retry is safe.
            ApiError::Store(StoreError::Unavailable(_) | StoreError::Closed) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Store(StoreError::Internal(_)) | ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(e) => e.code(),
            ApiError::BadJson(_) => "invalid_json",
            ApiError::TooLarge(_) => "too_large",
            ApiError::BadEncoding(_) => "invalid_encoding",
            ApiError::BadQuery(_) => "invalid_query",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) | ApiError::Store(StoreError::NotFound(_)) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::Store(StoreError::Conflict(_)) => "conflict",
            ApiError::Store(StoreError::Unsupported(_)) => "unsupported",
            ApiError::Store(StoreError::Unavailable(_) | StoreError::Closed) => "unavailable",
            ApiError::Store(StoreError::Internal(_)) | ApiError::Internal => "internal",
        }
    }

    /// Seconds a client should wait before it retries, when a retry may succeed.
    pub(crate) fn retry_after(&self) -> Option<u64> {
        match self {
            ApiError::RateLimited { retry_after, .. } => Some(*retry_after),
            e if e.status() == StatusCode::SERVICE_UNAVAILABLE => Some(1),
            _ => None,
        }
    }

    /// Log a server-side failure with its whole text (a backend's message included) and the
    /// request id the client was given.
    fn log(&self) {
        if !self.status().is_server_error() {
            return;
        }
        let detail = match self {
            ApiError::Store(e) => e.to_string(),
            other => other.to_string(),
        };
        let request_id = crate::respond::request_id();
        // A 503 is the backend being away (worth a retry, often many in a row): a warning; a 500
        // is a fault of troupe.
        if self.status() == StatusCode::SERVICE_UNAVAILABLE {
            tracing::warn!(request_id = %request_id, error = %detail, "request refused, retry later");
        } else {
            tracing::error!(request_id = %request_id, error = %detail, "request failed");
        }
    }

    /// The response: `body` in the status of this error, with `Retry-After` where a retry may
    /// succeed and the request id on server errors.
    pub(crate) fn respond(&self, mut body: serde_json::Value) -> Response {
        self.log();
        let status = self.status();
        if status.is_server_error() {
            if let Some(object) = body.as_object_mut() {
                object.insert("request_id".into(), json!(crate::respond::request_id()));
            }
        }
        let mut response = (status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after() {
            if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}

/// troupe's own error shape (native routes, read and query API): `{error, code, field?}`.
pub struct NativeShape;

impl ErrorShape for NativeShape {
    fn body(error: &ApiError) -> serde_json::Value {
        let mut body = json!({"error": error.to_string(), "code": error.code()});
        if let Some(field) = error_field(error) {
            body["field"] = json!(field);
        }
        body
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        self.respond(NativeShape::body(&self))
    }
}

/// A request body as JSON (a value, or a typed shape) within the body limits
/// ([`troupe_ingest::json`]): a syntax error is a 400 `invalid_json`, a body over a limit a 413
/// `too_large`, refused as soon as the parser crosses the limit.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    Ok(troupe_ingest::json::parse_as(body, &troupe_ingest::json::JsonLimits::default())?)
}

/// [`json_body`] as a JSON value, without a second pass to a typed shape (the ingestion routes).
pub fn json_value(body: &[u8]) -> Result<serde_json::Value, ApiError> {
    Ok(troupe_ingest::json::parse(body, &troupe_ingest::json::JsonLimits::default())?)
}

/// The JSON object of a rejected batch item.
pub fn item_error(index: usize, e: &CoreError) -> serde_json::Value {
    json!({"index": index, "error": e.to_string(), "code": e.code(), "field": e.field()})
}

/// `Query`, answering a malformed query string with a JSON error like every other 4xx.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|e| ApiError::BadQuery(e.body_text()))
    }
}

/// How one protocol spells an error body. Status codes and `Retry-After` are the same for all.
pub trait ErrorShape {
    fn body(error: &ApiError) -> serde_json::Value;
}

/// An [`ApiError`] answered in a protocol's own error shape.
pub struct ProtocolError<S: ErrorShape>(pub ApiError, std::marker::PhantomData<S>);

impl<S: ErrorShape, E: Into<ApiError>> From<E> for ProtocolError<S> {
    fn from(e: E) -> Self {
        ProtocolError(e.into(), std::marker::PhantomData)
    }
}

impl<S: ErrorShape> IntoResponse for ProtocolError<S> {
    fn into_response(self) -> Response {
        self.0.respond(S::body(&self.0))
    }
}

/// The field an error is about, if it is about one.
pub fn error_field(error: &ApiError) -> Option<&str> {
    match error {
        ApiError::Invalid(e) => Some(e.field()),
        ApiError::TooLarge(_) | ApiError::BadEncoding(_) | ApiError::BadJson(_) => Some("body"),
        _ => None,
    }
}
