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
    #[error("{0}")]
    BadQuery(String),
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    NotFound(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::Store(e) => ApiError::Store(e),
            other => ApiError::BadQuery(other.to_string()),
        }
    }
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::Invalid(_) | ApiError::BadJson(_) | ApiError::BadQuery(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::NotFound(_) | ApiError::Store(StoreError::NotFound(_)) => StatusCode::NOT_FOUND,
            ApiError::Store(StoreError::Conflict(_)) => StatusCode::CONFLICT,
            // Nothing of a failed write was stored, so the client's retry is safe.
            ApiError::Store(StoreError::Backend(_) | StoreError::Closed) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub(crate) fn code(&self) -> &'static str {
        match self {
            ApiError::Invalid(e) => e.code(),
            ApiError::BadJson(_) => "invalid_json",
            ApiError::BadQuery(_) => "invalid_query",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::NotFound(_) | ApiError::Store(StoreError::NotFound(_)) => "not_found",
            ApiError::Store(StoreError::Conflict(_)) => "conflict",
            ApiError::Store(_) => "unavailable",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let mut body = json!({"error": self.to_string(), "code": self.code()});
        if let ApiError::Invalid(e) = &self {
            body["field"] = json!(e.field());
        }
        let mut response = (status, Json(body)).into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// A request body as JSON (a value, or a typed shape); anything else is a 400 `invalid_json`.
pub fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::BadJson(e.to_string()))
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
        let status = self.0.status();
        let mut response = (status, Json(S::body(&self.0))).into_response();
        if status.is_server_error() {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

/// The field an error is about, if it is about one.
pub fn error_field(error: &ApiError) -> Option<&str> {
    match error {
        ApiError::Invalid(e) => Some(e.field()),
        _ => None,
    }
}
