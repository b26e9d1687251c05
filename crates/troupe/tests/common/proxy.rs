//! A fault-injecting proxy for exactly-once tests: it forwards every request to troupe and, for
//! every other one (the 1st, 3rd, …), throws troupe's answer away after troupe handled it: it
//! answers 503, or cuts the connection in the middle of the reply. The clients under test send one
//! request at a time, so each failed attempt is followed by the client's own retry of something
//! troupe already stored. (Requests are not matched by body: clients such as posthog-python
//! change `sent_at` on every attempt.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::{to_bytes, Body};
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// How a failed attempt fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Answer 503.
    Status503,
    /// Start a 200 reply, then drop the connection before its body.
    DropConnection,
    /// Forward everything, except while [`FaultProxy::set_down`] says the upstream is down:
    /// then every request fails as an unreachable server's would (for troupe in front of a
    /// ClickHouse that goes away and comes back).
    OutageOnly,
    /// Forward everything, but the first insert into ClickHouse's `events` table arrives late:
    /// its connection breaks at once, and the insert reaches ClickHouse 1.5 s later (a reply
    /// lost, a request held up on the way).
    LateEventsInsert,
}

struct ProxyState {
    fault: Fault,
    upstream: String,
    client: reqwest::Client,
    requests: AtomicUsize,
    failed: AtomicUsize,
    down: std::sync::atomic::AtomicBool,
    delayed: AtomicUsize,
}

pub struct FaultProxy {
    pub base: String,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    pub async fn start(upstream: &str) -> FaultProxy {
        Self::with_fault(upstream, Fault::Status503).await
    }

    pub async fn with_fault(upstream: &str, fault: Fault) -> FaultProxy {
        let state = Arc::new(ProxyState {
            fault,
            upstream: upstream.to_string(),
            client: reqwest::Client::new(),
            requests: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            down: std::sync::atomic::AtomicBool::new(false),
            delayed: AtomicUsize::new(0),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let base = format!("http://{}", listener.local_addr().expect("address"));
        let app = axum::Router::new().fallback(forward).with_state(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FaultProxy { base, state, task }
    }

    /// Take the upstream away (`true`) or bring it back.
    pub fn set_down(&self, down: bool) {
        self.state.down.store(down, Ordering::SeqCst);
    }

    /// How many answers were replaced by a 503.
    pub fn failed(&self) -> usize {
        self.state.failed.load(Ordering::SeqCst)
    }

    /// How many inserts into `events` passed ([`Fault::LateEventsInsert`]; the first was held back).
    pub fn events_inserts(&self) -> usize {
        self.state.delayed.load(Ordering::SeqCst)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A reply that breaks off before its body: the client sees its connection fail.
fn broken_reply() -> Response {
    // A body that fails makes the server abort the connection mid-reply.
    let broken = futures_util::stream::once(async {
        Err::<axum::body::Bytes, std::io::Error>(std::io::Error::other("injected connection drop"))
    });
    Response::new(Body::from_stream(broken))
}

async fn forward(State(state): State<Arc<ProxyState>>, request: Request) -> Response {
    if state.fault == Fault::OutageOnly && state.down.load(Ordering::SeqCst) {
        state.failed.fetch_add(1, Ordering::SeqCst);
        return broken_reply();
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = to_bytes(body, 64 * 1024 * 1024).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let path = parts.uri.path_and_query().map(|p| p.to_string()).unwrap_or_default();
    let inserts_events = || {
        let query = parts.uri.query().unwrap_or_default().replace('+', " ").replace("%20", " ");
        query.contains("INSERT INTO events ")
    };
    // The same request to the upstream, headers as sent (but the host and the length).
    let mut upstream =
        state.client.request(parts.method.clone(), format!("{}{path}", state.upstream)).body(bytes.to_vec());
    for (name, value) in &parts.headers {
        if name != header::HOST && name != header::CONTENT_LENGTH {
            upstream = upstream.header(name, value);
        }
    }
    if state.fault == Fault::LateEventsInsert && inserts_events() && state.delayed.fetch_add(1, Ordering::SeqCst) == 0 {
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
            let _ = upstream.send().await;
        });
        return broken_reply();
    }
    let Ok(answer) = upstream.send().await else {
        return StatusCode::BAD_GATEWAY.into_response();
    };
    let injects = matches!(state.fault, Fault::Status503 | Fault::DropConnection);
    let fail = injects && state.requests.fetch_add(1, Ordering::SeqCst) % 2 == 0;
    if fail {
        state.failed.fetch_add(1, Ordering::SeqCst);
        return match state.fault {
            Fault::Status503 => {
                (StatusCode::SERVICE_UNAVAILABLE, "injected failure after troupe stored the request").into_response()
            }
            Fault::DropConnection | Fault::OutageOnly | Fault::LateEventsInsert => broken_reply(),
        };
    }
    let status = answer.status();
    let headers = answer.headers().clone();
    let body = answer.bytes().await.unwrap_or_default();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name != header::CONTENT_LENGTH && name != header::TRANSFER_ENCODING {
            response.headers_mut().insert(name, value.clone());
        }
    }
    response
}
