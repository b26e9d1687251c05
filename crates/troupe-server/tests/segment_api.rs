//! The Segment routes over HTTP, with the batches the real clients sent.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use common::{app, SITE};
use serde_json::{json, Value};

fn captured(file: &str) -> Value {
    let text = match file {
        "python" => include_str!("../../troupe-ingest/fixtures/segment-python-2.4.0.jsonl"),
        _ => include_str!("../../troupe-ingest/fixtures/segment-node-3.1.0.jsonl"),
    };
    let mut body: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["body"].clone())
        .next()
        .unwrap_or_default();
    if body.get("writeKey").is_some() {
        body["writeKey"] = json!(SITE);
    }
    body
}

async fn post(app: &common::App, path: &str, body: &Value, basic_user: Option<&str>) -> common::Reply {
    let mut request = Request::post(path).header("content-type", "application/json");
    if let Some(user) = basic_user {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:"));
        request = request.header("authorization", format!("Basic {token}"));
    }
    app.send(request.body(Body::from(body.to_string())).expect("request")).await
}

#[tokio::test]
async fn both_clients_batches_land_the_same_way() {
    for (file, auth) in [("python", None), ("node", Some(SITE))] {
        let app = app().await;
        let r = post(&app, "/v1/batch", &captured(file), auth).await;
        assert_eq!((r.status, r.body.clone()), (StatusCode::OK, json!({"success": true})), "{file}");
        let person = app.get("/api/projects/default/persons/user_42").await;
        assert_eq!(person.body["group_memberships"], json!({"company": ["acme_inc"]}), "{file}");
        let group = app.get("/api/projects/default/groups/company/acme_inc").await;
        assert_eq!(group.body["name"], json!("Acme Inc"), "{file}");
        let events = app.get("/api/projects/default/events").await;
        let grouped = events.body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|e| e["groups"] == json!({"company": ["acme_inc"]}))
            .count();
        assert_eq!(grouped, 1, "{file}: only the event after the group call carries the group");
    }
}

#[tokio::test]
async fn single_routes_and_a_resent_batch() {
    let app = app().await;
    let r =
        post(&app, "/v1/track", &json!({"userId": "u", "event": "A", "messageId": "m1", "writeKey": SITE}), None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = post(&app, "/v1/track", &json!({"userId": "u", "event": "A", "messageId": "m1"}), Some(SITE)).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.get("/api/projects/default/events").await.body["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(post(&app, "/v1/nope", &json!({}), Some(SITE)).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn errors_come_in_segments_shape_and_keep_valid_messages() {
    let app = app().await;
    let r = post(&app, "/v1/batch", &json!({"batch": []}), Some("wrong")).await;
    assert_eq!((r.status, r.body["success"].clone()), (StatusCode::UNAUTHORIZED, json!(false)));
    let r = post(&app, "/v1/batch", &json!({"batch": []}), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "no write key at all");
    let mixed =
        json!({"batch": [{"type": "track", "userId": "u", "event": "kept"}, {"type": "track", "event": "no user"}]});
    let r = post(&app, "/v1/batch", &mixed, Some(SITE)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        (r.body["rejected"][0]["index"].clone(), r.body["rejected"][0]["field"].clone()),
        (json!(1), json!("userId"))
    );
    assert_eq!(app.get("/api/projects/default/events").await.body["results"][0]["event"], json!("kept"));
}

/// The context of Segment pages lands as event properties a question filters and breaks down
/// by: three pages from two libraries, two on `/pricing`; the trend of `$pageview` filtered on
/// `$pathname` and broken down by `$lib` counts them per library.
#[tokio::test]
async fn a_pages_context_is_filtered_and_broken_down_by() {
    let app = app().await;
    let page = |id: &str, path: &str, library: &str| {
        json!({"type": "page", "userId": "u1", "messageId": id, "timestamp": "2026-11-02T10:00:00Z",
               "context": {"page": {"url": format!("https://app.example.com{path}"), "path": path},
                           "library": {"name": library, "version": "1.0"}}})
    };
    let batch = json!({"batch": [
        page("m1", "/pricing", "analytics.js"), page("m2", "/pricing", "analytics-python"), page("m3", "/docs", "analytics.js")
    ]});
    assert_eq!(post(&app, "/v1/batch", &batch, Some(SITE)).await.status, StatusCode::OK);
    let question = json!({
        "kind": "trends", "interval": "day", "date_range": {"from": "2026-11-02", "to": "2026-11-02"},
        "series": [{"event": "$pageview"}],
        "filters": {"type": "event", "key": "$pathname", "operator": "equals", "value": "/pricing"},
        "breakdown": {"type": "event", "key": "$lib"}
    });
    let request = Request::post("/api/projects/default/query")
        .header("authorization", format!("Bearer {}", common::SECRET))
        .header("content-type", "application/json")
        .body(Body::from(question.to_string()))
        .expect("request");
    let r = app.send(request).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let mut lines: Vec<(String, f64)> = r.body["series"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            (s["breakdown_value"].as_str().unwrap_or("").to_string(), s["aggregated_value"].as_f64().unwrap_or(-1.0))
        })
        .collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(lines, [("analytics-python".to_string(), 1.0), ("analytics.js".to_string(), 1.0)], "{:?}", r.body);
}

/// A user joins workspace acme and tracks, then switches to globex and tracks.
async fn switch_and_track(app: &common::App, user: &str) {
    for (workspace, event) in [("acme", "Report Viewed"), ("globex", "Report Shared")] {
        let group = json!({"type": "group", "userId": user, "groupId": workspace, "traits": {"name": workspace}});
        let track = json!({"type": "track", "userId": user, "event": event});
        let r = post(app, "/v1/batch", &json!({"batch": [group, track]}), Some(SITE)).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    }
}

/// The Datafly document calls `group()` each time a multi-account user switches workspace: by
/// default (replace) the events after a switch belong to the new workspace only; a project set
/// to `add` keeps the user in every group they were put in.
#[tokio::test]
async fn a_workspace_switch_replaces_the_group_unless_the_project_adds() {
    let app = app().await;
    let settings = "/api/projects/default/settings/ingestion";
    assert_eq!(app.get(settings).await.body, json!({"segment_group": "replace"}));
    switch_and_track(&app, "ada").await;
    let ada = app.get("/api/projects/default/persons/ada").await;
    assert_eq!(ada.body["group_memberships"], json!({"company": ["globex"]}));
    let shared = app.get("/api/projects/default/events?event=Report%20Shared").await;
    assert_eq!(shared.body["results"][0]["groups"], json!({"company": ["globex"]}), "{:?}", shared.body);

    let r = app.put(settings, json!({"segment_group": "add"})).await;
    assert_eq!((r.status, r.body), (StatusCode::OK, json!({"segment_group": "add"})));
    switch_and_track(&app, "bob").await;
    let bob = app.get("/api/projects/default/persons/bob").await;
    assert_eq!(bob.body["group_memberships"], json!({"company": ["acme", "globex"]}));

    for bad in [json!({"segment_group": "merge"}), json!({"segment_groups": "add"})] {
        let r = app.put(settings, bad.clone()).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
        assert!(r.body.to_string().contains("segment_group"), "{bad}: the error names the field: {:?}", r.body);
    }
    assert_eq!(app.get(settings).await.body, json!({"segment_group": "add"}), "a refused PUT changes nothing");
    let r = app.get_as(settings, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "settings need the secret key");
}
