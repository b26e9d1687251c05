//! Erasing and anonymizing a person on the embedded store: afterwards, and after a restart, no row
//! of any table holds what was removed (ids, email, person id; an anonymized person's former ids
//! and personal fields), and the in-memory columns loaded before no longer count it.

use chrono::{TimeZone, Utc};
use serde_json::json;
use troupe_core::{Command, TrackEvent};
use troupe_duckdb::{DuckStore, EmbeddedConfig, DB_FILE};
use troupe_store::conformance::{anonymize_a_merged_person, erase_a_merged_person, erase_for_good, project};
use troupe_store::Store;

/// Unique users of "Report Exported" on 2026-11-02, answered from the in-memory columns.
async fn users_reporting(store: &DuckStore, project: u32) -> f64 {
    let question: troupe_query::Insight = serde_json::from_value(json!({
        "kind": "trends", "interval": "day", "date_range": {"from": "2026-11-02", "to": "2026-11-02"},
        "series": [{"event": "Report Exported", "math": "unique"}]
    }))
    .expect("a question");
    let now = Utc.with_ymd_and_hms(2026, 11, 3, 0, 0, 0).single().expect("a time");
    let answer = troupe_query::run(store, project, &question, now).await.expect("answered");
    let answer = serde_json::to_value(&answer).expect("JSON");
    answer["series"][0]["aggregated_value"].as_f64().unwrap_or(f64::NAN)
}

/// Every row of every table as text, and every column snapshot's bytes.
fn every_row(dir: &std::path::Path) -> Vec<String> {
    let conn = duckdb::Connection::open(dir.join(DB_FILE)).expect("the database opens");
    let mut tables =
        conn.prepare("SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").expect("tables");
    let names: Vec<String> =
        tables.query_map([], |r| r.get(0)).expect("tables").collect::<Result<_, _>>().expect("names");
    let mut rows = Vec::new();
    for name in names {
        let mut select = conn.prepare(&format!("SELECT CAST(t AS VARCHAR) FROM \"{name}\" t")).expect("select");
        let texts = select.query_map([], |r| r.get::<_, String>(0)).expect("rows");
        rows.extend(texts.map(|t| format!("{name}: {}", t.expect("row"))));
    }
    for file in std::fs::read_dir(dir.join(troupe_duckdb::SNAPSHOT_DIR)).expect("the snapshot directory") {
        let bytes = std::fs::read(file.expect("an entry").path()).expect("a snapshot");
        rows.push(format!("snapshot: {}", String::from_utf8_lossy(&bytes)));
    }
    rows
}

/// A store in a temporary directory with a project holding someone else's earlier event, and a
/// question asked once, so that the project's columns are loaded before what the test does.
async fn store_with_loaded_columns() -> (tempfile::TempDir, EmbeddedConfig, DuckStore, u32) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = EmbeddedConfig { data_dir: Some(dir.path().to_path_buf()), ..EmbeddedConfig::default() };
    let store = DuckStore::open(config.clone()).expect("opens");
    let p = project(&store, "p").await;
    let earlier = TrackEvent {
        event: "Report Exported".into(),
        distinct_id: "carol".into(),
        timestamp: Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).single(),
        ..TrackEvent::default()
    };
    store.apply(p, vec![Command::Track(earlier)]).await.expect("stored")[0].clone().expect("valid");
    assert_eq!(users_reporting(&store, p).await, 1.0);
    (dir, config, store, p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_person_leaves_no_row_and_stays_erased_after_a_restart() {
    let (dir, config, store, p) = store_with_loaded_columns().await;

    let gone = erase_a_merged_person(&store, p).await;
    assert_eq!(users_reporting(&store, p).await, 2.0, "carol and bob; the erased person is not counted");
    drop(store);

    let rows = every_row(dir.path());
    assert!(rows.iter().any(|r| r.contains("bob")), "the check reads the rows: {rows:?}");
    for text in &gone {
        let found: Vec<&String> = rows.iter().filter(|r| r.contains(text.as_str())).collect();
        assert!(found.is_empty(), "{text} is still stored: {found:?}");
    }
    let store = DuckStore::open(config).expect("reopens");
    assert!(store.person(p, "ann@example.com", 0).await.expect("read").is_none());
    assert_eq!(users_reporting(&store, p).await, 2.0, "still erased after a restart");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymized_person_leaves_no_personal_field_after_a_restart() {
    let (dir, config, store, p) = store_with_loaded_columns().await;
    let (gone, pseudonym) = anonymize_a_merged_person(&store, p).await;
    drop(store);
    let rows = every_row(dir.path());
    assert!(rows.iter().any(|r| r.contains(&pseudonym)), "the pseudonym is stored: {rows:?}");
    assert!(rows.iter().any(|r| r.contains("bob@example.com")), "other people keep their fields");
    for text in &gone {
        let found: Vec<&String> = rows.iter().filter(|r| r.contains(text.as_str())).collect();
        assert!(found.is_empty(), "{text} is still stored: {found:?}");
    }
    let store = DuckStore::open(config).expect("reopens");
    assert!(store.person(p, &pseudonym, 0).await.expect("read").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_erased_for_good_stays_out_after_a_restart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = EmbeddedConfig { data_dir: Some(dir.path().to_path_buf()), ..EmbeddedConfig::default() };
    let store = DuckStore::open(config.clone()).expect("opens");
    let p = project(&store, "p").await;
    let later = erase_for_good(&store, p).await;
    drop(store);
    let rows = every_row(dir.path());
    for id in ["ann", "anon-1"] {
        assert!(!rows.iter().any(|r| r.contains(id)), "{id} is kept as text: {rows:?}");
    }
    let store = DuckStore::open(config).expect("reopens");
    let outcomes = store.apply(p, later).await.expect("applied");
    assert!(outcomes.iter().all(|o| matches!(o, Ok(troupe_core::Outcome::Dropped))), "{outcomes:?}");
    assert!(store.person(p, "ann", 0).await.expect("read").is_none());
}
