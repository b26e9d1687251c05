//! Acceptance: the real, unmodified `amplitude-analytics` client (PyPI, installed by
//! scripts/setup-test-deps) sends a B2B session to a running troupe's `/2/httpapi`, directly and
//! through a proxy that fails every first attempt after troupe stored it.

mod common;

use common::proxy::Fault;
use common::{get, names_and_groups, session, Route, Server};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amplitude_python_session_lands_exactly() {
    let session = session("amplitude_flow.py", Route::Direct, &[]).await;
    assert_session(&session.server).await;
    session.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_amplitude_python_session_lands_exactly_once_through_a_failing_proxy() {
    let session = session("amplitude_flow.py", Route::Through(Fault::Status503, 1), &[]).await;
    assert_session(&session.server).await;
    session.stop();
}

async fn assert_session(server: &Server) {
    let lin = get(server, "/api/projects/default/persons/lin@umbrella.io?events=20").await;
    let mut ids: Vec<_> = lin["distinct_ids"].as_array().cloned().unwrap_or_default();
    ids.sort_by_key(|v| v.to_string());
    assert_eq!(ids, vec![json!("device-a1"), json!("lin@umbrella.io")], "the device is Lin's");
    assert_eq!(lin["group_memberships"], json!({"company": ["umbrella"]}), "set_group is a membership");
    assert_eq!(lin["properties"]["plan"], json!("pro"));
    assert_eq!(lin["properties"]["signup"], json!("2026-11-01"));
    let events = names_and_groups(&lin["recent_events"]);
    assert_eq!(
        events,
        vec![
            ("Report Exported".to_string(), json!({"company": ["umbrella"]})),
            ("Signed In".to_string(), json!({})),
            ("Landing Page Viewed".to_string(), json!({})),
        ],
        "each event once; after set_group the user's events carry the company"
    );
    let umbrella = get(server, "/api/projects/default/groups/company/umbrella").await;
    assert_eq!(umbrella["name"], json!("Umbrella"));
    assert_eq!(umbrella["properties"]["plan"], json!("enterprise"));
    assert_eq!(get(server, "/api/projects/default/persons").await["total"], json!(1));
}
