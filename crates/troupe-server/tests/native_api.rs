//! The native (Trodo) ingestion routes over HTTP: success answers, errors, batches, gzip.

mod common;

use axum::http::StatusCode;
use common::{app, gzip, SITE};
use serde_json::json;

fn event(name: &str, user: &str) -> serde_json::Value {
    json!({"event_type": "custom", "event_name": name, "event_category": "custom", "session_id": format!("server:{user}"),
           "user_id": user, "custom_properties": {"k": 1}, "page_data": null})
}

#[tokio::test]
async fn an_event_is_stored_and_attributed_through_membership() {
    let app = app().await;
    let r = app
        .post(
            "/api/sdk/groups/set_group",
            json!({"siteId": SITE, "userId": "u1", "groupKey": "company", "groupId": "acme"}),
        )
        .await;
    assert_eq!((r.status, r.body["success"].clone()), (StatusCode::OK, json!(true)));
    let r = app.post("/api/events", event("Signed In", "u1")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["uuid"].is_string());
    let events = app.get("/api/projects/default/events").await;
    assert_eq!(events.body["results"][0]["groups"], json!({"company": ["acme"]}));
    assert_eq!(events.body["results"][0]["properties"]["$session_id"], json!("server:u1"));
}

#[tokio::test]
async fn identify_answers_the_distinct_id_and_group_memberships() {
    let app = app().await;
    app.post("/api/sdk/groups/add_group", json!({"userId": "ada", "groupKey": "team", "groupId": "t1"})).await;
    let r = app
        .post(
            "/api/sdk/identify",
            json!({"siteId": SITE, "sessionId": "s", "userId": "anon-1", "distinctId": "anon-1", "identifyId": "ada"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["distinctId"], json!("ada"));
    assert_eq!(r.body["group_memberships"], json!({"team": ["t1"]}));
}

#[tokio::test]
async fn unknown_or_missing_site_ids_are_401_with_a_json_error() {
    let app = app().await;
    let r = app.post_raw("/api/events", "nope", event("A", "u").to_string().into_bytes(), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body["error"].as_str().unwrap_or_default().contains("unknown site id 'nope'"));
    let r = app.post_raw("/api/events", "", event("A", "u").to_string().into_bytes(), None).await;
    assert_eq!((r.status, r.body["code"].clone()), (StatusCode::UNAUTHORIZED, json!("unauthorized")));
}

#[tokio::test]
async fn the_site_id_may_come_from_the_body() {
    let app = app().await;
    let r = app
        .post_raw(
            "/api/sdk/people/set",
            "",
            json!({"siteId": SITE, "userId": "u", "properties": {"a": 1}}).to_string().into_bytes(),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field_and_keeps_earlier_data() {
    let app = app().await;
    app.post("/api/events", event("Kept", "u1")).await;
    let cases = [
        (b"{not json".to_vec(), "/api/events", "invalid_json", None),
        (json!({"user_id": "u"}).to_string().into_bytes(), "/api/events", "missing_field", Some("event_name")),
        (event("A", &"u".repeat(201)).to_string().into_bytes(), "/api/events", "too_long", Some("user_id")),
        (
            json!({"event_name": "A", "user_id": "u", "custom_properties": {"blob": "x".repeat(33 * 1024)}})
                .to_string()
                .into_bytes(),
            "/api/events",
            "too_large",
            Some("custom_properties"),
        ),
        (
            json!({"userId": "u", "groupKey": "company"}).to_string().into_bytes(),
            "/api/sdk/groups/set_group",
            "missing_field",
            Some("groupId"),
        ),
        (
            json!({"userId": "u", "groupKey": "c", "groupId": ["a", 7.5, {"x": 1}]}).to_string().into_bytes(),
            "/api/sdk/groups/set_group",
            "invalid_field",
            Some("groupId"),
        ),
    ];
    for (body, path, code, field) in cases {
        let r = app.post_raw(path, SITE, body, None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path} {code}: {}", r.body);
        assert_eq!(r.body["code"], json!(code), "{}", r.body);
        if let Some(field) = field {
            assert_eq!(r.body["field"], json!(field), "{}", r.body);
        }
        assert!(r.body["error"].as_str().is_some_and(|e| !e.is_empty()));
    }
    let events = app.get("/api/projects/default/events").await;
    assert_eq!(events.body["results"].as_array().map(Vec::len), Some(1), "the accepted event is still there");
}

#[tokio::test]
async fn a_rule_error_at_apply_time_is_a_400_and_changes_nothing() {
    let app = app().await;
    app.post(
        "/api/sdk/groups/profile/set",
        json!({"groupKey": "company", "groupId": "acme", "properties": {"plan": "pro"}}),
    )
    .await;
    let r = app
        .post(
            "/api/sdk/groups/profile/increment",
            json!({"groupKey": "company", "groupId": "acme", "property": "plan", "value": 1}),
        )
        .await;
    assert_eq!(
        (r.status, r.body["code"].clone(), r.body["field"].clone()),
        (StatusCode::BAD_REQUEST, json!("not_a_number"), json!("plan"))
    );
    let g = app.get("/api/projects/default/groups/company/acme").await;
    assert_eq!(g.body["properties"], json!({"plan": "pro"}));
}

#[tokio::test]
async fn the_group_type_limit_is_a_clear_error() {
    let app = app().await;
    for i in 0..10 {
        let r = app
            .post("/api/sdk/groups/add_group", json!({"userId": "u", "groupKey": format!("type{i}"), "groupId": "g"}))
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    let r =
        app.post("/api/sdk/groups/add_group", json!({"userId": "u", "groupKey": "one_too_many", "groupId": "g"})).await;
    assert_eq!((r.status, r.body["code"].clone()), (StatusCode::BAD_REQUEST, json!("group_type_limit")));
    assert!(r.body["error"].as_str().unwrap_or_default().contains("one_too_many"));
}

#[tokio::test]
async fn bulk_events_keep_valid_items_and_report_rejected_ones() {
    let app = app().await;
    let r = app
        .post("/api/events/bulk", json!({"events": [event("A", "u1"), {"event_name": "no user"}, event("B", "u2")]}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["accepted"], json!(2));
    assert_eq!(r.body["rejected"][0]["index"], json!(1));
    assert_eq!(r.body["rejected"][0]["field"], json!("user_id"));
    let events = app.get("/api/projects/default/events").await;
    assert_eq!(events.body["results"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn the_batch_route_takes_gzip_bodies_of_typed_items() {
    let app = app().await;
    let mut items = vec![json!({"type": "groups/set_group", "userId": "u1", "groupKey": "company", "groupId": "acme"})];
    for i in 0..200 {
        items.push(json!({"type": "events", "event_name": "Viewed", "user_id": "u1", "event_id": format!("e{i}"), "custom_properties": {"i": i}}));
    }
    items.push(json!({"run_id": "r1", "spans": []}));
    let body = json!({"items": items}).to_string();
    assert!(body.len() > 8 * 1024, "the real client gzips bodies over 8 KB");
    let r = app.post_raw("/api/sdk/batch", SITE, gzip(body.as_bytes()), Some("gzip")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        (r.body["accepted"].clone(), r.body["rejected"][0]["index"].clone()),
        (json!(201), json!(201)),
        "the agent run item is the last, index 201"
    );
    // The same batch again: every event is a duplicate.
    let r = app.post_raw("/api/sdk/batch", SITE, gzip(body.as_bytes()), Some("gzip")).await;
    assert_eq!(r.body["duplicates"], json!(200));
    let events = app.get("/api/projects/default/events?limit=1000").await;
    assert_eq!(events.body["results"].as_array().map(Vec::len), Some(200));
    assert_eq!(events.body["results"][0]["groups"], json!({"company": ["acme"]}));
}

#[tokio::test]
async fn a_retried_id_less_event_is_stored_once() {
    let app = app().await;
    for _ in 0..3 {
        assert_eq!(app.post("/api/events", event("Paid", "u1")).await.status, StatusCode::OK);
    }
    let events = app.get("/api/projects/default/events").await;
    assert_eq!(events.body["results"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn out_of_scope_and_unknown_routes_are_404_json() {
    let app = app().await;
    let r = app.post("/api/sdk/runs/ingest", json!({})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.body["error"].as_str().unwrap_or_default().contains("not part of troupe"));
    let r = app.post("/api/sdk/people/explode", json!({})).await;
    assert_eq!((r.status, r.body["code"].clone()), (StatusCode::NOT_FOUND, json!("not_found")));
    let r = app.get("/nowhere").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn session_confirm_and_reset_are_accepted_without_effect() {
    let app = app().await;
    let r = app
        .post("/api/sdk/track", json!({"sessionData": {"session_id": "server:u", "user_id": "u", "distinct_id": "u"}}))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = app.post("/api/sdk/reset", json!({"siteId": SITE, "userId": "u", "distinctId": "u"})).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.get("/api/projects/default/persons").await.body["total"], json!(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_profile_ops_on_one_entity_lose_no_update() {
    let app = std::sync::Arc::new(app().await);
    let mut tasks = Vec::new();
    for i in 0..100 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            // 100 distinct increments: each with its own request id (without one, identical
            // increments within the retry window are taken as resends of one).
            let inc = json!({"groupKey": "company", "groupId": "acme", "property": "seats", "value": 1,
                             "request_id": format!("seats-{i}")});
            let union = json!({"groupKey": "company", "groupId": "acme", "listName": "ids", "values": [i]});
            let people = json!({"userId": "ada", "key": "logins", "amount": 1, "request_id": format!("logins-{i}")});
            (
                app.post("/api/sdk/groups/profile/increment", inc).await.status,
                app.post("/api/sdk/groups/profile/union", union).await.status,
                app.post("/api/sdk/people/increment", people).await.status,
            )
        }));
    }
    for task in tasks {
        assert_eq!(task.await.expect("task"), (StatusCode::OK, StatusCode::OK, StatusCode::OK));
    }
    let g = app.get("/api/projects/default/groups/company/acme").await;
    assert_eq!(g.body["properties"]["seats"], json!(100));
    assert_eq!(g.body["properties"]["ids"].as_array().map(Vec::len), Some(100));
    let p = app.get("/api/projects/default/persons/ada").await;
    assert_eq!(p.body["properties"]["logins"], json!(100));
}

#[tokio::test]
async fn ingestion_answers_other_sites_and_the_read_api_does_not() {
    let app = app().await;
    let send = |request: axum::http::Request<axum::body::Body>| {
        let router = app.router.clone();
        async move { tower::ServiceExt::oneshot(router, request).await.expect("answer") }
    };
    // A browser's preflight before posting JSON with the site header from https://shop.example.
    let preflight = axum::http::Request::options("/api/sdk/batch")
        .header("origin", "https://shop.example")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type,x-trodo-site-id")
        .body(axum::body::Body::empty())
        .expect("request");
    let answer = send(preflight).await;
    assert!(answer.status().is_success(), "{}", answer.status());
    assert_eq!(answer.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()), Some("*"));
    for path in ["/api/events", "/batch/", "/v1/batch", "/track", "/2/httpapi"] {
        let post = axum::http::Request::post(path)
            .header("origin", "https://shop.example")
            .header("content-type", "application/json")
            .body(axum::body::Body::from("{}"))
            .expect("request");
        let answer = send(post).await;
        assert_eq!(
            answer.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
            Some("*"),
            "{path}"
        );
    }
    // Reading data, or the dashboard's session, stays same-origin.
    for path in ["/api/projects/default/group-types", "/api/session"] {
        let get = axum::http::Request::get(path)
            .header("origin", "https://shop.example")
            .header("authorization", format!("Bearer {}", common::SECRET))
            .body(axum::body::Body::empty())
            .expect("request");
        let answer = send(get).await;
        assert!(answer.headers().get("access-control-allow-origin").is_none(), "{path}");
    }
}
