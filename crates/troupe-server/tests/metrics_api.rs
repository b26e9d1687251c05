//! `/metrics`, read as Prometheus reads it: counters that move as a test ingests and queries, and
//! who may scrape.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{app, app_with, App, SECRET};
use http_body_util::BodyExt;
use serde_json::json;
use tower::ServiceExt;

async fn scrape(app: &App, bearer: Option<&str>) -> (StatusCode, String) {
    let mut request = Request::get("/metrics");
    if let Some(key) = bearer {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    let response = app.router.clone().oneshot(request.body(Body::empty()).expect("request")).await.expect("answer");
    let status = response.status();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&bytes).to_string())
}

/// The samples of a scrape, parsed by a Prometheus text-format parser.
fn parse(text: &str) -> prometheus_parse::Scrape {
    let lines = text.lines().map(|l| Ok(l.to_string()));
    prometheus_parse::Scrape::parse(lines).expect("Prometheus text format")
}

/// The value of `name` with these labels (0 when absent).
fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> f64 {
    scrape
        .samples
        .iter()
        .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum()
}

#[tokio::test]
async fn counters_move_as_writes_and_questions_come_in() {
    let app = app().await;
    let before = parse(&scrape(&app, None).await.1);
    assert_eq!(value(&before, "troupe_writes_total", &[("protocol", "native")]), 0.0);

    // A native batch: two valid events and one without a name; sent twice.
    let batch = json!({"items": [
        {"type": "events", "event_name": "Signed In", "user_id": "ada", "event_id": "e1"},
        {"type": "events", "event_name": "Signed In", "user_id": "bob", "event_id": "e2"},
        {"type": "events", "user_id": "cy"},
    ]});
    for _ in 0..2 {
        app.post("/api/sdk/batch", batch.clone()).await;
    }
    // PostHog: one event.
    let posthog = json!({"api_key": common::SITE, "batch": [{"event": "Chart Created", "distinct_id": "ada", "uuid": "0190b2a4-0000-7000-8000-000000000001"}]});
    app.post("/batch/", posthog).await;
    // Two questions.
    for _ in 0..2 {
        let q = json!({"kind": "trends", "series": [{"event": "Signed In"}]});
        let r = app
            .send(
                Request::post("/api/projects/default/query")
                    .header("authorization", format!("Bearer {SECRET}"))
                    .header("content-type", "application/json")
                    .body(Body::from(q.to_string()))
                    .expect("request"),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }

    let (status, text) = scrape(&app, None).await;
    assert_eq!(status, StatusCode::OK);
    let after = parse(&text);
    let native = |outcome: &str| value(&after, "troupe_writes_total", &[("protocol", "native"), ("outcome", outcome)]);
    assert_eq!(native("stored"), 2.0, "{text}");
    assert_eq!(native("duplicate"), 2.0, "the resent batch");
    assert_eq!(native("refused"), 2.0, "the nameless event, twice");
    assert_eq!(
        value(
            &after,
            "troupe_writes_total",
            &[("protocol", "native"), ("outcome", "refused"), ("reason", "missing_field")]
        ),
        2.0
    );
    assert_eq!(value(&after, "troupe_writes_total", &[("protocol", "posthog"), ("outcome", "stored")]), 1.0);
    assert_eq!(value(&after, "troupe_batch_writes_count", &[]), 3.0, "two native batches and one PostHog");
    assert_eq!(value(&after, "troupe_batch_writes_sum", &[]), 3.0 + 3.0 + 1.0);
    assert_eq!(value(&after, "troupe_query_seconds_count", &[("kind", "trends")]), 2.0);
    assert_eq!(
        value(
            &after,
            "troupe_http_requests_total",
            &[("route", "/api/sdk/batch"), ("method", "POST"), ("status", "200")]
        ),
        2.0,
        "the native batch answers 200 and lists its refused items"
    );
    // (prometheus-parse does not read braces inside a label value: this one is read as text.)
    assert!(
        text.contains(
            r#"troupe_http_requests_total{route="/api/projects/{project}/query",method="POST",status="200"} 2"#
        ),
        "{text}"
    );
    assert!(value(&after, "troupe_resident_memory_bytes", &[]) > 1e6);
    // Dedupe hits (the resent batch), one commit per batch that reached the store, the writer's
    // queue (empty now), and the store's size (-1: this test's store is in memory).
    assert_eq!(value(&after, "troupe_dedupe_hits_total", &[("protocol", "native")]), 2.0, "{text}");
    assert_eq!(value(&after, "troupe_store_commit_seconds_count", &[]), 3.0, "{text}");
    assert!(value(&after, "troupe_store_commit_seconds_sum", &[]) > 0.0);
    assert_eq!(value(&after, "troupe_writer_queue_depth", &[]), 0.0);
    assert_eq!(value(&after, "troupe_store_size_bytes", &[]), -1.0);
}

#[tokio::test]
async fn the_embedded_store_reports_its_size_on_disk() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = troupe_duckdb::EmbeddedConfig { data_dir: Some(dir.path().to_path_buf()), ..Default::default() };
    let app = common::app_on(config, troupe_server::ServerSettings::default()).await;
    let before = value(&parse(&scrape(&app, None).await.1), "troupe_store_size_bytes", &[]);
    assert!(before > 0.0);
    let events: Vec<_> = (0..2000).map(|i| json!({"event_name": "Sized", "user_id": format!("u{i}"), "custom_properties": {"pad": "y".repeat(300)}})).collect();
    assert_eq!(app.post("/api/events/bulk", json!({"events": events})).await.status, StatusCode::OK);
    let after = value(&parse(&scrape(&app, None).await.1), "troupe_store_size_bytes", &[]);
    assert!(after > before, "{before} -> {after}");
}

#[tokio::test]
async fn with_a_metrics_key_only_its_bearer_may_scrape() {
    let settings = troupe_server::ServerSettings { metrics_key: Some("mk_scrape".into()), ..Default::default() };
    let app = app_with(settings).await;
    assert_eq!(scrape(&app, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(scrape(&app, Some("wrong")).await.0, StatusCode::UNAUTHORIZED);
    let (status, text) = scrape(&app, Some("mk_scrape")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("troupe_http_requests_total"), "{text}");
}
