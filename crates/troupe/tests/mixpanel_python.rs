//! Acceptance: the real, unmodified `mixpanel` 5.4.1 from PyPI against a running troupe.

mod common;

use common::{companies_signed_in, get, names_and_groups, session, sign_in_to_export, Route, SECRET};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mixpanel_python_session_lands_exactly() {
    // mixpanel-python raises on any error reply, so a clean run means every request was accepted.
    // (It does not retry over plain http, so there is no failing-proxy variant.)
    let session = session("mixpanel_flow.py", Route::Direct, &[SECRET]).await;
    let server = &session.server;

    let margaret = get(server, "/api/projects/default/persons/margaret@hooli.io?events=20").await;
    assert_eq!(margaret["distinct_ids"], json!(["anon-m1", "margaret@hooli.io"]));
    assert_eq!(
        margaret["properties"],
        json!({"$name": "Margaret", "plan": "pro", "company": ["hooli", "endframe"], "logins": 2})
    );
    assert_eq!(margaret["group_memberships"], json!({"company": ["hooli", "endframe"]}));
    let events = names_and_groups(&margaret["recent_events"]);
    assert_eq!(
        events,
        vec![
            ("Report Exported".to_string(), json!({"company": ["hooli", "endframe"]})),
            ("Chart Created".to_string(), json!({"company": ["hooli"]})),
            ("Signed In".to_string(), json!({"company": ["hooli"]})),
            ("Landing Page Viewed".to_string(), json!({})),
            ("Old Login".to_string(), json!({"company": ["hooli", "endframe"]})),
        ]
    );
    let old = margaret["recent_events"].as_array().and_then(|l| l.last().cloned()).unwrap_or_default();
    assert_eq!(old["timestamp"], json!("2023-11-14T22:13:20Z"), "the imported event keeps its own time");
    assert_eq!(companies_signed_in(server).await, 1.0, "the shared insight: one company signed in");
    assert_eq!(sign_in_to_export(server).await, vec![1, 1]);
    let hooli = get(server, "/api/projects/default/groups/company/hooli").await;
    assert_eq!(
        hooli["properties"],
        json!({"name": "Hooli", "plan": "enterprise", "employees": 500, "features": ["sso"]})
    );
    assert_eq!(hooli["members"][0]["distinct_ids"], json!(["anon-m1", "margaret@hooli.io"]));
    assert_eq!(get(server, "/api/projects/default/persons").await["total"], json!(1));
    session.stop();
}
