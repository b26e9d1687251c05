//! `troupe` on a real ClickHouse server: refused until migrated (with what to do), `troupe
//! migrate`, then ingestion and insights through the binary, and a restart that reloads the state
//! from ClickHouse (a resent batch is still recognised).

mod common;

use common::{post_query, troupe, Server, SITE};
use serde_json::{json, Value};
use troupe_clickhouse::testing::{ClickHouseCluster, Engine};

async fn send_batch(server: &Server) {
    let company = |user: &str| if user == "cat" { "globex" } else { "acme" };
    let event = |user: &str, name: &str, minute: u32| {
        json!({"distinct_id": user, "event_name": name, "event_id": format!("{user}-{name}"),
               "timestamp": format!("2026-03-02T09:{minute:02}:00Z"), "groups": {"company": company(user)}})
    };
    let body = json!({"events": [
        event("ann", "Signed In", 0), event("ben", "Signed In", 1), event("cat", "Signed In", 2),
        event("ann", "Report Exported", 10), event("cat", "Report Exported", 11)
    ]});
    let r = reqwest::Client::new()
        .post(server.url("/api/events/bulk"))
        .header("X-Trodo-Site-Id", SITE)
        .json(&body)
        .send()
        .await
        .expect("answers");
    assert!(r.status().is_success(), "{}", r.status());
}

async fn counts(server: &Server, count_by: Value) -> Vec<u64> {
    let funnel = json!({"kind": "funnel", "count_by": count_by,
                        "date_range": {"from": "2026-03-01", "to": "2026-03-03"},
                        "steps": [{"event": "Signed In"}, {"event": "Report Exported"}]});
    let answer = post_query(server, funnel).await;
    answer["steps"].as_array().into_iter().flatten().filter_map(|s| s["count"].as_u64()).collect()
}

async fn serve_on_clickhouse_after_migrate(engine: Engine) {
    let clickhouse = ClickHouseCluster::start_on(engine, 1).expect("ClickHouse starts");
    let url = clickhouse.url("troupe_cli");
    let dir = tempfile::tempdir().expect("temp dir");

    let refused = troupe()
        .args(["serve", "--addr", "127.0.0.1:0", "--store", &url])
        .env("TROUPE_DEFAULT_PROJECT_KEY", SITE)
        .output()
        .expect("runs");
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "an unmigrated database is refused");
    assert!(stderr.contains("troupe migrate"), "the error says what to do: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");

    let migrated = troupe().args(["migrate", "--store", &url]).output().expect("runs");
    let stdout = String::from_utf8_lossy(&migrated.stdout);
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    assert!(stdout.contains(&format!("schema version {}", troupe_clickhouse::SCHEMA_VERSION)), "{stdout}");
    let again = troupe().args(["migrate", "--store", &url]).output().expect("runs");
    assert!(again.status.success(), "migrate is idempotent: {}", String::from_utf8_lossy(&again.stderr));

    let server = Server::start(dir.path(), &["--store", &url]);
    assert!(server.banner.iter().any(|l| l.contains("ClickHouse database 'troupe_cli'")), "{:?}", server.banner);
    send_batch(&server).await;
    assert_eq!(counts(&server, json!({"group_type": "company"})).await, vec![2, 2]);

    // A second writer on the same database is refused while the first one runs (a writing
    // command; `demo` would otherwise finish on its own); a reader is not.
    let second = troupe().args(["demo", "--companies", "1", "--days", "1", "--store", &url]).output().expect("runs");
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "a second writer is refused");
    assert!(stderr.contains("another troupe process is the writer") && stderr.contains("--writer-url"), "{stderr}");
    let listed = troupe().args(["project", "list", "--store", &url]).output().expect("runs");
    assert!(String::from_utf8_lossy(&listed.stdout).contains("default"), "a reader opens alongside the writer");
    assert_eq!(counts(&server, json!("users")).await, vec![3, 2]);
    assert!(server.stop().success());

    // A new process loads its state from ClickHouse: the same batch again is all duplicates. (It
    // may start at once: the first writer gave the database up when it stopped.)
    let server = Server::start(dir.path(), &["--store", &url]);
    send_batch(&server).await;
    assert_eq!(counts(&server, json!("users")).await, vec![3, 2], "retried events are not counted twice");
    assert!(server.stop().success());
}

