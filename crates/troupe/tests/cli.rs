//! The command line as a user meets it: help, the first start, the demo, projects, errors.

mod common;

use common::{get, troupe, Server, SECRET, SITE};
use serde_json::json;

fn run(args: &[&str]) -> (bool, String, String) {
    let out = troupe().args(args).output().expect("troupe runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["demo", "--help"],
        &["project", "--help"],
        &["project", "create", "--help"],
        &["query", "--help"],
        &["bench", "--help"],
        &["person", "erase", "--help"],
        &["person", "anonymize", "--help"],
        &["group-type", "delete", "--help"],
        &["person", "export", "--help"],
    ] {
        let (ok, stdout, _) = run(args);
        assert!(ok && stdout.contains("Usage: troupe"), "{args:?}");
    }
    let (_, stdout, _) = run(&["serve", "--help"]);
    for flag in ["--addr", "--data-dir", "--log-level", "--demo", "TROUPE_DATA_DIR", "[default: 127.0.0.1:8000]"] {
        assert!(stdout.contains(flag), "serve --help mentions {flag}");
    }
}

#[test]
fn bad_arguments_get_a_readable_error() {
    let (ok, _, stderr) = run(&["serve", "--addr", "not-an-address"]);
    assert!(!ok && stderr.contains("--addr"), "{stderr}");
    let (ok, _, stderr) = run(&["serve", "--log-level", "[[[", "--data-dir", "/tmp/troupe-never-created"]);
    assert!(!ok && stderr.contains("log filter"), "{stderr}");
}

#[test]
fn projects_are_created_and_listed_and_names_are_unique() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().unwrap_or_default();
    let (ok, stdout, stderr) = run(&["project", "create", "mobile", "--data-dir", data]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("ingestion key: tri_") && stdout.contains("secret key:    trs_"), "{stdout}");
    let (ok, _, stderr) = run(&["project", "create", "mobile", "--data-dir", data]);
    assert!(!ok && stderr.contains("already exists"), "{stderr}");
    let (ok, stdout, _) = run(&["project", "list", "--data-dir", data]);
    assert!(ok && stdout.contains("mobile"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_demo_starts_with_sample_data_and_prints_its_keys() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &["--demo"]);
    let banner = server.banner.join("\n");
    assert!(banner.contains("created project 'default'") && banner.contains("secret key:"), "{banner}");
    assert!(banner.contains("demo data: 24 companies"), "{banner}");
    let types = get(&server, "/api/projects/default/group-types").await;
    let names: Vec<_> = types["results"].as_array().into_iter().flatten().map(|t| t["group_type"].clone()).collect();
    assert_eq!(names, vec![json!("company"), json!("team"), json!("active_team")]);
    let companies = get(&server, "/api/projects/default/groups?type=company&limit=100").await;
    assert_eq!(companies["total"], json!(24));
    let acme = get(&server, "/api/projects/default/groups/company/acme-inc").await;
    assert_eq!(acme["name"], json!("Acme Inc"));
    assert!(acme["members"].as_array().is_some_and(|m| m.len() > 10), "the largest account has many members");
    assert!(acme["recent_events"].as_array().is_some_and(|e| !e.is_empty()));

    // A second start does not add the demo twice, and the data dir is locked while in use.
    let events_before = get(&server, "/api/projects/default/events?limit=1").await;
    let (ok, _, stderr) = run(&["project", "list", "--data-dir", dir.path().to_str().unwrap_or_default()]);
    assert!(!ok && stderr.contains("in use by another troupe process"), "{stderr}");
    assert!(server.stop().success());
    let server = Server::start(dir.path(), &["--demo"]);
    assert!(!server.banner.join("\n").contains("demo data:"));
    assert_eq!(get(&server, "/api/projects/default/events?limit=1").await, events_before);
}

