//! Acceptance: the real, unmodified PostHog clients (`posthog` 7.91.1 from PyPI, `posthog-node`
//! 5.70.0 from npm) against a running troupe, with one set of assertions for both.

mod common;

use common::proxy::Fault;
use common::{companies_signed_in, get, names_and_groups, session, sign_in_to_export, Route, Server};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posthog_python_session_lands_exactly() {
    let session = session("posthog_flow.py", Route::Direct, &[]).await;
    let server = &session.server;
    assert_session(server, 0).await;
    session.stop();
}

/// posthog-python resends a whole batch on anything but a 200: every event still counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posthog_python_session_lands_exactly_once_through_a_failing_proxy() {
    let session = session("posthog_flow.py", Route::Through(Fault::Status503, 1), &[]).await;
    let server = &session.server;
    assert_session(server, 0).await;
    session.stop();
}

/// posthog-node 5.70.0 (gzip by default): the same session gives the same answers as posthog-python.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posthog_node_session_lands_exactly() {
    let session = session("posthog_node_flow.cjs", Route::Direct, &[]).await;
    let server = &session.server;
    assert_session(server, 3).await;
    session.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posthog_node_session_lands_exactly_once_through_a_failing_proxy() {
    let session = session("posthog_node_flow.cjs", Route::Through(Fault::Status503, 1), &[]).await;
    let server = &session.server;
    assert_session(server, 3).await;
    session.stop();
}

/// The connection drops after troupe stored the request: the client sees a network error and
/// retries, and every event still counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posthog_python_session_lands_exactly_once_when_connections_drop() {
    let session = session("posthog_flow.py", Route::Through(Fault::DropConnection, 1), &[]).await;
    let server = &session.server;
    assert_session(server, 0).await;
    session.stop();
}

/// `identifies`: the `$identify` events the flow sent (posthog-node's `identify` sends one per
/// call; the python flow uses `set`), each stored once as PostHog stores it.
async fn assert_session(server: &Server, identifies: usize) {
    assert_eq!(companies_signed_in(server).await, 1.0, "the shared insight: one company signed in");
    assert_eq!(sign_in_to_export(server).await, vec![1, 1]);
    let grace = get(server, "/api/projects/default/persons/grace@globex.io?events=20").await;
    assert_eq!(grace["distinct_ids"], json!(["anon-9c1d", "grace@globex.io"]));
    assert_eq!(grace["properties"], json!({"name": "Grace Hopper", "plan": "pro", "signup": "2026-11-01"}));
    let mut events = names_and_groups(&grace["recent_events"]);
    let stored_identifies = events.iter().filter(|(name, _)| name == "$identify").count();
    assert_eq!(stored_identifies, identifies, "each $identify stored once, through retries too");
    events.retain(|(name, _)| name != "$identify");
    assert_eq!(
        events,
        vec![
            ("Report Exported".to_string(), json!({})),
            ("Chart Created".to_string(), json!({"company": ["globex"], "team": ["globex-data"]})),
            ("Signed In".to_string(), json!({"company": ["globex"]})),
            ("Landing Page Viewed".to_string(), json!({})),
        ]
    );
    let globex = get(server, "/api/projects/default/groups/company/globex").await;
    assert_eq!(globex["name"], json!("Globex"));
    assert_eq!(
        globex["properties"],
        json!({"name": "Globex", "plan": "enterprise", "employees": 130, "industry": "energy"})
    );
    assert_eq!(globex["recent_events"].as_array().map(Vec::len), Some(2));
    let persons = get(server, "/api/projects/default/persons").await;
    assert_eq!(persons["total"], json!(1), "group_identify's random distinct id created no person");
}
