//! Acceptance: the real, unmodified `trodo-python` (from PyPI, installed by scripts/test) drives
//! a SaaS login flow against a running `troupe serve`; the read API must show exactly what
//! DESIGN.md says results. Run once directly and once through a proxy that fails every first
//! attempt after troupe stored it, so the client's own retries must not double count.

mod common;

use common::proxy::Fault;
use common::{companies_signed_in, get, session, sign_in_to_export, status_of, Route, Server};
use serde_json::{json, Value};

/// The `RESULT <name> <json>` lines the flow printed.
fn results(stdout: &str) -> std::collections::HashMap<String, Value> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .filter_map(|l| l.split_once(' '))
        .map(|(name, json)| (name.to_string(), serde_json::from_str(json).unwrap_or(Value::Null)))
        .collect()
}

fn groups_of(events: &Value, name: &str) -> Value {
    let list = events.as_array().cloned().unwrap_or_default();
    let event = list.iter().find(|e| e["event"] == json!(name)).unwrap_or_else(|| panic!("no event {name}"));
    event["groups"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trodo_python_session_lands_exactly() {
    let session = session("trodo_flow.py", Route::Direct, &[]).await;
    let server = &session.server;
    let stdout = &session.stdout;
    assert_session(server, stdout).await;
    // Through the failing proxy the client's retry of the first upsert finds the user created.
    assert_eq!(results(stdout)["upsert_new"]["created"], json!(true));
    session.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trodo_python_session_lands_exactly_once_through_a_failing_proxy() {
    let session = session("trodo_flow.py", Route::Through(Fault::Status503, 20), &[]).await;
    let server = &session.server;
    let stdout = &session.stdout;
    // Trodo's increments, appends and charges carry no request id: they are recognised by their
    // content within the retry window, so the proxy's retries change nothing either.
    assert_session(server, stdout).await;
    session.stop();
}

/// What the flow leaves, with or without failures on the way. Trodo's increments and appends
/// carry no id, so two identical ones within the retry window (30 s) count once, a resend and
/// a genuine repeat being indistinguishable (docs/semantics.md, "Exactly once"): the flow's two
/// `increment("logins", 1)` leave 1, its two `append("milestones", "pilot")` one "pilot", while
/// `increment("seats", 5)` then `3` leave 8.
async fn assert_session(server: &Server, stdout: &str) {
    assert_eq!(companies_signed_in(server).await, 1.0, "the shared insight: one company signed in");
    assert_eq!(sign_in_to_export(server).await, vec![2, 1], "ada exported, bob did not");
    let replies = results(stdout);
    // users/upsert answers as Trodo's does; fixed properties only from the allow-list.
    let upsert = &replies["upsert_new"];
    assert_eq!(upsert["distinctId"], json!("dana@acme.io"));
    assert_eq!(upsert["applied"], json!(["last_location_country", "first_location_city"]));
    assert_eq!(upsert["skipped"], json!(["browser"]));
    assert_eq!(replies["upsert_again"]["created"], json!(false));
    assert_eq!(replies["wallet"]["success"], json!(true));
    let dana = get(server, "/api/projects/default/persons/dana@acme.io").await;
    assert_eq!(
        dana["properties"],
        json!({"plan": "team", "signup_date": "2026-11-20", "last_location_country": "India",
               "first_location_city": "Pune", "wallet_address": "0xA11CE", "wallet_addresses": ["0xA11CE"]}),
        "first_ kept once, the browser's observation not stored"
    );
    // identify answers the identified id (the SDK switches to it) and the memberships.
    assert_eq!(replies["identify_first"]["distinctId"], json!("ada@acme.io"));
    assert_eq!(replies["identify_first"]["group_memberships"], json!({}));
    assert_eq!(
        replies["identify_again"]["group_memberships"],
        json!({"company": ["acme"], "team": ["acme-eng"], "active_team": ["acme-data"]})
    );

    // Ada: one person with both ids, her profile after every people op.
    let ada = get(server, "/api/projects/default/persons/ada@acme.io?events=50").await;
    assert_eq!(ada["distinct_ids"], json!(["anon-7f3a", "ada@acme.io"]));
    assert_eq!(
        ada["group_memberships"],
        json!({"company": ["acme"], "team": ["acme-eng"], "active_team": ["acme-data"]})
    );
    assert_eq!(
        ada["properties"],
        json!({"name": "Ada Lovelace", "plan": "pro", "signup_date": "2026-11-01", "logins": 1,
               "roles": ["admin", "owner"], "visits": ["home", "home"]})
    );
    let charges: Vec<_> = ada["charges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (c["amount"].clone(), c["properties"].clone()))
        .collect();
    assert_eq!(charges, vec![(json!(49.0), json!({"sku": "pro"}))]);

    // Attribution per event, stamped when each event arrived; each event exactly once.
    let events = &ada["recent_events"];
    let names: Vec<_> = events.as_array().into_iter().flatten().map(|e| e["event"].clone()).collect();
    assert_eq!(
        names,
        vec![json!("Report Exported"), json!("Chart Created"), json!("Signed In"), json!("Landing Page Viewed")]
    );
    assert_eq!(groups_of(events, "Landing Page Viewed"), json!({}));
    assert_eq!(
        groups_of(events, "Signed In"),
        json!({"company": ["acme"], "team": ["acme-eng", "acme-data"], "active_team": ["acme-eng"]})
    );
    assert_eq!(
        groups_of(events, "Chart Created"),
        json!({"company": ["acme"], "team": ["acme-eng", "acme-data"], "active_team": ["acme-data"]})
    );
    assert_eq!(
        groups_of(events, "Report Exported"),
        json!({"company": ["acme"], "team": ["acme-eng"], "active_team": ["acme-data"]})
    );
    let report = events
        .as_array()
        .and_then(|l| l.iter().find(|e| e["event"] == json!("Report Exported")).cloned())
        .unwrap_or_default();
    assert_eq!(report["properties"]["format"], json!("csv"));

    // The company: profile after every group op, its members, the events attributed to it.
    let acme = get(server, "/api/projects/default/groups/company/acme?events=50").await;
    assert_eq!(acme["name"], json!("Acme Inc"));
    assert_eq!(
        acme["properties"],
        json!({"name": "Acme Inc", "plan": "enterprise", "employees": 250, "created": "2020-05-01", "seats": 8,
               "features": ["sso", "api"], "milestones": ["pilot"]})
    );
    let members: Vec<_> = acme["members"].as_array().into_iter().flatten().map(|m| m["distinct_ids"].clone()).collect();
    assert_eq!(members, vec![json!(["anon-7f3a", "ada@acme.io"]), json!(["bob@acme.io"])]);
    let acme_events: Vec<_> =
        acme["recent_events"].as_array().into_iter().flatten().map(|e| e["event"].clone()).collect();
    assert_eq!(
        acme_events,
        vec![json!("Signed In"), json!("Report Exported"), json!("Chart Created"), json!("Signed In")]
    );

    // Teams: removal keeps earlier attribution but ends membership.
    let data_team = get(server, "/api/projects/default/groups/team/acme-data").await;
    assert_eq!(data_team["members"], json!([]));
    assert_eq!(data_team["recent_events"].as_array().map(Vec::len), Some(2));
    let eng = get(server, "/api/projects/default/groups/team/acme-eng").await;
    assert_eq!(eng["properties"], json!({"name": "Acme Engineering"}));

    let types = get(server, "/api/projects/default/group-types").await;
    let types: Vec<_> = types["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| (t["group_type"].clone(), t["group_count"].clone()))
        .collect();
    assert_eq!(types, vec![(json!("team"), json!(2)), (json!("company"), json!(2)), (json!("active_team"), json!(2))]);

    // The deleted user is gone; the batched client's events arrived through /api/events/bulk.
    assert_eq!(status_of(server, "/api/projects/default/persons/temp@acme.io").await, 404);
    let carol = get(server, "/api/projects/default/persons/carol@globex.io?events=10").await;
    assert_eq!(carol["recent_events"].as_array().map(Vec::len), Some(3));
    assert!(carol["recent_events"]
        .as_array()
        .into_iter()
        .flatten()
        .all(|e| e["groups"] == json!({"company": ["globex"]})));
    let persons = get(server, "/api/projects/default/persons").await;
    assert_eq!(persons["total"], json!(4), "ada (merged with her anonymous id), bob, carol, dana");
    let all = get(server, "/api/projects/default/events?limit=1000").await;
    assert_eq!(
        all["results"].as_array().map(Vec::len),
        Some(8),
        "ada 4, bob 1, carol 3: every event of the flow exactly once"
    );
}