/// The benchmark on a small data set: it generates, loads, answers every question with troupe
/// and with plain SQL, finds the same numbers, writes its report, and reuses the data next time.
#[test]
fn bench_answers_match_plain_sql_and_reports_json() {
    let dir = tempfile::tempdir().expect("temp dir");
    let report = dir.path().join("report.json");
    let data = dir.path().join("data");
    let args = |out: &std::path::Path| {
        vec![
            "bench".to_string(),
            "--events".into(),
            "20000".into(),
            "--runs".into(),
            "1".into(),
            "--ingest-events".into(),
            "3000".into(),
            "--ingest-singles".into(),
            "50".into(),
            "--import".into(),
            "--data-dir".into(),
            data.display().to_string(),
            "--out".into(),
            out.display().to_string(),
        ]
    };
    let first = troupe().args(args(&report)).output().expect("bench runs");
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(first.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&first.stderr));
    assert!(stdout.contains("loaded through the store's writer"), "{stdout}");
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&report).expect("report written")).expect("JSON");
    // Ingestion went through a real server: every event accepted, latencies measured.
    assert_eq!(json["ingestion"]["batch_events"], json!(3000));
    assert_eq!(json["ingestion"]["single_requests"], json!(50));
    assert!(json["ingestion"]["single_p99_ms"].as_f64().unwrap_or(0.0) > 0.0);
    // The data set went through `troupe import` as a PostHog export, every row loaded.
    assert_eq!(json["import"]["events"], json!(20000));
    assert!(json["import"]["events_per_second"].as_f64().unwrap_or(0.0) > 0.0, "{}", json["import"]);
    let questions = json["questions"].as_array().cloned().unwrap_or_default();
    assert_eq!(questions.len(), 8);
    for q in &questions {
        assert_eq!(q["answers_match"], json!(true), "{q}");
        assert!(q["answer"].as_f64().unwrap_or(0.0) > 0.0, "a question with nothing to count proves little: {q}");
    }
    let again = troupe().args(args(&dir.path().join("again.json"))).output().expect("bench runs");
    assert!(again.status.success());
    assert!(!String::from_utf8_lossy(&again.stdout).contains("loaded through"), "the data set is reused");
}

/// `troupe person export|erase` through a running server, then on the data directory with the
/// server stopped: the export holds the person's events, the erasure removes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn person_export_anonymize_and_erase_through_a_server_and_on_the_data_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().unwrap_or_default().to_string();
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    // bob's two events differ (identical events without an id would be taken for a retry).
    for (name, who) in [("Visited", "anon-1"), ("Report Exported", "ann"), ("Visited", "bob"), ("Signed Up", "bob")] {
        let body = json!({"event_name": name, "user_id": who});
        let r = client.post(server.url("/api/events")).header("x-trodo-site-id", SITE).json(&body).send().await;
        assert!(r.expect("answers").status().is_success());
    }
    let identify = json!({"userId": "anon-1", "distinctId": "anon-1", "identifyId": "ann"});
    let r = client.post(server.url("/api/sdk/identify")).header("x-trodo-site-id", SITE).json(&identify).send().await;
    assert!(r.expect("answers").status().is_success());

    let out = dir.path().join("ann.json");
    let out_path = out.to_str().unwrap_or_default();
    let remote = ["--server", server.base.as_str(), "--secret-key", SECRET];
    let (ok, _, stderr) = run(&[&["person", "export", "ann", "--out", out_path][..], &remote].concat());
    assert!(ok, "{stderr}");
    let export: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).expect("written")).expect("JSON");
    assert_eq!(export["events"].as_array().map(Vec::len), Some(2), "{export}");
    let (ok, stdout, stderr) = run(&[&["person", "erase", "anon-1"][..], &remote].concat());
    assert!(ok && stdout.contains("erased person"), "{stdout}{stderr}");
    assert_eq!(get(&server, "/api/projects/default/events").await["results"].as_array().map(Vec::len), Some(2));
    let (ok, _, stderr) = run(&["person", "erase", "bob", "--server", server.base.as_str()]);
    assert!(!ok && stderr.contains("--secret-key"), "{stderr}");
    server.stop();

    let (ok, stdout, stderr) = run(&["person", "export", "bob", "--data-dir", &data]);
    assert!(ok, "{stderr}");
    let export: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on standard output");
    assert_eq!(export["events"].as_array().map(Vec::len), Some(2));
    let (ok, stdout, stderr) = run(&["person", "anonymize", "bob", "--data-dir", &data]);
    assert!(ok && stdout.contains("its events stay under \"anonymized-"), "{stdout}{stderr}");
    let pseudonym = stdout.rsplit('"').nth(1).unwrap_or_default().to_string();
    let (ok, stdout, _) = run(&["person", "export", &pseudonym, "--data-dir", &data]);
    let export: serde_json::Value = serde_json::from_str(&stdout).expect("JSON on standard output");
    assert!(ok && export["events"].as_array().map(Vec::len) == Some(2), "{export}");
    let (ok, _, stderr) = run(&["person", "export", "bob", "--data-dir", &data]);
    assert!(!ok && stderr.contains("no person has the id \"bob\""), "bob is a pseudonym now: {stderr}");
    let (ok, stdout, _) = run(&["person", "erase", &pseudonym, "--data-dir", &data]);
    assert!(ok && stdout.contains("erased person"), "{stdout}");
    let (ok, stdout, _) = run(&["person", "erase", &pseudonym, "--data-dir", &data]);
    assert!(ok && stdout.contains("no person has the id"), "a retry is harmless: {stdout}");
}

