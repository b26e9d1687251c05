//! A write that panics in the writer is answered 500 with a request id and no detail; the next
//! write is stored and `/readyz` stays ready. A test binary of its own: the fail point is
//! process-wide.

mod common;

use axum::http::StatusCode;
use common::app;
use serde_json::json;

#[tokio::test]
async fn a_panicking_write_is_a_500_with_a_request_id_and_ingestion_goes_on() {
    let scenario = fail::FailScenario::setup();
    let app = app().await;
    fail::cfg("writer-apply", "1*panic(injected)").expect("fail point");
    let r = app.post("/api/events", json!({"event_name": "x", "user_id": "u"})).await;
    fail::remove("writer-apply");
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR, "{}", r.body);
    assert_eq!(r.body["code"], json!("internal"));
    assert_eq!(r.body["request_id"].as_str().map(str::len), Some(16), "{}", r.body);
    assert!(!r.body.to_string().contains("injected"), "the panic's text stays in the log: {}", r.body);

    assert_eq!(app.get_as("/readyz", None).await.status, StatusCode::OK);
    let r = app.post("/api/events", json!({"event_name": "y", "user_id": "u"})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let events = app.get("/api/projects/default/events").await;
    assert_eq!(events.body["results"].as_array().map(Vec::len), Some(1));
    scenario.teardown();
}
