//! The in-memory columns answer a scan exactly as the database does: loaded before the writes
//! (so every batch arrives as an append), loaded after them (reopened store), through identity
//! merges, deleted persons, untyped group ids, several ids of one type on an event, a group
//! type deleted and its slot reused, and a batch longer than DuckDB's vector.
//!
//! A request that reads event properties is answered from the database (the columns do not keep
//! them), so each request is asked twice, with and without properties, and compared.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use troupe_core::{Command, MembershipOp, ProfileOp, TrackEvent};
use troupe_duckdb::{DuckStore, EmbeddedConfig};
use troupe_store::{EventScan, NewProject, ScanRequest, Store};

const ROUNDS: usize = 12;
const COMMANDS_PER_ROUND: usize = 150;
/// The last round is one batch longer than DuckDB's vector (2048 rows), which the writer
/// appends as several Arrow batches: their group columns must line up with their events.
const COMMANDS_IN_LAST_ROUND: usize = 5_000;

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 0, 0, 0).single().unwrap_or_default()
}

/// One round of commands: mostly events, with the identity and group changes the columns must
/// follow.
fn round(rng: &mut StdRng, round: usize) -> Vec<Command> {
    let mut commands = Vec::new();
    let user = |rng: &mut StdRng| format!("u{}", rng.gen_range(0..40));
    let commands_in_round = if round == ROUNDS - 1 { COMMANDS_IN_LAST_ROUND } else { COMMANDS_PER_ROUND };
    for i in 0..commands_in_round {
        let who = user(rng);
        let command = match rng.gen_range(0..20) {
            0 => Command::Identify { anon_distinct_id: format!("anon-{}", rng.gen_range(0..40)), distinct_id: who },
            1 => Command::Alias { distinct_id: who, alias: user(rng) },
            2 if round > 2 => Command::PersonProfile { distinct_id: who, op: ProfileOp::Delete },
            3 => Command::Membership {
                distinct_id: who,
                group_type: ["company", "team"][rng.gen_range(0..2)].into(),
                op: MembershipOp::Set(vec![format!("g{}", rng.gen_range(0..8))]),
            },
            4 => Command::GroupProfile {
                group_type: "company".into(),
                group_key: format!("g{}", rng.gen_range(0..8)),
                name: None,
                op: ProfileOp::Set(serde_json::from_value(json!({"plan": "pro"})).unwrap_or_default()),
            },
            _ => {
                let distinct_id = if rng.gen_bool(0.3) { format!("anon-{}", rng.gen_range(0..40)) } else { who };
                let mut groups = Vec::new();
                if rng.gen_bool(0.2) {
                    let n = rng.gen_range(1..4);
                    groups.push(("company".to_string(), (0..n).map(|k| format!("g{}", (i + k) % 9)).collect()));
                }
                let untyped = if rng.gen_bool(0.1) { vec![format!("g{}", rng.gen_range(0..10))] } else { Vec::new() };
                Command::Track(TrackEvent {
                    event: ["a", "b", "c"][rng.gen_range(0..3)].into(),
                    distinct_id,
                    timestamp: Some(base() + Duration::minutes(rng.gen_range(0..60 * 24 * 20))),
                    groups,
                    untyped_groups: untyped,
                    ..TrackEvent::default()
                })
            }
        };
        commands.push(command);
    }
    if round == ROUNDS / 2 {
        commands.push(Command::DeleteGroupType { group_type: "team".into() });
    }
    commands
}

fn requests() -> Vec<ScanRequest> {
    let all = ScanRequest {
        group_types: vec!["company".into(), "team".into(), "nothing".into()],
        persons: true,
        person_details: true,
        ..ScanRequest::default()
    };
    vec![
        all.clone(),
        ScanRequest {
            from: Some(base() + Duration::days(3)),
            to: Some(base() + Duration::days(9)),
            events: Some(vec!["a".into(), "c".into()]),
            group_types: vec!["team".into()],
            ..ScanRequest::default()
        },
        ScanRequest { events: Some(vec!["b".into()]), persons: true, ..ScanRequest::default() },
        ScanRequest { group_types: vec!["company".into()], ..all },
    ]
}