/// `troupe group-type list|rename|delete` through a running server, then on the data directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_types_are_listed_renamed_and_deleted_from_the_command_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().to_str().unwrap_or_default().to_string();
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    for (kind, key) in [("org", "acme"), ("team", "t1")] {
        let body = json!({"userId": "u1", "groupKey": kind, "groupId": key});
        let r = client.post(server.url("/api/sdk/groups/set_group")).header("x-trodo-site-id", SITE).json(&body).send();
        assert!(r.await.expect("answers").status().is_success());
    }
    let remote = ["--server", server.base.as_str(), "--secret-key", SECRET];
    let (ok, stdout, stderr) = run(&[&["group-type", "rename", "org", "company"][..], &remote].concat());
    assert!(ok && stdout.contains("renamed group type 'org' to 'company'"), "{stdout}{stderr}");
    let (ok, stdout, _) = run(&[&["group-type", "list"][..], &remote].concat());
    assert!(ok && stdout.contains("company") && stdout.contains("team") && !stdout.contains("org "), "{stdout}");
    let (ok, _, stderr) = run(&[&["group-type", "delete", "nope"][..], &remote].concat());
    assert!(!ok && stderr.contains("no group type 'nope'"), "{stderr}");
    server.stop();

    let (ok, stdout, stderr) = run(&["group-type", "delete", "team", "--data-dir", &data]);
    assert!(ok && stdout.contains("deleted group type 'team'"), "{stdout}{stderr}");
    let (ok, _, stderr) = run(&["group-type", "delete", "team", "--data-dir", &data]);
    assert!(!ok && stderr.contains("no group type 'team'"), "{stderr}");
    let (ok, stdout, _) = run(&["group-type", "list", "--data-dir", &data]);
    assert!(ok && stdout.contains("slot  0  company") && !stdout.contains("team"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_a_line_with_the_request_id() {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("troupe.log");
    let server = common::Server::start_logging_to(&dir.path().join("data"), &["--log-format", "json"], &log);
    let client = reqwest::Client::new();
    let sent = client
        .post(server.url("/api/events"))
        .header("x-trodo-site-id", common::SITE)
        .json(&serde_json::json!({"event_name": "Signed In", "user_id": "ada"}))
        .send()
        .await
        .expect("answers");
    assert!(sent.status().is_success());
    // An erasure is logged at info, inside its request.
    let erased = client
        .delete(server.url("/api/projects/default/persons/ada"))
        .bearer_auth(common::SECRET)
        .header("x-request-id", "req-json-42")
        .send()
        .await
        .expect("answers");
    assert_eq!(erased.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("req-json-42"));
    server.stop();
    let text = std::fs::read_to_string(&log).expect("log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(!lines.is_empty(), "{text}");
    let erasure = lines
        .iter()
        .find(|l| l["fields"]["message"] == serde_json::json!("person erased"))
        .unwrap_or_else(|| panic!("no erasure line in {text}"));
    assert_eq!(erasure["span"]["request_id"], serde_json::json!("req-json-42"), "{erasure}");
    assert_eq!(erasure["level"], serde_json::json!("INFO"));
}
