//! The PostHog capture routes over HTTP, with the batches the real clients sent.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{app, gzip};
use serde_json::{json, Value};

/// The captured batch, re-keyed to the test project.
fn captured(file: &str) -> Value {
    let text = match file {
        "python" => include_str!("../../troupe-ingest/fixtures/posthog-python-7.91.1.jsonl"),
        _ => include_str!("../../troupe-ingest/fixtures/posthog-node-5.70.0.jsonl"),
    };
    let mut body: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["body"].clone())
        .next()
        .unwrap_or_default();
    body["api_key"] = json!(common::SITE);
    body
}

async fn post(app: &common::App, path: &str, body: Vec<u8>, encoding: Option<&str>) -> common::Reply {
    let mut request = Request::post(path).header("content-type", "application/json");
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    app.send(request.body(Body::from(body)).expect("request")).await
}

#[tokio::test]
async fn the_python_batch_lands_with_group_attribution_and_no_invented_person() {
    let app = app().await;
    let r = post(&app, "/batch/", captured("python").to_string().into_bytes(), None).await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::OK, json!({"status": 1})));
    let events = app.get("/api/projects/default/events").await;
    let names: Vec<_> = events.body["results"].as_array().into_iter().flatten().map(|e| e["event"].clone()).collect();
    assert_eq!(
        names,
        vec![json!("Report Exported"), json!("Viewed Dashboard"), json!("Signed In")],
        "special events are commands"
    );
    assert_eq!(events.body["results"][0]["groups"], json!({"company": ["acme_inc"]}));
    let group = app.get("/api/projects/default/groups/company/acme_inc").await;
    assert_eq!(
        group.body["properties"],
        json!({"name": "Acme Inc", "plan": "enterprise", "employees": 300, "industry": "manufacturing"})
    );
    let person = app.get("/api/projects/default/persons/user_42").await;
    assert_eq!(
        person.body["properties"],
        json!({"email": "ada@example.com", "name": "Ada Lovelace", "plan": "pro", "signup_date": "2024-01-02"})
    );
    assert_eq!(person.body["distinct_ids"], json!(["user_42", "anon_abc"]));
    assert_eq!(
        app.get("/api/projects/default/persons").await.body["total"],
        json!(1),
        "group_identify's random distinct id is no person"
    );
}

#[tokio::test]
async fn the_node_batch_is_gzip_and_its_group_only_id_creates_no_person() {
    let app = app().await;
    let body = captured("node").to_string();
    let r = post(&app, "/batch/", gzip(body.as_bytes()), Some("gzip")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(app.get("/api/projects/default/persons").await.body["total"], json!(1));
    assert_eq!(app.get("/api/projects/default/persons/$company_acme_inc").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_resent_batch_is_stored_once() {
    let app = app().await;
    for _ in 0..4 {
        assert_eq!(
            post(&app, "/batch/", captured("python").to_string().into_bytes(), None).await.status,
            StatusCode::OK
        );
    }
    let events = app.get("/api/projects/default/events").await;
    assert_eq!(events.body["results"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn posthog_js_gzip_and_single_event_routes_work() {
    let app = app().await;
    let js = json!([{"event": "$pageview", "properties": {"token": common::SITE, "distinct_id": "anon-1", "$current_url": "https://x.io"}}]);
    let r = post(&app, "/e/?compression=gzip-js", gzip(js.to_string().as_bytes()), None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let single = json!({"api_key": common::SITE, "event": "Clicked", "distinct_id": "anon-1", "uuid": "0199-x"});
    assert_eq!(post(&app, "/capture/", single.to_string().into_bytes(), None).await.status, StatusCode::OK);
    assert_eq!(post(&app, "/i/v0/e", single.to_string().into_bytes(), None).await.status, StatusCode::OK);
    let events = app.get("/api/projects/default/events").await;
    assert_eq!(events.body["results"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn errors_come_in_posthogs_shape_and_keep_valid_events() {
    let app = app().await;
    let r = post(&app, "/batch/", json!({"api_key": "phc_nope", "batch": []}).to_string().into_bytes(), None).await;
    assert_eq!((r.status, r.body["type"].clone()), (StatusCode::UNAUTHORIZED, json!("authentication_error")));
    let r = post(&app, "/batch/", b"{\"api_key\": ".to_vec(), None).await;
    assert_eq!(
        (r.status, r.body["type"].clone(), r.body["code"].clone()),
        (StatusCode::BAD_REQUEST, json!("validation_error"), json!("invalid_json"))
    );
    let r =
        post(&app, "/batch/", json!({"batch": [{"event": "x", "distinct_id": "u"}]}).to_string().into_bytes(), None)
            .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "no key at all");
    let mixed = json!({"api_key": common::SITE, "batch": [{"event": "kept", "distinct_id": "u"}, {"event": "bad"}]});
    let r = post(&app, "/batch/", mixed.to_string().into_bytes(), None).await;
    assert_eq!((r.status, r.body["attr"].clone()), (StatusCode::BAD_REQUEST, json!("distinct_id")));
    assert_eq!(r.body["rejected"][0]["index"], json!(1));
    assert!(r.body["detail"].as_str().unwrap_or_default().contains("the other 1 were stored"));
    let events = app.get("/api/projects/default/events").await;
    assert_eq!(events.body["results"][0]["event"], json!("kept"));
}
