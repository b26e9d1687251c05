//! `troupe import` of PostHog, Mixpanel and Segment exports, run twice: the second run loads
//! nothing again. Then the data is checked through the read API of a running server.

mod common;

use std::fs;

use common::{get, troupe, Server};
use serde_json::json;

fn import(data_dir: &std::path::Path, source: &str, file: &std::path::Path) -> String {
    let out = troupe()
        .args(["import", "--from", source, "--data-dir"])
        .arg(data_dir)
        .arg(file)
        .output()
        .expect("troupe runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_load_once_with_their_own_times_and_groups() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    // The default project exists once a server has started.
    Server::start(&data, &[]).stop();

    let posthog = dir.path().join("posthog.ndjson");
    fs::write(
        &posthog,
        [
            json!({"event": "Signed In", "distinct_id": "ada", "timestamp": "2025-03-01T10:00:00Z", "uuid": "e-1", "properties": {"$groups": {"company": "acme"}}}),
            json!({"event": "Chart Created", "distinct_id": "ada", "timestamp": "2025-03-01T11:00:00Z", "properties": {"$groups": {"company": "acme"}}}),
            json!({"event": "$groupidentify", "distinct_id": "x", "properties": {"$group_type": "company", "$group_key": "acme", "$group_set": {"name": "Acme Inc"}}}),
            json!({"event": "No User"}),
        ]
        .iter()
        .map(|v| v.to_string())
        .chain(["{not json".to_string(), String::new()])
        .collect::<Vec<_>>()
        .join("\n"),
    )
    .expect("write");
    let first = import(&data, "posthog", &posthog);
    assert!(first.contains("5 rows → 2 new events, 0 already loaded, 1 profile/identity rows, 2 rejected"), "{first}");
    assert!(first.contains("line 4: distinct_id is required") && first.contains("line 5: not valid JSON"), "{first}");
    let again = import(&data, "posthog", &posthog);
    assert!(again.contains("→ 0 new events, 2 already loaded"), "re-running loads nothing twice: {again}");

    let mixpanel = dir.path().join("mixpanel.csv");
    fs::write(&mixpanel, "event,distinct_id,time,$insert_id,company,plan\nPaid,bob,1740823200,m-1,acme,pro\nPaid,bob,1740826800,,globex,\n")
        .expect("write");
    let first = import(&data, "mixpanel", &mixpanel);
    assert!(first.contains("2 rows → 2 new events"), "{first}");
    assert!(import(&data, "mixpanel", &mixpanel).contains("→ 0 new events, 2 already loaded"));

    let segment = dir.path().join("segment.ndjson");
    let lines = [
        json!({"type": "group", "userId": "cy", "groupId": "initech", "traits": {"name": "Initech"}, "messageId": "s-0"}),
        json!({"type": "track", "userId": "cy", "event": "Report Exported", "timestamp": "2025-03-02T09:00:00Z", "messageId": "s-1"}),
    ];
    fs::write(&segment, lines.iter().map(|v| v.to_string()).collect::<Vec<_>>().join("\n")).expect("write");
    assert!(import(&data, "segment", &segment).contains("2 rows → 1 new events"));

    let server = Server::start(&data, &[]);
    let events = get(&server, "/api/projects/default/events?limit=100").await;
    let rows: Vec<_> = events["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["event"].clone(), e["timestamp"].clone(), e["groups"].clone()))
        .collect();
    assert_eq!(
        rows,
        vec![
            (json!("Report Exported"), json!("2025-03-02T09:00:00Z"), json!({"company": ["initech"]})),
            (json!("Paid"), json!("2025-03-01T11:00:00Z"), json!({"company": ["globex"]})),
            (json!("Chart Created"), json!("2025-03-01T11:00:00Z"), json!({"company": ["acme"]})),
            (json!("Paid"), json!("2025-03-01T10:00:00Z"), json!({"company": ["acme"]})),
            (json!("Signed In"), json!("2025-03-01T10:00:00Z"), json!({"company": ["acme"]})),
        ]
    );
    let acme = get(&server, "/api/projects/default/groups/company/acme").await;
    assert_eq!(acme["name"], json!("Acme Inc"));
    server.stop();
}

#[test]
fn a_missing_project_or_file_is_a_readable_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = troupe()
        .args(["import", "--from", "posthog", "--data-dir"])
        .arg(dir.path())
        .arg("nope.ndjson")
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && stderr.contains("no project 'default'"), "{stderr}");
}