#[test]
fn a_bad_store_url_is_a_readable_error() {
    let out = troupe().args(["migrate", "--store", "clickhouse://a:1,b:2/db"]).output().expect("runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("cluster"), "{stderr}");
    let out = troupe().args(["migrate", "--store", "postgres://x"]).output().expect("runs");
    assert!(String::from_utf8_lossy(&out.stderr).contains("--store must be 'embedded' or a clickhouse:// URL"));
}

/// Two troupe processes on one ClickHouse database: the writer and one forwarding its writes to
/// it. Increments of one group property sent concurrently through both are all counted, and an
/// event retried through the other process is stored once.
async fn two_servers_lose_no_update_and_store_a_retry_once(engine: Engine) {
    const INTERNAL: &str = "internal-test-secret";
    const PER_SERVER: usize = 40;
    let clickhouse = ClickHouseCluster::start_on(engine, 1).expect("ClickHouse starts");
    let url = clickhouse.url("troupe_two_servers");
    let migrated = troupe().args(["migrate", "--store", &url]).output().expect("runs");
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let (dir_a, dir_b) = (tempfile::tempdir().expect("temp dir"), tempfile::tempdir().expect("temp dir"));
    let writer = Server::start(dir_a.path(), &["--store", &url, "--internal-secret", INTERNAL]);
    let forwarder =
        Server::start(dir_b.path(), &["--store", &url, "--writer-url", &writer.base, "--internal-secret", INTERNAL]);

    let client = reqwest::Client::new();
    let increment = |server: &Server| {
        let (client, url) = (client.clone(), server.url("/api/sdk/groups/profile/increment"));
        async move {
            for i in 0..PER_SERVER {
                // Distinct increments carry distinct request ids (identical ones without an id
                // inside the retry window are taken as resends of one).
                let request_id = format!("{url}-{i}");
                let r = client
                    .post(&url)
                    .header("X-Trodo-Site-Id", SITE)
                    .json(&json!({"groupKey": "company", "groupId": "acme", "property": "seats", "value": 1,
                                  "request_id": request_id}))
                    .send()
                    .await
                    .expect("answers");
                assert!(r.status().is_success(), "{}", r.status());
            }
        }
    };
    tokio::join!(increment(&writer), increment(&forwarder));
    for server in [&writer, &forwarder] {
        let acme = common::get(server, "/api/projects/default/groups/company/acme").await;
        assert_eq!(acme["properties"]["seats"], json!(2 * PER_SERVER), "no increment lost: {acme}");
    }

    // The same event through one process, then retried through the other.
    let event = json!({"events": [{"distinct_id": "ann", "event_name": "Signed In", "event_id": "retry-1",
                                   "timestamp": "2026-03-02T09:00:00Z"}]});
    for server in [&writer, &forwarder] {
        let r = client
            .post(server.url("/api/events/bulk"))
            .header("X-Trodo-Site-Id", SITE)
            .json(&event)
            .send()
            .await
            .expect("answers");
        assert!(r.status().is_success(), "{}", r.status());
    }
    let events = common::get(&forwarder, "/api/projects/default/events?event=Signed%20In").await;
    assert_eq!(events["results"].as_array().map(Vec::len), Some(1), "stored once: {events}");

    // Without the secret the internal routes refuse.
    let refused = client
        .post(writer.url("/internal/v1/projects/1/apply"))
        .bearer_auth("wrong")
        .json(&json!([]))
        .send()
        .await
        .expect("answers");
    assert_eq!(refused.status().as_u16(), 401);

    // Keys and the audit log live in ClickHouse: a key made through one process opens the
    // other, a rotation made on one is honoured by the other (it reads keys again within 10 s),
    // and both read the same audit log.
    let created = common::post(&writer, "/api/projects/default/keys", json!({"name": "shared", "scope": "read"})).await;
    let shared = created["secret"].as_str().expect("secret").to_string();
    let read =
        client.get(forwarder.url("/api/projects/default/persons")).bearer_auth(&shared).send().await.expect("answers");
    assert_eq!(read.status().as_u16(), 200, "a key made on the writer opens the forwarder");
    let rotated =
        common::post(&forwarder, "/api/projects/default/ingestion-keys/rotate", json!({"overlap_hours": 0})).await;
    let new_key = rotated["key"].as_str().expect("key").to_string();
    let send = |server: &Server, key: &str| {
        client
            .post(server.url("/api/events"))
            .header("X-Trodo-Site-Id", key)
            .json(&json!({"event_name": "k", "user_id": "u"}))
            .send()
    };
    assert_eq!(send(&writer, &new_key).await.expect("answers").status().as_u16(), 200, "a new key is found at once");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let status = send(&writer, SITE).await.expect("answers").status().as_u16();
        if status == 401 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the writer still takes the retired key after 15 s");
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    // The operator's CLI writes keys and accounts straight to ClickHouse, beside the running
    // writer (it does not take the writer's place).
    let made = troupe()
        .args(["key", "create", "--name", "from-cli", "--scope", "read", "--store", &url])
        .output()
        .expect("runs");
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let printed = String::from_utf8_lossy(&made.stdout).to_string();
    let cli_key = printed.split_whitespace().find(|w| w.starts_with("trs_")).expect("secret printed").to_string();
    // An unknown key makes a server read keys again at most once a second (else every 10 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(12);
    loop {
        let read = client.get(forwarder.url("/api/projects/default/persons")).bearer_auth(&cli_key).send().await;
        if read.expect("answers").status().as_u16() == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "a key made by the CLI opens a running server");
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let added =
        troupe().args(["user", "add", "ops@t.test", "--instance-admin", "--store", &url]).output().expect("runs");
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let printed = String::from_utf8_lossy(&added.stdout).to_string();
    let password =
        printed.split("password: ").nth(1).and_then(|r| r.split_whitespace().next()).expect("password printed");
    let login = client
        .post(writer.url("/api/login"))
        .json(&json!({"email": "ops@t.test", "password": password}))
        .send()
        .await
        .expect("answers");
    assert_eq!(login.status().as_u16(), 200, "an account made by the CLI signs in");
    for server in [&writer, &forwarder] {
        let log = common::get(server, "/api/projects/default/audit").await;
        let actions: Vec<_> = log["results"]
            .as_array()
            .expect("log")
            .iter()
            .map(|e| {
                format!("{} {}", e["actor"].as_str().unwrap_or_default(), e["action"].as_str().unwrap_or_default())
            })
            .collect();
        assert_eq!(actions, ["cli key.create", "key:default ingestion_key.rotate", "key:default key.create"]);
    }
    let backup = troupe().args(["backup", "--to", "/tmp/never", "--store", &url]).output().expect("runs");
    assert!(!backup.status.success());
    assert!(
        String::from_utf8_lossy(&backup.stderr).contains("docs/clickhouse.md"),
        "backups of ClickHouse are ClickHouse's"
    );
    assert!(forwarder.stop().success());
    assert!(writer.stop().success());
}

/// `troupe bench --clickhouse URL` loads the data set into the ClickHouse store and answers every
/// question there as the embedded store does (the run fails otherwise), reporting both times.
fn bench_on_clickhouse_gives_the_embedded_answers(engine: Engine) {
    let clickhouse = ClickHouseCluster::start_on(engine, 1).expect("ClickHouse starts");
    let dir = tempfile::tempdir().expect("temp dir");
    let report = dir.path().join("report.json");
    let output = troupe()
        .args(["bench", "--events", "20000", "--runs", "1", "--ingest-events", "0", "--references", "server"])
        .arg("--clickhouse")
        .arg(clickhouse.url("troupe_bench"))
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--out")
        .arg(&report)
        .output()
        .expect("bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("loaded through the ClickHouse store's writer"), "{stdout}");
    let json: Value = serde_json::from_slice(&std::fs::read(&report).expect("report written")).expect("JSON");
    let questions = json["troupe_on_clickhouse"]["questions"].as_array().cloned().unwrap_or_default();
    assert_eq!(questions.len(), 8, "{json}");
    for q in &questions {
        assert_eq!(q["same_answer_as_embedded"], json!(true), "{q}");
        assert!(q["warm_ms"].as_f64().unwrap_or(0.0) > 0.0, "{q}");
    }
    // The reference: the same questions in ClickHouse's native SQL on a copy of the events, timed
    // beside troupe. Counts that mean the same in both (distinct companies per day, active
    // company-days, events per plan) agree exactly; `windowFunnel` counts seconds and may differ.
    let references = json["clickhouse_native_references"]["references"].as_array().cloned().unwrap_or_default();
    // Current ClickHouse is timed on the bench's schema and on the tuned one; 18.16 on the first.
    assert_eq!(references.len(), if engine == Engine::Current { 2 } else { 1 }, "{json}");
    let native = references[0]["questions"].as_array().cloned().unwrap_or_default();
    assert_eq!(native.len(), 8, "{json}");
    for reference in &references[1..] {
        let questions = reference["questions"].as_array().cloned().unwrap_or_default();
        assert_eq!(reference["schema"], "tuned schema", "{reference}");
        for (tuned, plain) in questions.iter().zip(&native) {
            assert_eq!(tuned["answer"], plain["answer"], "the tuned schema answers the same: {tuned}");
        }
    }
    // One table of troupe beside every reference, with the best one and troupe's ratio to it.
    let summary = json["clickhouse_native_references"]["summary"].as_array().cloned().unwrap_or_default();
    assert_eq!(summary.len(), 8, "{json}");
    for row in &summary {
        assert!(row["ratio_troupe_to_best"].as_f64().unwrap_or(0.0) > 0.0, "{row}");
        assert!(row["references_warm_ms"]["DuckDB SQL"].as_f64().is_some(), "{row}");
    }
    assert!(stdout.contains("every reference, warm ms"), "{stdout}");
    for q in &native {
        assert!(q["answer"].as_f64().unwrap_or(0.0) > 0.0, "{q}");
        assert!(q["ratio_troupe_to_native"].as_f64().unwrap_or(0.0) > 0.0, "{q}");
        // troupe's own SQL on the same ClickHouse, beside the native functions.
        assert!(q["ratio_troupe_on_clickhouse_to_native"].as_f64().unwrap_or(0.0) > 0.0, "{q}");
    }
    for exact in [0, 4, 5] {
        assert_eq!(native[exact]["answer"], native[exact]["troupe_answer"], "{}", native[exact]);
    }
    assert!(stdout.contains("ClickHouse native reference on clickhouse-server"), "{stdout}");
}

/// ClickHouse goes away mid-ingest and comes back (a proxy between troupe and ClickHouse drops
/// every connection for a while) while the client retries each batch until it is acknowledged:
/// every acknowledged event is stored exactly once, and the persons first seen during the
/// outage exist.
async fn a_clickhouse_outage_mid_ingest_loses_nothing_acknowledged_and_stores_it_once(engine: Engine) {
    let clickhouse = ClickHouseCluster::start_on(engine, 1).expect("ClickHouse starts");
    // Signed in with a password, which must appear in no reply and no log line.
    let url = clickhouse.url_with_password("troupe_outage");
    let migrated = troupe().args(["migrate", "--store", &url]).output().expect("runs");
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let node = clickhouse.config("troupe_outage").nodes[0].clone();
    let proxy =
        std::sync::Arc::new(common::proxy::FaultProxy::with_fault(&node, common::proxy::Fault::OutageOnly).await);
    let proxied = url.replace(node.trim_start_matches("http://"), proxy.base.trim_start_matches("http://"));
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("serve.log");
    let server = Server::start_logging_to(&dir.path().join("data"), &["--store", &proxied], &log);

    // The outage: three seconds without ClickHouse.
    let outage = || {
        proxy.set_down(true);
        let proxy = proxy.clone();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            proxy.set_down(false);
        });
    };
    let replies = ingest_retrying_through(&server, outage).await;
    every_acknowledged_event_once(&server, &node, "troupe_outage").await;
    server.stop();
    let password = troupe_clickhouse::testing::TEST_PASSWORD;
    let log = std::fs::read_to_string(&log).expect("the server's log");
    assert!(log.contains("ClickHouse"), "the outage was logged: {log}");
    assert!(!replies.contains(password), "a reply holds the password: {replies}");
    assert!(!log.contains(password), "the log holds the password");
}

