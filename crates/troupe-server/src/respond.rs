//! What every response passes through: a request id (in `X-Request-Id`, in the log line of a
//! failure, and in the body of a 5xx), a handler's panic turned into a 500, and every error that
//! axum or a layer produced as plain text (413 over the body limit, 405, a body that is not
//! valid gzip) turned into JSON in the error shape of the protocol the path belongs to, so a
//! client's error handling sees one shape whatever failed.

use axum::extract::Request;
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::{ApiError, ErrorShape, NativeShape};
use crate::routes::{amplitude::AmplitudeShape, mixpanel::MixpanelShape, posthog::PostHogShape, segment::SegmentShape};

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled ("-" outside one).
pub fn request_id() -> String {
    REQUEST_ID.try_with(String::clone).unwrap_or_else(|_| "-".into())
}

/// Bodies above this many bytes are read and decoded a few at a time ([`LARGE_BODIES_AT_ONCE`]):
/// client batches are far smaller (posthog-python and Segment send at most ~500 KB), and a
/// flood of 20 MB bodies would otherwise hold 20 MB and their parse each, all at once.
const LARGE_BODY_BYTES: u64 = 1 << 20;

/// Large bodies handled at once: as many as the machine has cores (at least two). The others
/// wait their turn; nothing is refused for it.
fn large_bodies() -> &'static tokio::sync::Semaphore {
    static PERMITS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    PERMITS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        tokio::sync::Semaphore::new(cores.max(2))
    })
}

/// Whether a request's body may be large: it says so, or does not say (chunked).
fn may_be_large(request: &Request) -> bool {
    if request.method() == Method::GET || request.method() == Method::HEAD {
        return false;
    }
    let length = request.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    length.is_none_or(|n| n > LARGE_BODY_BYTES)
}

/// The middleware: runs the request with its id and answers every error in JSON.
pub async fn request_context(request: Request, next: Next) -> Response {
    // Held until the response is built: the body's bytes and its parse are gone by then.
    let _permit = if may_be_large(&request) { large_bodies().acquire().await.ok() } else { None };
    let id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| is_plain_id(v))
        .map_or_else(new_request_id, str::to_string);
    let (path, method) = (request.uri().path().to_string(), request.method().clone());
    // Every line logged while serving the request carries its id (and JSON logs show it).
    let span = tracing::info_span!("request", request_id = %id, method = %method, path = %path);
    REQUEST_ID
        .scope(
            id.clone(),
            tracing::Instrument::instrument(
                async move {
                    let response = next.run(request).await;
                    let mut response = in_json(&path, &method, response).await;
                    if let Ok(value) = HeaderValue::from_str(&id) {
                        response.headers_mut().insert("x-request-id", value);
                    }
                    response
                },
                span,
            ),
        )
        .await
}

/// A client's own request id is kept when it is short and plain, so logs on both sides agree.
fn is_plain_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn new_request_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// A panic in a handler: logged with the request id; the client hears a 500 (turned into its
/// protocol's JSON shape by [`request_context`]).
pub fn panicked(panic: Box<dyn std::any::Any + Send>) -> Response {
    let message = troupe_store::writer::panic_message(panic.as_ref());
    tracing::error!(request_id = %request_id(), panic = %message, "request handler panicked");
    (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
}

/// An error response that is not JSON yet, as JSON in the path's protocol shape.
async fn in_json(path: &str, method: &Method, response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    // Axum's own rejections are a line of text; more is not read.
    let text = axum::body::to_bytes(response.into_body(), 4096).await.unwrap_or_default();
    let text = String::from_utf8_lossy(&text).trim().to_string();
    let error = match status {
        StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::TooLarge(format!("it is over {} MiB (after decompression)", crate::MAX_BODY_BYTES >> 20))
        }
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed(format!("{method} is not allowed on {path}")),
        StatusCode::NOT_FOUND => ApiError::NotFound(format!("no route {path}")),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            ApiError::BadEncoding("unsupported Content-Encoding (use gzip, or none)".into())
        }
        // The body could not be read: a broken gzip stream, a connection cut mid-body.
        StatusCode::BAD_REQUEST => ApiError::BadEncoding(text),
        _ if status.is_server_error() => ApiError::Internal,
        _ => ApiError::BadQuery(text),
    };
    let body = shape_of(path)(&error);
    let mut response = error.respond(body);
    // The status axum chose stands (e.g. 422 for a form it could not read).
    *response.status_mut() = status;
    response
}

/// The error shape of the protocol that owns `path`.
fn shape_of(path: &str) -> fn(&ApiError) -> serde_json::Value {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or_default();
    match first {
        "batch" | "capture" | "e" | "i" => PostHogShape::body,
        "v1" => SegmentShape::body,
        "2" => AmplitudeShape::body,
        "track" | "import" | "engage" | "groups" => MixpanelShape::body,
        _ => NativeShape::body,
    }
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use axum::routing::get;
    use axum::Router;
    use tower::ServiceExt;
    use tower_http::catch_panic::CatchPanicLayer;

    async fn panics() -> &'static str {
        panic!("a bug")
    }

    /// The layers as `crate::router` stacks them, around handlers that panic or answer text.
    fn app() -> Router {
        Router::new()
            .route("/batch/", get(panics).post(|| async { "ok" }))
            .route("/api/text", get(|| async { (StatusCode::BAD_REQUEST, "Failed to buffer the request body") }))
            .layer(CatchPanicLayer::custom(super::panicked))
            .layer(axum::middleware::from_fn(super::request_context))
    }

    async fn call(path: &str) -> (StatusCode, serde_json::Value, String) {
        let request = Request::get(path).body(Body::empty()).expect("request");
        let response = app().oneshot(request).await.expect("answers");
        let status = response.status();
        let id = response.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
        (status, serde_json::from_slice(&bytes).unwrap_or_default(), id)
    }

    #[tokio::test]
    async fn a_handler_panic_is_a_500_in_the_protocols_shape_with_the_request_id() {
        let (status, body, id) = call("/batch/").await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        // PostHog's route: PostHog's shape.
        assert_eq!((body["type"].as_str(), body["code"].as_str()), (Some("server_error"), Some("internal")));
        assert_eq!(body["request_id"].as_str(), Some(id.as_str()));
        assert!(!body.to_string().contains("a bug"), "the panic's text stays in the log: {body}");
    }

    #[tokio::test]
    async fn plain_text_errors_become_json() {
        let (status, body, _) = call("/api/text").await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::BAD_REQUEST, Some("invalid_encoding")));
        assert_eq!(body["field"].as_str(), Some("body"));
    }
}
