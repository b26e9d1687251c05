//! Acceptance: the real, unmodified `@openpanel/sdk` 1.3.1 from npm (node) against troupe.

mod common;

use common::proxy::Fault;
use common::{companies_signed_in, get, session, sign_in_to_export, Route, Server};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openpanel_session_lands_exactly() {
    let session = session("openpanel_flow.cjs", Route::Direct, &[]).await;
    let server = &session.server;
    assert_session(server).await;
    session.stop();
}

/// The SDK retries every failed call (0.5, 1, 2 s); its events carry no id, so the retry window
/// must drop the resends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openpanel_session_lands_exactly_once_through_a_failing_proxy() {
    let session = session("openpanel_flow.cjs", Route::Through(Fault::Status503, 4), &[]).await;
    let server = &session.server;
    // increment/decrement carry no id: they are recognised by content within the retry window,
    // so `logins` is exactly what it is without faults.
    assert_session(server).await;
    session.stop();
}

/// Connections cut after troupe stored the call: fetch fails, the SDK retries, events count once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_openpanel_session_lands_exactly_once_when_connections_drop() {
    let session = session("openpanel_flow.cjs", Route::Through(Fault::DropConnection, 4), &[]).await;
    let server = &session.server;
    assert_session(server).await;
    session.stop();
}

async fn assert_session(server: &Server) {
    assert_eq!(companies_signed_in(server).await, 1.0, "the shared insight: one company signed in");
    assert_eq!(sign_in_to_export(server).await, vec![1, 1]);
    let hedy = get(server, "/api/projects/default/persons/hedy@wonka.io?events=20").await;
    assert_eq!(
        hedy["properties"],
        json!({"plan": "pro", "firstName": "Hedy", "lastName": "Lamarr", "email": "hedy@wonka.io", "logins": 2})
    );
    assert_eq!(hedy["group_memberships"], json!({"company": ["wonka"], "team": ["lab-9"]}));
    let events: Vec<_> = hedy["recent_events"].as_array().cloned().unwrap_or_default();
    let names: Vec<_> = events.iter().map(|e| e["event"].clone()).collect();
    assert_eq!(names, vec![json!("Report Exported"), json!("Signed In")]);
    assert_eq!(events[1]["groups"], json!({"company": ["wonka"]}));
    assert_eq!(events[1]["untyped_groups"], json!(["wonka"]));
    assert_eq!(events[0]["groups"], json!({"company": ["wonka"]}));
    let mut untyped: Vec<_> = events[0]["untyped_groups"].as_array().cloned().unwrap_or_default();
    untyped.sort_by_key(|v| v.to_string());
    assert_eq!(untyped, vec![json!("lab-7"), json!("wonka")], "the SDK merges its persistent groups with the call's");

    let wonka = get(server, "/api/projects/default/groups/company/wonka").await;
    assert_eq!(wonka["name"], json!("Wonka"));
    assert_eq!(wonka["properties"], json!({"plan": "enterprise", "employees": 45}));
    assert_eq!(wonka["members"][0]["distinct_ids"], json!(["hedy@wonka.io"]));
    assert_eq!(wonka["recent_events"].as_array().map(Vec::len), Some(2));
    let lab = get(server, "/api/projects/default/groups/team/lab-9").await;
    assert_eq!(lab["members"][0]["distinct_ids"], json!(["hedy@wonka.io"]), "joined before the group existed");

    // The anonymous visit before identify belongs to a server-derived device id.
    let persons = get(server, "/api/projects/default/persons").await;
    assert_eq!(persons["total"], json!(2));
    let all = get(server, "/api/projects/default/events?event=Landing%20Page%20Viewed").await;
    assert_eq!(all["results"].as_array().map(Vec::len), Some(1), "the anonymous visit exactly once");
    assert!(all["results"][0]["distinct_id"].as_str().is_some_and(|d| d.starts_with("device-")));
}
