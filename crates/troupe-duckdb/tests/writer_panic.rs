//! A panic in the writer's rules (a bug troupe cannot rule out) fails that write with an
//! internal error, nothing of its group is stored, and the writer reloads its state from the
//! database and keeps serving. The panic is injected with a fail point; this file is a test
//! binary of its own, so no other test runs while it is set.

use troupe_core::{Command, Outcome, TrackEvent};
use troupe_duckdb::{DuckStore, EmbeddedConfig};
use troupe_store::conformance::project;
use troupe_store::{EventQuery, Store, StoreError};

fn event(name: &str) -> Command {
    Command::Track(TrackEvent { event: name.into(), distinct_id: "u1".into(), ..TrackEvent::default() })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_write_fails_alone_and_the_writer_keeps_serving() {
    let scenario = fail::FailScenario::setup();
    let dir = tempfile::tempdir().expect("temp dir");
    let config = EmbeddedConfig { data_dir: Some(dir.path().to_path_buf()), ..EmbeddedConfig::default() };
    let store = DuckStore::open(config.clone()).expect("opens");
    let p = project(&store, "p").await;
    let before = store.apply(p, vec![event("before")]).await.expect("stored");
    assert!(matches!(before[0], Ok(Outcome::Stored { .. })));

    fail::cfg("writer-apply", "1*panic(injected)").expect("fail point");
    match store.apply(p, vec![event("panics")]).await {
        Err(StoreError::Internal(message)) => assert!(message.contains("bug"), "{message}"),
        other => panic!("expected an internal error, got {other:?}"),
    }
    fail::remove("writer-apply");

    // The writer reloaded and serves: ready, the next write stored, the failed one absent.
    store.ready().await.expect("ready");
    let after = store.apply(p, vec![event("after")]).await.expect("stored");
    assert!(matches!(after[0], Ok(Outcome::Stored { .. })));
    let names = |events: Vec<troupe_store::EventRow>| events.into_iter().map(|e| e.event).collect::<Vec<_>>();
    let events = store.events(p, EventQuery { limit: 10, ..EventQuery::default() }).await.expect("events");
    assert_eq!(names(events), vec!["after".to_string(), "before".to_string()]);
    drop(store);
    // And the database agrees after a restart.
    let store = DuckStore::open(config).expect("reopens");
    let events = store.events(p, EventQuery { limit: 10, ..EventQuery::default() }).await.expect("events");
    assert_eq!(names(events), vec!["after".to_string(), "before".to_string()]);
    scenario.teardown();
}
