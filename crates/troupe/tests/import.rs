//! `troupe import` of PostHog, Mixpanel and Segment exports, run twice: the second run loads
//! nothing again. Then the data is checked through the read API of a running server.

mod common;

use std::fs;

use common::{get, troupe, Server};
use serde_json::json;

/// Every event of the default project as (name, time, groups), newest first.
async fn event_rows(server: &Server) -> Vec<(serde_json::Value, serde_json::Value, serde_json::Value)> {
    let events = get(server, "/api/projects/default/events?limit=100").await;
    events["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["event"].clone(), e["timestamp"].clone(), e["groups"].clone()))
        .collect()
}

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
    let rows = event_rows(&server).await;
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

fn import_through(server: &Server, source: &str, file: &std::path::Path, secret: &str) -> std::process::Output {
    troupe()
        .args(["import", "--from", source, "--server", &server.base, "--secret-key", secret])
        .arg(file)
        .output()
        .expect("troupe runs")
}

/// `troupe import --server`: the running server holds the data directory, and the export goes
/// through its import route — same adapters, same derived ids — so sending it twice loads it once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_loads_into_a_running_server_once_however_often_it_is_sent() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(&dir.path().join("data"), &[]);
    let posthog = dir.path().join("posthog.ndjson");
    let lines = [
        json!({"event": "Signed In", "distinct_id": "ada", "timestamp": "2025-03-01T10:00:00Z", "uuid": "e-1", "properties": {"$groups": {"company": "acme"}}}).to_string(),
        json!({"event": "Chart Created", "distinct_id": "ada", "timestamp": "2025-03-01T11:00:00Z", "properties": {"$groups": {"company": "acme"}}}).to_string(),
        json!({"event": "$groupidentify", "distinct_id": "x", "properties": {"$group_type": "company", "$group_key": "acme", "$group_set": {"name": "Acme Inc"}}}).to_string(),
        json!({"event": "No User"}).to_string(),
        "{not json".to_string(),
    ];
    fs::write(&posthog, lines.join("\n")).expect("write");
    let summary = |out: &std::process::Output| {
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
        stdout
    };
    let first = summary(&import_through(&server, "posthog", &posthog, common::SECRET));
    assert!(first.contains("5 rows → 2 new events, 0 already loaded, 1 profile/identity rows, 2 rejected"), "{first}");
    assert!(first.contains("line 4: distinct_id is required") && first.contains("line 5: not valid JSON"), "{first}");
    let again = summary(&import_through(&server, "posthog", &posthog, common::SECRET));
    assert!(again.contains("→ 0 new events, 2 already loaded"), "sent again, nothing loads twice: {again}");

    // Amplitude's export rows, groups and group properties included.
    let amplitude = dir.path().join("amplitude.json");
    let row = json!({"event_type": "Report Exported", "event_time": "2025-03-02 09:00:00.000000", "user_id": "ada",
        "device_id": "d-1", "$insert_id": "a-1", "event_properties": {"format": "csv"},
        "groups": {"company": "acme"}, "group_properties": {"company": {"acme": {"plan": "enterprise"}}}});
    fs::write(&amplitude, format!("{row}\n")).expect("write");
    assert!(
        summary(&import_through(&server, "amplitude", &amplitude, common::SECRET)).contains("1 rows → 1 new events")
    );
    assert!(summary(&import_through(&server, "amplitude", &amplitude, common::SECRET))
        .contains("→ 0 new events, 1 already loaded"));

    let rows = event_rows(&server).await;
    assert_eq!(
        rows,
        vec![
            (json!("Report Exported"), json!("2025-03-02T09:00:00Z"), json!({"company": ["acme"]})),
            (json!("Chart Created"), json!("2025-03-01T11:00:00Z"), json!({"company": ["acme"]})),
            (json!("Signed In"), json!("2025-03-01T10:00:00Z"), json!({"company": ["acme"]})),
        ]
    );
    let acme = get(&server, "/api/projects/default/groups/company/acme").await;
    assert_eq!(acme["name"], json!("Acme Inc"));
    assert_eq!(acme["properties"]["plan"], json!("enterprise"));
    let ada = get(&server, "/api/projects/default/persons/d-1").await;
    assert_eq!(ada["distinct_ids"], json!(["ada", "d-1"]), "Amplitude's device id is the user's");

    let refused = import_through(&server, "posthog", &posthog, "trs_wrong");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success() && stderr.contains("401"), "a wrong key is a readable error: {stderr}");
    server.stop();
}
