//! Acceptance: the real, unmodified Segment clients (`segment-analytics-python` 2.4.0 from PyPI,
//! `@segment/analytics-node` 3.1.0 from npm) against a running troupe, with one set of assertions.

mod common;

use common::proxy::Fault;
use common::{companies_signed_in, get, names_and_groups, session, sign_in_to_export, Route, Server};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_python_session_lands_exactly() {
    let session = session("segment_flow.py", Route::Direct, &[]).await;
    let server = &session.server;
    assert_session(server).await;
    session.stop();
}

/// analytics-python retries 5xx (the first retry at once): every message still counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_python_session_lands_exactly_once_through_a_failing_proxy() {
    let session = session("segment_flow.py", Route::Through(Fault::Status503, 1), &[]).await;
    let server = &session.server;
    assert_session(server).await;
    session.stop();
}

/// @segment/analytics-node 3.1.0: the same session gives the same answers as analytics-python.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_node_session_lands_exactly() {
    let session = session("segment_node_flow.cjs", Route::Direct, &[]).await;
    let server = &session.server;
    assert_session(server).await;
    session.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_node_session_lands_exactly_once_through_a_failing_proxy() {
    let session = session("segment_node_flow.cjs", Route::Through(Fault::Status503, 1), &[]).await;
    let server = &session.server;
    assert_session(server).await;
    session.stop();
}

/// The connection drops after troupe stored the request: the client sees a network error and
/// retries, and every event still counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_python_session_lands_exactly_once_when_connections_drop() {
    let session = session("segment_flow.py", Route::Through(Fault::DropConnection, 1), &[]).await;
    let server = &session.server;
    assert_session(server).await;
    session.stop();
}

async fn assert_session(server: &Server) {
    assert_eq!(companies_signed_in(server).await, 1.0, "the shared insight: one company signed in");
    assert_eq!(sign_in_to_export(server).await, vec![1, 1]);
    let linus = get(server, "/api/projects/default/persons/linus@initech.io?events=20").await;
    assert_eq!(linus["distinct_ids"], json!(["anon-5e", "linus@initech.io"]));
    assert_eq!(linus["properties"], json!({"name": "Linus", "plan": "team"}));
    // The switch to initrode replaced initech (the project's default Segment group rule).
    assert_eq!(linus["group_memberships"], json!({"company": ["initrode"]}));
    let events = names_and_groups(&linus["recent_events"]);
    assert_eq!(
        events,
        vec![
            ("Workspace Opened".to_string(), json!({"company": ["initrode"]})),
            ("Report Exported".to_string(), json!({"company": ["initech"]})),
            ("Invoice Sent".to_string(), json!({"company": ["initrode"]})),
            ("Signed In".to_string(), json!({"company": ["initech"]})),
            ("$pageview".to_string(), json!({})),
        ]
    );
    let initech = get(server, "/api/projects/default/groups/company/initech").await;
    assert_eq!(initech["properties"], json!({"name": "Initech", "plan": "enterprise", "employees": 95}));
    assert_eq!(initech["members"], json!([]), "Linus left initech when he switched");
    let initrode = get(server, "/api/projects/default/groups/company/initrode").await;
    assert_eq!(initrode["members"][0]["distinct_ids"], json!(["anon-5e", "linus@initech.io"]));
    assert_eq!(initrode["properties"], json!({"name": "Initrode"}));
    assert_eq!(get(server, "/api/projects/default/persons").await["total"], json!(1));
}