/// One shard of a two-shard cluster is killed (`kill -9`) mid-ingest and started again on its
/// data a few seconds later, while the client retries each batch until it is acknowledged: every
/// acknowledged event is stored exactly once (a batch the live shard took part of is not
/// written there twice), and the persons first seen during the outage exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_outage_mid_ingest_loses_nothing_acknowledged_and_stores_it_once() {
    let clickhouse =
        std::sync::Arc::new(std::sync::Mutex::new(ClickHouseCluster::start(2).expect("ClickHouse starts")));
    let (url, node) = {
        let cluster = clickhouse.lock().expect("cluster");
        (cluster.url("troupe_shard_outage"), cluster.config("troupe_shard_outage").nodes[0].clone())
    };
    let migrated = troupe().args(["migrate", "--store", &url]).output().expect("runs");
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &["--store", &url]);

    // The outage: the second shard killed, started again after three seconds.
    let outage = || {
        let cluster = clickhouse.clone();
        clickhouse.lock().expect("cluster").servers[1].kill();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            tokio::task::spawn_blocking(move || {
                cluster.lock().expect("cluster").servers[1].revive().expect("the shard starts again")
            })
            .await
            .expect("revived");
        });
    };
    ingest_retrying_through(&server, outage).await;
    every_acknowledged_event_once(&server, &node, "troupe_shard_outage").await;
    assert!(server.stop().success());
}