/// A scan as comparable rows: each event's time, name, person key and group keys per requested
/// type, sorted; and the persons' and groups' details.
fn normalized(scan: &EventScan) -> (Vec<String>, BTreeMap<String, String>) {
    let mut rows: Vec<String> = (0..scan.len())
        .map(|i| {
            let person = scan.person.get(i).map(|&p| scan.persons[p as usize].key.clone());
            let groups: Vec<Vec<&str>> = scan
                .groups
                .iter()
                .map(|g| {
                    let mut keys: Vec<&str> = g.of(i).iter().map(|&id| g.actors[id as usize].key.as_str()).collect();
                    keys.sort();
                    keys
                })
                .collect();
            format!("{} {} {person:?} {groups:?}", scan.ts[i], scan.names[scan.name[i] as usize])
        })
        .collect();
    rows.sort();
    let mut actors = BTreeMap::new();
    for p in &scan.persons {
        let mut ids = p.distinct_ids.clone();
        ids.sort();
        actors.insert(format!("person {}", p.key), format!("{ids:?} {:?} {:?}", p.properties, p.created_at));
    }
    for g in &scan.groups {
        for a in &g.actors {
            actors.insert(format!("{} {}", g.group_type, a.key), format!("{:?} {:?}", a.properties, a.created_at));
        }
    }
    (rows, actors)
}

async fn new_project(store: &DuckStore) -> u32 {
    store
        .create_project(NewProject { name: "x".into(), ingestion_key: "k".into(), secret_key_hash: "h".into() })
        .await
        .expect("project")
        .id
}

