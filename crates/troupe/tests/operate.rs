//! Operating troupe with the real binary: an online backup while events come in and its restore,
//! the upgrade of a data directory written by the previous release, the operator's `troupe
//! user` / `troupe key` commands through a running server and without one, and a graceful
//! shutdown that finishes a batch under way.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use common::{troupe, Server, SECRET, SITE};

/// Run `troupe <args>` with `stdin`; its stdout, or a panic with everything it printed.
fn cli(args: &[&str], stdin: &str) -> String {
    let mut child = troupe()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("troupe runs");
    child.stdin.take().expect("stdin").write_all(stdin.as_bytes()).expect("stdin written");
    let out = child.wait_with_output().expect("troupe exits");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "troupe {args:?} failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    stdout
}

fn cli_error(args: &[&str]) -> String {
    let out = troupe().args(args).output().expect("troupe runs");
    assert!(!out.status.success(), "troupe {args:?} should fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Every stored event id of the users `u0` … `u3` (the tests' events all belong to them), read
/// from each person's export (the events list API pages by time only).
async fn events_ids(server: &Server) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for user in ["u0", "u1", "u2", "u3"] {
        let response = reqwest::Client::new()
            .get(server.url(&format!("/api/projects/default/persons/{user}/export")))
            .bearer_auth(SECRET)
            .send()
            .await
            .expect("answers");
        if response.status() == 404 {
            continue;
        }
        let export: Value = response.json().await.expect("export JSON");
        ids.extend(
            export["events"].as_array().into_iter().flatten().filter_map(|e| e["uuid"].as_str().map(String::from)),
        );
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_backup_while_events_come_in_restores_every_acknowledged_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--no-rate-limits"]);
    let client = reqwest::Client::new();
    // A writer that keeps sending batches of 200 events and notes each batch acknowledged.
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = {
        let (acknowledged, stop, url, client) =
            (acknowledged.clone(), stop.clone(), server.url("/api/events/bulk"), client.clone());
        tokio::spawn(async move {
            for batch in 0..400 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let ids: Vec<String> = (0..200).map(|i| format!("b{batch}-{i}")).collect();
                let events: Vec<Value> = ids
                    .iter()
                    .map(|id| json!({"event_name": "Tick", "user_id": format!("u{}", batch % 4), "event_id": id, "custom_properties": {"pad": "x".repeat(200)}}))
                    .collect();
                let response =
                    client.post(&url).header("x-trodo-site-id", SITE).json(&json!({"events": events})).send().await;
                if response.is_ok_and(|r| r.status().is_success()) {
                    acknowledged.lock().expect("lock").extend(ids);
                }
            }
        })
    };
    // Wait for some data, then back up while the writer goes on.
    for _ in 0..200 {
        if acknowledged.lock().expect("lock").len() >= 4000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let before_backup: BTreeSet<String> = acknowledged.lock().expect("lock").iter().cloned().collect();
    assert!(before_backup.len() >= 4000, "the writer got going");
    let backup_dir = dir.path().join("backup");
    let data_arg = data.to_string_lossy().to_string();
    let backup_arg = backup_dir.to_string_lossy().to_string();
    let printed =
        tokio::task::spawn_blocking(move || cli(&["backup", "--to", &backup_arg, "--data-dir", &data_arg], ""))
            .await
            .expect("backup ran");
    let after_backup = acknowledged.lock().expect("lock").len();
    assert!(printed.contains("backup in"), "{printed}");
    assert!(
        after_backup > before_backup.len(),
        "events kept coming in during the backup ({after_backup} vs {})",
        before_backup.len()
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    writer.await.expect("writer");
    let all_acknowledged: BTreeSet<String> = acknowledged.lock().expect("lock").iter().cloned().collect();
    assert_eq!(events_ids(&server).await, all_acknowledged, "the live server kept everything");
    let manifest: Value =
        serde_json::from_str(&std::fs::read_to_string(backup_dir.join("backup.json")).expect("manifest"))
            .expect("json");
    assert_eq!(manifest["schema_version"], json!(7));
    // A backup goes into a new directory only.
    let data_arg = data.to_string_lossy().to_string();
    let refused = cli_error(&["backup", "--to", &backup_dir.to_string_lossy(), "--data-dir", &data_arg]);
    assert!(refused.contains("not empty"), "{refused}");
    server.stop();

    let restored = dir.path().join("restored");
    let printed =
        cli(&["restore", "--from", &backup_dir.to_string_lossy(), "--data-dir", &restored.to_string_lossy()], "");
    assert!(printed.contains("restored into"), "{printed}");
    let refused =
        cli_error(&["restore", "--from", &backup_dir.to_string_lossy(), "--data-dir", &restored.to_string_lossy()]);
    assert!(refused.contains("already holds a database"), "{refused}");
    let server = Server::start(&restored, &[]);
    let in_backup = events_ids(&server).await;
    let missing: Vec<_> = before_backup.difference(&in_backup).take(5).collect();
    assert!(missing.is_empty(), "every event acknowledged before the backup began is restored; missing {missing:?}");
    assert!(in_backup.is_subset(&all_acknowledged), "nothing that was not acknowledged");
    let last_seq = manifest["last_event_seq"].as_u64().expect("seq");
    assert!(last_seq > 0 && in_backup.len() as u64 <= last_seq, "{} events, up to #{last_seq}", in_backup.len());
    // Batches are all-or-nothing in the copy: no torn batch.
    let batches: BTreeSet<&str> = in_backup.iter().filter_map(|id| id.split('-').next()).collect();
    assert_eq!(in_backup.len(), batches.len() * 200, "whole batches only");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_of_the_previous_release_is_migrated_after_a_backup() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Written by the previous release (schema 6) with make-data-schema-v6.sh.
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/data-schema-v6.tar.gz");
    let file = std::fs::File::open(&fixture).expect("fixture");
    let mut unpacked = flate2::read::GzDecoder::new(file);
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut unpacked, &mut bytes).expect("gunzip");
    let status = std::process::Command::new("tar")
        .args(["-x", "-C"])
        .arg(dir.path())
        .stdin(Stdio::piped())
        .spawn()
        .and_then(|mut tar| {
            tar.stdin.take().expect("stdin").write_all(&bytes)?;
            tar.wait()
        })
        .expect("tar");
    assert!(status.success());
    let data = dir.path().join("data");
    let server = Server::start(&data, &[]);
    let backups: Vec<_> = std::fs::read_dir(data.join("backups")).expect("a backup was made first").flatten().collect();
    assert_eq!(backups.len(), 1);
    let name = backups[0].file_name().to_string_lossy().to_string();
    assert!(name.starts_with("before-v7-"), "{name}");
    assert!(backups[0].path().join("troupe.duckdb").is_file());

    // Everything the previous release stored, read with its own secret key (admin scope).
    let client = reqwest::Client::new();
    let get = |path: &str| client.get(server.url(path)).bearer_auth("trs_fixture").send();
    let events: Value =
        get("/api/projects/default/events?limit=100").await.expect("answers").json().await.expect("json");
    assert_eq!(events["results"].as_array().map(Vec::len), Some(20));
    let acme: Value =
        get("/api/projects/default/groups/company/acme").await.expect("answers").json().await.expect("json");
    assert_eq!(acme["name"], json!("Acme Inc"), "{acme}");
    let insights: Value = get("/api/projects/default/insights").await.expect("answers").json().await.expect("json");
    assert_eq!(insights["results"][0]["name"], json!("Sign-ins by company"));
    let trend: Value = client
        .post(server.url("/api/projects/default/query"))
        .bearer_auth("trs_fixture")
        .json(&insights["results"][0]["query"])
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(trend["series"][0]["data"], json!([3.0, 3.0, 3.0, 3.0, 3.0]), "three sign-ins a day: {trend}");
    // The administrator of the previous release signs in and is the instance administrator.
    let login = client
        .post(server.url("/api/login"))
        .json(&json!({"email": "owner@fixture.test", "password": "fixture-password"}))
        .send()
        .await
        .expect("answers");
    assert_eq!(login.status(), 200);
    // The audit log (new in schema 7) works on the migrated store.
    let rotated = client
        .post(server.url("/api/projects/default/ingestion-keys/rotate"))
        .bearer_auth("trs_fixture")
        .send()
        .await
        .expect("answers");
    assert_eq!(rotated.status(), 200);
    let log: Value = get("/api/projects/default/audit").await.expect("answers").json().await.expect("json");
    assert_eq!(log["results"][0]["action"], json!("ingestion_key.rotate"));
    server.stop();
    let again = Server::start(&data, &[]);
    assert_eq!(
        std::fs::read_dir(data.join("backups")).expect("dir").count(),
        1,
        "no second backup: nothing to migrate"
    );
    again.stop();
    let migrate = cli(&["migrate", "--data-dir", &data.to_string_lossy()], "");
    assert!(migrate.contains("schema version 7"), "{migrate}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_commands_work_through_the_running_server_and_without_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data_arg = data.to_string_lossy().to_string();
    let server = Server::start(&data, &[]);
    let client = reqwest::Client::new();
    let added = cli(
        &[
            "user",
            "add",
            "viewer@t.test",
            "--project",
            "default",
            "--role",
            "viewer",
            "--password-stdin",
            "--data-dir",
            &data_arg,
        ],
        "viewer-pass-1\n",
    );
    assert!(added.contains("viewer@t.test"), "{added}");
    let login = |password: &'static str| {
        let client = client.clone();
        let url = server.url("/api/login");
        async move {
            let response = client
                .post(url)
                .json(&json!({"email": "viewer@t.test", "password": password}))
                .send()
                .await
                .expect("answers");
            let status = response.status().as_u16();
            let cookie = response.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default();
            let cookie = cookie.split(';').next().unwrap_or_default().to_string();
            let body: Value = response.json().await.unwrap_or(Value::Null);
            (status, cookie, body["csrf"].as_str().unwrap_or_default().to_string())
        }
    };
    let (status, cookie, csrf) = login("viewer-pass-1").await;
    assert_eq!(status, 200);
    let session: Value = client
        .get(server.url("/api/session"))
        .header("cookie", &cookie)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("json");
    assert_eq!(session["roles"]["1"], json!("viewer"), "{session}");
    let insights = |cookie: String, csrf: String| {
        let request = client
            .get(server.url("/api/projects/default/insights"))
            .header("cookie", cookie)
            .header("x-csrf-token", csrf);
        async move { request.send().await.expect("answers").status().as_u16() }
    };
    assert_eq!(insights(cookie.clone(), csrf.clone()).await, 200);
    let printed =
        cli(&["user", "reset-password", "viewer@t.test", "--password-stdin", "--data-dir", &data_arg], "viewer-pass-2");
    assert!(printed.contains("1 sessions ended"), "{printed}");
    assert_eq!(insights(cookie, csrf).await, 401, "the reset ended the session");
    assert_eq!(login("viewer-pass-1").await.0, 401);
    assert_eq!(login("viewer-pass-2").await.0, 200);
    // A made-up password is printed once.
    let printed = cli(&["user", "add", "ops@t.test", "--instance-admin", "--data-dir", &data_arg], "");
    assert!(printed.contains("password: "), "{printed}");

    let printed = cli(
        &["key", "create", "--name", "ci", "--scope", "query", "--expires-in-days", "30", "--data-dir", &data_arg],
        "",
    );
    let secret = printed.split_whitespace().find(|w| w.starts_with("trs_")).expect("the secret is printed").to_string();
    let query = json!({"kind": "trends", "series": [{"event": "x"}], "date_range": {"from": "-7d"}});
    let asked = reqwest::Client::new()
        .post(server.url("/api/projects/default/query"))
        .bearer_auth(&secret)
        .json(&query)
        .send()
        .await
        .expect("answers");
    assert_eq!(asked.status(), 200);
    let listed = cli(&["key", "list", "--data-dir", &data_arg], "");
    assert!(listed.contains("ci") && listed.contains("query") && !listed.contains(&secret), "{listed}");
    let printed = cli(&["key", "rotate-ingestion", "--overlap-hours", "1", "--data-dir", &data_arg], "");
    let new_key = printed.split_whitespace().find(|w| w.starts_with("tri_")).expect("new key").to_string();
    for key in [SITE, new_key.as_str()] {
        let sent = reqwest::Client::new()
            .post(server.url("/api/events"))
            .header("x-trodo-site-id", key)
            .json(&json!({"event_name": "x", "user_id": "u"}))
            .send()
            .await
            .expect("answers");
        assert_eq!(sent.status(), 200, "both keys work during the overlap");
    }
    cli(&["key", "revoke", "ci", "--data-dir", &data_arg], "");
    let asked = reqwest::Client::new()
        .post(server.url("/api/projects/default/query"))
        .bearer_auth(&secret)
        .json(&query)
        .send()
        .await
        .expect("answers");
    assert_eq!(asked.status(), 401);
    let error = cli_error(&["key", "create", "--name", "bad", "--scope", "root", "--data-dir", &data_arg]);
    assert!(error.contains("scope"), "{error}");
    let log: Value = common::get(&server, "/api/projects/default/audit").await;
    let actions: Vec<_> = log["results"]
        .as_array()
        .expect("log")
        .iter()
        .map(|e| format!("{} {}", e["actor"].as_str().unwrap_or_default(), e["action"].as_str().unwrap_or_default()))
        .collect();
    assert_eq!(actions, ["cli key.revoke", "cli ingestion_key.rotate", "cli key.create", "cli member.add"]);
    server.stop();
    assert!(!data.join("control.json").exists(), "the control file goes with the server");

    // Without a server the commands open the store themselves.
    let listed = cli(&["user", "list", "--data-dir", &data_arg], "");
    assert!(
        listed.contains("viewer@t.test  project 1: viewer") && listed.contains("ops@t.test  instance administrator"),
        "{listed}"
    );
    cli(&["user", "remove", "ops@t.test", "--data-dir", &data_arg], "");
    let error = cli_error(&["user", "remove", "ops@t.test", "--data-dir", &data_arg]);
    assert!(error.contains("no account"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_finishes_the_batch_under_way() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let server = Server::start(&data, &["--no-rate-limits", "--shutdown-timeout-secs", "20"]);
    let events: Vec<Value> = (0..20_000)
        .map(|i| json!({"event_name": "Big", "user_id": format!("u{}", i % 4), "event_id": format!("big-{i}"), "custom_properties": {"n": i}}))
        .collect();
    let url = server.url("/api/events/bulk");
    let sending = tokio::spawn(async move {
        reqwest::Client::new().post(url).header("x-trodo-site-id", SITE).json(&json!({"events": events})).send().await
    });
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    let stopped = tokio::task::spawn_blocking(move || server.stop()).await.expect("stopped");
    let response = sending.await.expect("sent").expect("the request under way was answered");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["accepted"], json!(20_000), "{body}");
    assert!(stopped.success(), "a clean exit");
    let server = Server::start(&data, &[]);
    assert_eq!(events_ids(&server).await.len(), 20_000, "every event of the acknowledged batch is stored");
    server.stop();
}

/// A SIGTERM sent the moment the server says it listens stops it (the signal is listened for
/// before that line; once it was lost in that gap and the server ran on).
#[test]
fn a_sigterm_right_after_start_stops_the_server() {
    for round in 0..8 {
        let dir = tempfile::tempdir().expect("tempdir");
        let server = Server::start(&dir.path().join("data"), &[]);
        let pid = server.pid().to_string();
        let (done, stopped) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(server.stop());
        });
        match stopped.recv_timeout(std::time::Duration::from_secs(20)) {
            Ok(status) => assert!(status.success(), "round {round}: {status}"),
            Err(_) => {
                let _ = std::process::Command::new("kill").args(["-9", &pid]).status();
                panic!("round {round}: the server ignored SIGTERM for 20 s");
            }
        }
    }
}
