//! Acceptance: the real, unmodified PostHog clients (`posthog` 7.91.1 from PyPI, `posthog-node`
//! 5.70.0 from npm) against a running troupe, with one set of assertions for both.

mod common;

use common::proxy::{Fault, FaultProxy};
use common::{get, run_flow, run_node_flow, Server, SITE};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posthog_python_session_lands_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    run_flow("posthog_flow.py", &[&server.base, SITE]).await;
    assert_session(&server).await;
    server.stop();
}

/// posthog-python resends a whole batch on anything but a 200: every event still counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posthog_python_session_lands_exactly_once_through_a_failing_proxy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    let proxy = FaultProxy::start(&server.base).await;
    run_flow("posthog_flow.py", &[&proxy.base, SITE]).await;
    assert!(proxy.failed() >= 1, "the proxy failed at least one stored request");
    assert_session(&server).await;
    server.stop();
}

/// posthog-node 5.70.0 (gzip by default): the same session gives the same answers as posthog-python.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posthog_node_session_lands_exactly() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    run_node_flow("posthog_node_flow.cjs", &[&server.base, SITE]).await;
    assert_session(&server).await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posthog_node_session_lands_exactly_once_through_a_failing_proxy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    let proxy = FaultProxy::start(&server.base).await;
    run_node_flow("posthog_node_flow.cjs", &[&proxy.base, SITE]).await;
    assert!(proxy.failed() >= 1, "the proxy failed at least one stored request");
    assert_session(&server).await;
    server.stop();
}

/// The connection drops after troupe stored the request: the client sees a network error and
/// retries, and every event still counts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posthog_python_session_lands_exactly_once_when_connections_drop() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    let proxy = FaultProxy::with_fault(&server.base, Fault::DropConnection).await;
    run_flow("posthog_flow.py", &[&proxy.base, SITE]).await;
    assert!(proxy.failed() >= 1, "the proxy dropped at least one connection");
    assert_session(&server).await;
    server.stop();
}

async fn assert_session(server: &Server) {
    let grace = get(server, "/api/projects/default/persons/grace@globex.io?events=20").await;
    assert_eq!(grace["distinct_ids"], json!(["anon-9c1d", "grace@globex.io"]));
    assert_eq!(grace["properties"], json!({"name": "Grace Hopper", "plan": "pro", "signup": "2026-11-01"}));
    let events: Vec<_> = grace["recent_events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["event"].as_str().unwrap_or_default().to_string(), e["groups"].clone()))
        .collect();
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