/// An insert of events that reaches ClickHouse late — after troupe took the write for failed,
/// read its state back and wrote the client's retry — is stored once: ClickHouse drops it by its
/// deduplication token (the database's own line behind the writer's read-back). Current
/// ClickHouse only: 18.16 has no insert tokens (docs/clickhouse.md).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_insert_arriving_after_its_retry_is_stored_once() {
    const EVENTS: usize = 50;
    let clickhouse = ClickHouseCluster::start_on(Engine::Current, 1).expect("ClickHouse starts");
    let url = clickhouse.url("troupe_late");
    let migrated = troupe().args(["migrate", "--store", &url]).output().expect("runs");
    assert!(migrated.status.success(), "{}", String::from_utf8_lossy(&migrated.stderr));
    let node = clickhouse.config("troupe_late").nodes[0].clone();
    let proxy = common::proxy::FaultProxy::with_fault(&node, common::proxy::Fault::LateEventsInsert).await;
    let proxied = url.replace(node.trim_start_matches("http://"), proxy.base.trim_start_matches("http://"));
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &["--store", &proxied]);

    let events: Vec<Value> = (0..EVENTS)
        .map(|i| json!({"event_name": "Tick", "distinct_id": "late-user", "event_id": format!("late-{i}")}))
        .collect();
    let body = json!({"events": events});
    let refused = send_until_acknowledged(&server, &body).await.len();
    assert_eq!(
        (refused, proxy.events_inserts()),
        (1, 2),
        "the first insert was held back and refused, the retry's went"
    );
    // The held-back insert reaches ClickHouse 1.5 s after it was sent.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    let counts = stored_events(&node, "troupe_late").await;
    assert_eq!(counts, (EVENTS as u64, EVENTS as u64), "stored once");
    assert!(server.stop().success());
}

