//! The import route (`POST /api/projects/{p}/import?from=…`) over HTTP: rows of an export, each
//! through its protocol's adapter, loaded once however often they are sent.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{app, gzip, SECRET};
use serde_json::{json, Value};

async fn import(app: &common::App, from: &str, body: Vec<u8>, secret: &str, encoding: Option<&str>) -> common::Reply {
    let mut request = Request::post(format!("/api/projects/default/import?from={from}"))
        .header("content-type", "application/x-ndjson")
        .header("authorization", format!("Bearer {secret}"));
    if let Some(encoding) = encoding {
        request = request.header("content-encoding", encoding);
    }
    app.send(request.body(Body::from(body)).expect("request")).await
}

fn ndjson(rows: &[Value]) -> Vec<u8> {
    rows.iter().map(|r| format!("{r}\n")).collect::<String>().into_bytes()
}

#[tokio::test]
async fn rows_load_once_and_bad_rows_are_named_by_line() {
    let app = app().await;
    let rows = ndjson(&[
        json!({"event": "Signed In", "distinct_id": "ada", "timestamp": "2025-03-01T10:00:00Z"}),
        json!({"event": "$identify", "distinct_id": "ada", "properties": {"$anon_distinct_id": "anon-1"}}),
        json!({"distinct_id": "no event name"}),
    ]);
    let mut body = rows.clone();
    body.extend_from_slice(b"\n{oops\n");
    let r = import(&app, "posthog", body.clone(), SECRET, None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"rows": 4, "new_events": 2, "duplicates": 0, "profile_rows": 1, "rejected": [
            {"line": 3, "error": "event is required"},
            {"line": 5, "error": "not valid JSON: key must be a string at line 1 column 2"}
        ]})
    );
    // Sent again, gzipped: the derived ids make every event a duplicate.
    let again = import(&app, "posthog", gzip(&body), SECRET, Some("gzip")).await;
    assert_eq!((again.body["new_events"].clone(), again.body["duplicates"].clone()), (json!(0), json!(2)));
    let person = app.get("/api/projects/default/persons/anon-1").await;
    assert_eq!(person.body["distinct_ids"], json!(["ada", "anon-1"]), "the $identify row merged");
}

#[tokio::test]
async fn a_wrong_source_or_key_is_refused_and_loads_nothing() {
    let app = app().await;
    let rows = ndjson(&[json!({"event": "A", "distinct_id": "u"})]);
    let r = import(&app, "heap", rows.clone(), SECRET, None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(r.body.to_string().contains("heap"), "the error names the value: {:?}", r.body);
    let r = import(&app, "posthog", rows, "trs_wrong", None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    let events = app.get("/api/projects/default/events").await;
    assert_eq!(events.body["results"], json!([]));
}
