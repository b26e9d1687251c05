//! The two-stage writer when a commit fails: the batch is refused, nothing of it is stored, and
//! the writer goes on from what is committed (its state read back from the database).

use chrono::{TimeZone, Utc};
use troupe_core::{Command, Outcome, TrackEvent};
use troupe_duckdb::{DuckStore, EmbeddedConfig};
use troupe_store::{EventQuery, NewProject, PersonQuery, Store};

fn track(who: &str, uuid: &str) -> Command {
    Command::Track(TrackEvent {
        event: "Signed Up".into(),
        distinct_id: who.into(),
        id: Some(uuid.into()),
        timestamp: Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single(),
        ..TrackEvent::default()
    })
}

/// Run one statement on a reader connection (the test's way to make the writer's next commit
/// fail: the table it writes persons to is gone).
async fn sql(store: &DuckStore, statement: &str) {
    store.sql_numbers(statement.to_string()).await.expect(statement);
}

async fn stored(store: &DuckStore, project: u32, commands: Vec<Command>) -> Vec<Outcome> {
    let results = store.apply(project, commands).await.expect("the batch is stored");
    results.into_iter().map(|r| r.expect("valid command")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_commit_stores_nothing_and_the_writer_goes_on_from_what_is_committed() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = EmbeddedConfig { data_dir: Some(dir.path().to_path_buf()), ..EmbeddedConfig::default() };
    let store = DuckStore::open(config).expect("opens");
    let project = store
        .create_project(NewProject { name: "p".into(), ingestion_key: "i".into(), secret_key_hash: "h".into() })
        .await
        .expect("project")
        .id;
    assert!(matches!(stored(&store, project, vec![track("alice", "e1")]).await[..], [Outcome::Stored { .. }]));

    sql(&store, "ALTER TABLE persons RENAME TO persons_away").await;
    let refused = store.apply(project, vec![track("bob", "e2")]).await;
    let error = refused.expect_err("bob's batch cannot be committed").to_string();
    assert!(error.contains("nothing was stored"), "{error}");
    // Not ready while the writer cannot reload (the table is still away); ready once it can.
    let not_ready = store.ready().await;
    assert!(matches!(not_ready, Err(troupe_store::StoreError::Unavailable(_))), "{not_ready:?}");
    sql(&store, "ALTER TABLE persons_away RENAME TO persons").await;
    store.ready().await.expect("ready again: asking reloaded the writer's state");

    // The next batch is built on what is committed: bob's event is new again, and bob is
    // created again with it.
    let outcomes = stored(&store, project, vec![track("carol", "e3"), track("bob", "e2")]).await;
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Stored { .. })), "{outcomes:?}");
    let persons = store.persons(project, PersonQuery { limit: 10, ..PersonQuery::default() }).await.expect("persons");
    let mut names: Vec<_> = persons.results.iter().flat_map(|p| p.distinct_ids.clone()).collect();
    names.sort();
    assert_eq!(names, ["alice", "bob", "carol"]);
    let events = store.events(project, EventQuery { limit: 10, ..EventQuery::default() }).await.expect("events");
    assert_eq!(events.len(), 3);

    // And it stays so across a restart.
    drop(store);
    let config = EmbeddedConfig { data_dir: Some(dir.path().to_path_buf()), ..EmbeddedConfig::default() };
    let store = DuckStore::open(config).expect("reopens");
    assert!(matches!(stored(&store, project, vec![track("bob", "e2")]).await[..], [Outcome::Duplicate]));
    let events = store.events(project, EventQuery { limit: 10, ..EventQuery::default() }).await.expect("events");
    assert_eq!(events.len(), 3);
}
