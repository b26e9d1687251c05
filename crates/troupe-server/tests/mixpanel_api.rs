//! The Mixpanel routes over HTTP, with what the real mixpanel-python sent.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use common::{app, SECRET, SITE};
use serde_json::{json, Value};

/// (path, data) of each captured request, re-keyed to the test project.
fn captured(file: &str) -> Vec<(String, String)> {
    let text = match file {
        "plain" => include_str!("../../troupe-ingest/fixtures/mixpanel-python-5.4.1.jsonl"),
        _ => include_str!("../../troupe-ingest/fixtures/mixpanel-python-5.4.1-buffered.jsonl"),
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| {
            let data = r["data"].as_str().unwrap_or_default().replace("mp_project_token_123", SITE);
            (r["path"].as_str().unwrap_or_default().to_string(), data)
        })
        .collect()
}

async fn post_form(app: &common::App, path: &str, data: &str, headers: &[(&str, String)]) -> common::Reply {
    let body = serde_urlencoded::to_string([("data", data), ("verbose", "1"), ("ip", "0")]).expect("form");
    let mut request = Request::post(path).header("content-type", "application/x-www-form-urlencoded");
    for (k, v) in headers {
        request = request.header(*k, v);
    }
    app.send(request.body(Body::from(body)).expect("request")).await
}

#[tokio::test]
async fn plain_and_buffered_sessions_land_the_same() {
    for file in ["plain", "buffered"] {
        let app = app().await;
        for (path, data) in captured(file) {
            let r = post_form(&app, &path, &data, &[]).await;
            assert_eq!(
                (r.status, r.body.clone()),
                (StatusCode::OK, json!({"status": 1, "error": null})),
                "{file} {path}"
            );
        }
        let person = app.get("/api/projects/default/persons/user_42").await;
        assert_eq!(person.body["group_memberships"], json!({"company": ["acme_inc"]}), "{file}");
        let group = app.get("/api/projects/default/groups/company/acme_inc").await;
        assert_eq!(group.body["properties"]["features"], json!(["sso", "audit"]), "{file}");
        let events = app.get("/api/projects/default/events").await;
        assert_eq!(events.body["results"][0]["groups"], json!({"company": ["acme_inc"]}), "{file}");
    }
}

#[tokio::test]
async fn errors_are_status_0_json() {
    let app = app().await;
    let r =
        post_form(&app, "/track", r#"{"event": "A", "properties": {"token": "nope", "distinct_id": "u"}}"#, &[]).await;
    assert_eq!((r.status, r.body["status"].clone()), (StatusCode::UNAUTHORIZED, json!(0)));
    let r = post_form(&app, "/track", "{not json", &[]).await;
    assert_eq!(
        (r.status, r.body["status"].clone(), r.body["field"].clone()),
        (StatusCode::BAD_REQUEST, json!(0), json!("data"))
    );
    let r =
        post_form(&app, "/engage", &json!({"$token": SITE, "$distinct_id": "u", "$add": {"n": "x"}}).to_string(), &[])
            .await;
    assert_eq!((r.status, r.body["status"].clone()), (StatusCode::BAD_REQUEST, json!(0)));
    assert!(r.body["error"].as_str().is_some_and(|e| e.contains("$add")));
}

#[tokio::test]
async fn import_needs_the_projects_secret() {
    let app = app().await;
    let data = json!([{"event": "Old", "properties": {"token": SITE, "distinct_id": "u", "time": 1_700_000_000, "$insert_id": "i1"}}]).to_string();
    assert_eq!(post_form(&app, "/import", &data, &[]).await.status, StatusCode::UNAUTHORIZED);
    let basic = |user: &str| format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:")));
    assert_eq!(
        post_form(&app, "/import", &data, &[("authorization", basic("trs_wrong"))]).await.status,
        StatusCode::UNAUTHORIZED
    );
    let r = post_form(&app, "/import", &data, &[("authorization", basic(SECRET))]).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let events = app.get("/api/projects/default/events").await;
    assert_eq!(events.body["results"][0]["timestamp"], json!("2023-11-14T22:13:20Z"));
}
