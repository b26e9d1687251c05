//! Acceptance: the real, unmodified `segment-analytics-python` 2.4.0 against a running troupe.

mod common;

use std::process::Command;

use common::{get, Server, SITE};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_segment_python_session_lands_exactly() {
    let python = std::env::var("TROUPE_TEST_PYTHON")
        .unwrap_or_else(|_| panic!("TROUPE_TEST_PYTHON is not set: run ./scripts/test, which installs the clients"));
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/acceptance/segment_flow.py");
    let output = Command::new(python).arg(script).arg(&server.base).arg(SITE).output().expect("python runs");
    assert!(
        output.status.success(),
        "the flow failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let linus = get(&server, "/api/projects/default/persons/linus@initech.io?events=20").await;
    assert_eq!(linus["distinct_ids"], json!(["anon-5e", "linus@initech.io"]));
    assert_eq!(linus["properties"], json!({"name": "Linus", "plan": "team"}));
    assert_eq!(linus["group_memberships"], json!({"company": ["initech"]}));
    let events: Vec<_> = linus["recent_events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["event"].as_str().unwrap_or_default().to_string(), e["groups"].clone()))
        .collect();
    assert_eq!(
        events,
        vec![
            ("Report Exported".to_string(), json!({"company": ["initech"]})),
            ("Invoice Sent".to_string(), json!({"company": ["initrode"]})),
            ("Signed In".to_string(), json!({"company": ["initech"]})),
            ("$pageview".to_string(), json!({})),
        ]
    );
    let initech = get(&server, "/api/projects/default/groups/company/initech").await;
    assert_eq!(initech["properties"], json!({"name": "Initech", "plan": "enterprise", "employees": 95}));
    assert_eq!(initech["members"][0]["distinct_ids"], json!(["anon-5e", "linus@initech.io"]));
    let initrode = get(&server, "/api/projects/default/groups/company/initrode").await;
    assert_eq!(initrode["members"], json!([]));
    assert_eq!(get(&server, "/api/projects/default/persons").await["total"], json!(1));
    server.stop();
}