/// Post a batch of events until troupe acknowledges it (each refusal must be a 503, worth a
/// retry, and the batch must come back with nothing rejected); the refusals' bodies.
async fn send_until_acknowledged(server: &Server, body: &Value) -> Vec<String> {
    let client = reqwest::Client::new();
    let started = std::time::Instant::now();
    let mut refusals = Vec::new();
    loop {
        let r = client
            .post(server.url("/api/events/bulk"))
            .header("X-Trodo-Site-Id", SITE)
            .json(body)
            .send()
            .await
            .expect("troupe answers");
        if r.status().is_success() {
            let reply: Value = r.json().await.expect("JSON");
            assert_eq!(reply["rejected"], json!([]), "{reply}");
            return refusals;
        }
        assert_eq!(r.status().as_u16(), 503, "an unavailable store is a 503, worth a retry");
        refusals.push(r.text().await.unwrap_or_default());
        assert!(started.elapsed() < std::time::Duration::from_secs(90), "never acknowledged");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// `(rows, distinct event ids)` of a database's events table, read from ClickHouse directly.
async fn stored_events(node: &str, database: &str) -> (u64, u64) {
    #[derive(serde::Deserialize)]
    struct Counts {
        events: u64,
        ids: u64,
    }
    let sql = format!(
        "SELECT toUInt32(count()) AS events, toUInt32(uniqExact(uuid)) AS ids FROM {database}.events FORMAT JSONEachRow"
    );
    let answer = reqwest::Client::new().post(format!("{node}/")).body(sql).send().await.expect("ClickHouse answers");
    let text = answer.text().await.expect("text");
    let counts: Counts = serde_json::from_str(text.trim()).unwrap_or_else(|e| panic!("{text}: {e}"));
    (counts.events, counts.ids)
}

const OUTAGE_BATCHES: usize = 24;
const OUTAGE_PER_BATCH: usize = 50;

/// Send [`OUTAGE_BATCHES`] batches of events with ids, one person per batch, each retried until
/// acknowledged; `outage` starts before the ninth. Returns the refusals' bodies.
async fn ingest_retrying_through(server: &Server, outage: impl FnOnce()) -> String {
    let mut outage = Some(outage);
    let mut refused = 0;
    let mut replies = String::new();
    for b in 0..OUTAGE_BATCHES {
        if b == 8 {
            if let Some(start) = outage.take() {
                start();
            }
        }
        let events: Vec<Value> = (0..OUTAGE_PER_BATCH)
            .map(|i| json!({"event_name": "Tick", "distinct_id": format!("user-{b}"), "event_id": format!("b{b}-{i}")}))
            .collect();
        let body = json!({"events": events});
        for reply in send_until_acknowledged(server, &body).await {
            replies.push_str(&reply);
            refused += 1;
        }
    }
    assert!(refused > 0, "the outage refused some batches");
    replies
}

/// Every event [`ingest_retrying_through`] sent is in ClickHouse once, and every person exists.
async fn every_acknowledged_event_once(server: &Server, node: &str, database: &str) {
    let expected = (OUTAGE_BATCHES * OUTAGE_PER_BATCH) as u64;
    let counts = stored_events(node, database).await;
    assert_eq!(counts, (expected, expected), "every acknowledged event exactly once");
    for b in 0..OUTAGE_BATCHES {
        let person = common::get(server, &format!("/api/projects/default/persons/user-{b}")).await;
        assert_eq!(person["distinct_ids"], json!([format!("user-{b}")]));
    }
}

// Each test on Debian's ClickHouse 18.16 and on current ClickHouse (26.x, chdb-core).

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_clickhouse_after_migrate_on_18_16() {
    serve_on_clickhouse_after_migrate(Engine::Debian).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_on_clickhouse_after_migrate_on_current() {
    serve_on_clickhouse_after_migrate(Engine::Current).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_lose_no_update_and_store_a_retry_once_on_18_16() {
    two_servers_lose_no_update_and_store_a_retry_once(Engine::Debian).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_lose_no_update_and_store_a_retry_once_on_current() {
    two_servers_lose_no_update_and_store_a_retry_once(Engine::Current).await;
}

#[test]
fn bench_on_clickhouse_gives_the_embedded_answers_on_18_16() {
    bench_on_clickhouse_gives_the_embedded_answers(Engine::Debian);
}

#[test]
fn bench_on_clickhouse_gives_the_embedded_answers_on_current() {
    bench_on_clickhouse_gives_the_embedded_answers(Engine::Current);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clickhouse_outage_mid_ingest_loses_nothing_acknowledged_and_stores_it_once_on_18_16() {
    a_clickhouse_outage_mid_ingest_loses_nothing_acknowledged_and_stores_it_once(Engine::Debian).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clickhouse_outage_mid_ingest_loses_nothing_acknowledged_and_stores_it_once_on_current() {
    a_clickhouse_outage_mid_ingest_loses_nothing_acknowledged_and_stores_it_once(Engine::Current).await;
}