async fn check(store: &DuckStore, project: u32, when: &str) {
    for request in requests() {
        let from_columns = store.scan(project, request.clone()).await.expect("scan");
        let with_properties = ScanRequest { event_properties: true, ..request.clone() };
        let from_database = store.scan(project, with_properties).await.expect("scan");
        assert!(!from_database.is_empty(), "{when}: the request selects events: {request:?}");
        assert_eq!(normalized(&from_columns), normalized(&from_database), "{when}: {request:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn columns_scan_like_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EmbeddedConfig { data_dir: Some(dir.path().to_path_buf()), ..EmbeddedConfig::default() };
    let mut rng = StdRng::seed_from_u64(5);
    let project = {
        let store = DuckStore::open(config.clone()).expect("opens");
        let project = new_project(&store).await;
        for r in 0..ROUNDS {
            let _ = store.apply(project, round(&mut rng, r)).await.expect("applies");
            // The first check loads the columns; later rounds reach them as appends.
            check(&store, project, &format!("after round {r}")).await;
        }
        project
    };
    let reopened = DuckStore::open(config).expect("reopens");
    check(&reopened, project, "loaded after reopening").await;
}

/// The project's snapshot file (see `columns::snapshot`).
fn snapshot_file(dir: &std::path::Path, project: u32) -> std::path::PathBuf {
    dir.join(troupe_duckdb::SNAPSHOT_DIR).join(format!("project-{project}.columns"))
}

/// Events named "b" the columns give (a request the columns answer, not the database).
async fn b_events_from_columns(store: &DuckStore, project: u32) -> usize {
    let request = ScanRequest { events: Some(vec!["b".into()]), ..ScanRequest::default() };
    store.scan(project, request).await.expect("scan").len()
}

/// A restart takes the columns from the snapshot saved at shutdown (loaded at open, beside the
/// writer) and, when the snapshot is behind (a crash before the next save), the newer events
/// from the database; a snapshot of another rewrite generation, or a damaged one, is not used.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reads_the_columns_from_their_snapshot_and_newer_events_from_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    // As `troupe serve` opens it: snapshotted projects load while the writer starts.
    let config =
        EmbeddedConfig { data_dir: Some(dir.path().to_path_buf()), preload_columns: true, ..EmbeddedConfig::default() };
    let mut rng = StdRng::seed_from_u64(8);
    let store = DuckStore::open(config.clone()).expect("opens");
    let project = new_project(&store).await;
    for r in 0..4 {
        let _ = store.apply(project, round(&mut rng, r)).await.expect("applies");
    }
    check(&store, project, "loaded from the database").await;
    drop(store);
    let snapshot = snapshot_file(dir.path(), project);
    let behind = std::fs::read(&snapshot).expect("a snapshot is saved at shutdown");

    // Newer events, identity merges and deleted persons after the snapshot, which is then put
    // back as a crash before the next save would leave it.
    let store = DuckStore::open(config.clone()).expect("reopens");
    check(&store, project, "loaded from the snapshot").await;
    for r in 4..6 {
        let _ = store.apply(project, round(&mut rng, r)).await.expect("applies");
    }
    drop(store);
    assert_ne!(std::fs::read(&snapshot).expect("saved again"), behind, "shutdown saves the newer events");
    std::fs::write(&snapshot, &behind).expect("the older snapshot back");
    let store = DuckStore::open(config.clone()).expect("reopens");
    check(&store, project, "loaded from an older snapshot and the events after it").await;
    drop(store);

    // The snapshot is what a restart reads: events deleted behind troupe's back (no rewrite
    // recorded) still show from the columns, until a rewrite is recorded.
    let in_step = b_events_from_columns(&DuckStore::open(config.clone()).expect("reopens"), project).await;
    assert!(in_step > 0);
    {
        let conn = duckdb::Connection::open(dir.path().join(troupe_duckdb::DB_FILE)).expect("opens");
        conn.execute_batch("DELETE FROM events WHERE event = 'b'").expect("deleted");
    }
    assert_eq!(b_events_from_columns(&DuckStore::open(config.clone()).expect("reopens"), project).await, in_step);
    {
        let conn = duckdb::Connection::open(dir.path().join(troupe_duckdb::DB_FILE)).expect("opens");
        conn.execute("INSERT INTO event_rewrites (project_id) VALUES (?)", [project]).expect("recorded");
    }
    assert_eq!(b_events_from_columns(&DuckStore::open(config.clone()).expect("reopens"), project).await, 0);

    // A damaged snapshot (cut short, or a byte changed) is read past: the database is read.
    let _ = DuckStore::open(config.clone()).expect("reopens").apply(project, round(&mut rng, 7)).await;
    for damage in [
        Box::new(|bytes: &mut Vec<u8>| bytes.truncate(bytes.len() / 2)) as Box<dyn Fn(&mut Vec<u8>)>,
        Box::new(|bytes: &mut Vec<u8>| {
            let middle = bytes.len() / 2;
            bytes[middle] ^= 1;
        }),
    ] {
        let mut bytes = std::fs::read(&snapshot).expect("saved");
        damage(&mut bytes);
        std::fs::write(&snapshot, bytes).expect("damaged");
        let store = DuckStore::open(config.clone()).expect("reopens");
        for request in requests() {
            let from_columns = store.scan(project, request.clone()).await.expect("scan");
            let with_properties = ScanRequest { event_properties: true, ..request.clone() };
            let from_database = store.scan(project, with_properties).await.expect("scan");
            assert_eq!(normalized(&from_columns), normalized(&from_database), "damaged snapshot: {request:?}");
        }
    }
}

/// Erasing a person deletes the snapshot that held their distinct id, at once: no file in the
/// data directory keeps what was erased.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erasure_deletes_the_snapshot_that_held_the_person() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = EmbeddedConfig { data_dir: Some(dir.path().to_path_buf()), ..EmbeddedConfig::default() };
    let erased = "zed@example.com";
    let store = DuckStore::open(config.clone()).expect("opens");
    let project = new_project(&store).await;
    let track = |who: &str| {
        Command::Track(TrackEvent {
            event: "b".into(),
            distinct_id: who.into(),
            timestamp: Some(base()),
            ..TrackEvent::default()
        })
    };
    let _ = store.apply(project, vec![track(erased), track("bob")]).await.expect("applies");
    assert_eq!(b_events_from_columns(&store, project).await, 2);
    drop(store);
    let snapshot = snapshot_file(dir.path(), project);
    let holds = |bytes: &[u8]| bytes.windows(erased.len()).any(|w| w == erased.as_bytes());
    assert!(holds(&std::fs::read(&snapshot).expect("saved")), "the snapshot held the person");

    let store = DuckStore::open(config.clone()).expect("reopens");
    assert_eq!(b_events_from_columns(&store, project).await, 2);
    let erase = Command::ErasePerson { distinct_id: erased.into(), keep_out: false };
    let _ = store.apply(project, vec![erase]).await.expect("applies");
    assert!(!snapshot.exists(), "the snapshot is deleted with the erasure's commit");
    assert_eq!(b_events_from_columns(&store, project).await, 1);
    drop(store);
    assert!(!holds(&std::fs::read(&snapshot).expect("saved again")), "the new snapshot does not hold the person");
    let store = DuckStore::open(config).expect("reopens");
    assert_eq!(b_events_from_columns(&store, project).await, 1);
}
