//! `GET /metrics` in Prometheus' text format: requests by route and status, writes accepted and
//! refused by protocol and reason, dedupe hits, batch sizes, store commit latency, writer queue
//! depth, insight latency by kind, the process's memory and the store's size.
//! Scraped with `Authorization: Bearer <metrics key>` when a key is set (`--metrics-key`), else
//! only from this machine.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::auth::hash_secret;
use crate::error::ApiError;
use crate::rate_limit::ClientAddr;
use crate::AppState;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The route's pattern (`/api/projects/{project}/query`), never the raw path: bounded.
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct WriteLabels {
    pub protocol: String,
    /// `stored`, `duplicate`, `dropped` (an erased person's), `applied` (profile and membership
    /// writes) or `refused`.
    pub outcome: String,
    /// Why a write was refused (the error code: `invalid_field`, `rate_limited`…); empty otherwise.
    pub reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueryLabels {
    pub kind: String,
}

pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    writes: Family<WriteLabels, Counter>,
    batch_writes: Histogram,
    queries: Family<QueryLabels, Histogram>,
    resident_bytes: Gauge,
    commit_seconds: Histogram,
    dedupe_hits: Family<ProtocolLabels, Counter>,
    writer_queue: Gauge,
    store_bytes: Gauge,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProtocolLabels {
    pub protocol: String,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("troupe");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by route pattern, method and status",
            requests.clone(),
        );
        let writes = Family::<WriteLabels, Counter>::default();
        registry.register(
            "writes",
            "Writes (events, profile and membership operations) by protocol and outcome",
            writes.clone(),
        );
        let batch_writes = Histogram::new(exponential_buckets(1.0, 4.0, 8));
        registry.register(
            "batch_writes",
            "Items per batch request (every protocol's batch routes)",
            batch_writes.clone(),
        );
        let queries = Family::<QueryLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 4.0, 9))
        });
        registry.register("query_seconds", "Time to answer an insight, by kind", queries.clone());
        let resident_bytes = Gauge::default();
        registry.register("resident_memory_bytes", "The process's resident memory", resident_bytes.clone());
        let commit_seconds = Histogram::new(exponential_buckets(0.0005, 4.0, 9));
        registry.register(
            "store_commit_seconds",
            "Time from handing a batch to the store until it is durable (queueing for the writer included)",
            commit_seconds.clone(),
        );
        let dedupe_hits = Family::<ProtocolLabels, Counter>::default();
        registry.register(
            "dedupe_hits",
            "Writes recognised as retries of stored ones (same event id or request id, or identical within the window) and not stored again",
            dedupe_hits.clone(),
        );
        let writer_queue = Gauge::default();
        registry.register(
            "writer_queue_depth",
            "Batches waiting for the store's writer (-1: the store cannot tell)",
            writer_queue.clone(),
        );
        let store_bytes = Gauge::default();
        registry.register(
            "store_size_bytes",
            "Bytes the store takes on disk (-1: the store cannot tell, e.g. ClickHouse)",
            store_bytes.clone(),
        );
        Metrics {
            registry,
            requests,
            writes,
            batch_writes,
            queries,
            resident_bytes,
            commit_seconds,
            dedupe_hits,
            writer_queue,
            store_bytes,
        }
    }
}

impl Metrics {
    /// Each write's outcome.
    pub fn writes(&self, protocol: &str, outcomes: impl IntoIterator<Item = (&'static str, String)>) {
        for (outcome, reason) in outcomes {
            if outcome == "duplicate" {
                self.dedupe_hits.get_or_create(&ProtocolLabels { protocol: protocol.to_string() }).inc();
            }
            let labels = WriteLabels { protocol: protocol.to_string(), outcome: outcome.to_string(), reason };
            self.writes.get_or_create(&labels).inc();
        }
    }

    /// How many writes one batch request carried.
    pub fn batch(&self, items: usize) {
        self.batch_writes.observe(items as f64);
    }

    pub fn query(&self, kind: &str, started: Instant) {
        self.queries.get_or_create(&QueryLabels { kind: kind.to_string() }).observe(started.elapsed().as_secs_f64());
    }

    pub fn commit(&self, started: Instant) {
        self.commit_seconds.observe(started.elapsed().as_secs_f64());
    }

    fn render(&self, store: troupe_store::StoreStats) -> Result<String, std::fmt::Error> {
        self.resident_bytes.set(resident_bytes().unwrap_or(0));
        let gauge = |v: Option<u64>| v.map_or(-1, |v| i64::try_from(v).unwrap_or(i64::MAX));
        self.writer_queue.set(gauge(store.writer_queue));
        self.store_bytes.set(gauge(store.size_bytes));
        let mut out = String::new();
        encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// Resident memory from `/proc/self/statm` (Linux; `None` elsewhere).
fn resident_bytes() -> Option<i64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: i64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// Counts every answered request by its route pattern (unmatched paths as `unmatched`).
pub async fn count_requests(State(app): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_string();
    let method = request.method().to_string();
    let response = next.run(request).await;
    let labels = RequestLabels { route, method, status: response.status().as_u16() };
    app.metrics.requests.get_or_create(&labels).inc();
    response
}

/// `GET /metrics`.
pub async fn scrape(State(app): State<Arc<AppState>>, headers: HeaderMap, addr: ClientAddr) -> Response {
    if let Err(e) = allowed(&app, &headers, &addr) {
        return e.into_response();
    }
    match app.metrics.render(app.store.stats()) {
        Ok(text) => {
            let mut response = text.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            response
        }
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "the metrics could not be written").into_response(),
    }
}

/// With a metrics key: its bearer. Without: this machine only (an in-process request has no
/// address and is this machine's).
fn allowed(app: &AppState, headers: &HeaderMap, addr: &ClientAddr) -> Result<(), ApiError> {
    match &app.settings.metrics_key {
        Some(key) => {
            let sent = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or_default();
            // Compared as hashes, so the comparison takes the same time whatever was sent.
            match hash_secret(sent) == hash_secret(key) {
                true => Ok(()),
                false => Err(ApiError::Unauthorized("/metrics needs 'Authorization: Bearer <metrics key>'".into())),
            }
        }
        None => match addr.0 {
            Some(ip) if !ip.is_loopback() => Err(ApiError::Forbidden(
                "/metrics answers this machine only; start troupe with --metrics-key to scrape it from elsewhere"
                    .into(),
            )),
            _ => Ok(()),
        },
    }
}
