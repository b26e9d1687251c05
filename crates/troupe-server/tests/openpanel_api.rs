//! The OpenPanel side of `POST /track` over HTTP, with the requests the real SDK sent.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{app, SITE};
use serde_json::{json, Value};

fn captured() -> Vec<Value> {
    include_str!("../../troupe-ingest/fixtures/openpanel-sdk-1.3.1.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["body"].clone())
        .collect()
}

async fn post(app: &common::App, body: &Value, client_id: Option<&str>) -> common::Reply {
    let mut request = Request::post("/track").header("content-type", "application/json").header("user-agent", "node");
    if let Some(id) = client_id {
        request = request.header("openpanel-client-id", id).header("openpanel-sdk-name", "node");
    }
    app.send(request.body(Body::from(body.to_string())).expect("request")).await
}

#[tokio::test]
async fn the_captured_session_lands_and_answers_device_and_session() {
    let app = app().await;
    for body in captured() {
        let r = post(&app, &body, Some(SITE)).await;
        assert_eq!(r.status, StatusCode::OK, "{body}: {}", r.body);
        let expected = if body.pointer("/payload/profileId").is_some() { "user_42" } else { "device-" };
        assert!(r.body["deviceId"].as_str().is_some_and(|d| d.starts_with(expected)), "{}", r.body);
        assert!(r.body["sessionId"].is_string());
    }
    let person = app.get("/api/projects/default/persons/user_42").await;
    assert_eq!(person.body["group_memberships"], json!({"company": ["acme_inc"]}), "globex has no group entity yet");
    assert_eq!(person.body["properties"]["logins"], json!(1));
    let group = app.get("/api/projects/default/groups/company/acme_inc").await;
    assert_eq!(group.body["name"], json!("Acme Inc"));
    assert_eq!(group.body["properties"], json!({"plan": "enterprise", "employees": 300, "industry": "manufacturing"}));
    let events = app.get("/api/projects/default/events").await;
    assert_eq!(events.body["results"][0]["untyped_groups"], json!(["acme_inc", "globex"]));
}

#[tokio::test]
async fn anonymous_visitors_get_a_stable_device_id() {
    let app = app().await;
    let body = json!({"type": "track", "payload": {"name": "Viewed", "properties": {"n": 1}}});
    let first = post(&app, &body, Some(SITE)).await;
    let again =
        post(&app, &json!({"type": "track", "payload": {"name": "Viewed", "properties": {"n": 2}}}), Some(SITE)).await;
    assert!(first.body["deviceId"].as_str().is_some_and(|d| d.starts_with("device-")));
    assert_eq!(first.body["deviceId"], again.body["deviceId"]);
}

#[tokio::test]
async fn errors_are_json_and_unknown_clients_are_401() {
    let app = app().await;
    let body = json!({"type": "track", "payload": {"name": "A", "profileId": "u"}});
    assert_eq!(post(&app, &body, Some("nope")).await.status, StatusCode::UNAUTHORIZED);
    let r = post(&app, &json!({"type": "track", "payload": {"profileId": "u"}}), Some(SITE)).await;
    assert_eq!((r.status, r.body["field"].clone()), (StatusCode::BAD_REQUEST, json!("name")));
    let r = post(&app, &json!({"type": "track", "payload": {"name": "A"}}), None).await;
    assert_eq!(
        r.status,
        StatusCode::UNAUTHORIZED,
        "a {{type, payload}} body without the header is OpenPanel's, unauthenticated"
    );
}

#[tokio::test]
async fn mixpanel_forms_on_track_still_reach_mixpanel() {
    let app = app().await;
    let data = json!({"event": "A", "properties": {"token": SITE, "distinct_id": "u"}}).to_string();
    let body = serde_urlencoded::to_string([("data", data.as_str())]).expect("form");
    let request = Request::post("/track")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(body))
        .expect("request");
    let r = app.send(request).await;
    assert_eq!(r.body, json!({"status": 1, "error": null}));
}
