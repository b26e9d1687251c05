//! A panic in the ClickHouse writer's rules (a bug troupe cannot rule out) fails that write with
//! an internal error, nothing of its group is stored, and the writer reads its state back from
//! ClickHouse and keeps serving. The panicking write is sent while a large batch is being applied
//! or written (the writer applies the next batch while it writes one): that batch is stored. The
//! panic is injected with a fail point; this file is a test binary of its own, so no other test
//! runs while it is set.

mod common;

use troupe_core::{Command, Outcome, TrackEvent};
use troupe_store::conformance::project;
use troupe_store::{EventQuery, Store, StoreError};

fn event(name: &str, id: &str) -> Command {
    Command::Track(TrackEvent {
        event: name.into(),
        distinct_id: "u1".into(),
        id: Some(id.into()),
        ..TrackEvent::default()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_write_fails_alone_and_the_writer_keeps_serving() {
    let scenario = fail::FailScenario::setup();
    let config = common::deployment(1).fresh_database();
    let store = common::store_on(config.clone()).await;
    let p = project(&store, "p").await;
    let before = store.apply(p, vec![event("before", "b")]).await.expect("stored");
    assert!(matches!(before[0], Ok(Outcome::Stored { .. })));

    // A large batch, and a write that panics sent right after it: the first is stored, the
    // second fails alone. The fail point lets the first write pass and panics in the second
    // (the idle writer takes the first alone; the second arrives while it is looked up,
    // applied or written).
    fail::cfg("writer-apply", "1*off->1*panic(injected)").expect("fail point");
    let first = store.apply(p, (0..2000).map(|i| event("bulk", &format!("bulk-{i}"))).collect());
    let panicking = async {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        store.apply(p, vec![event("panics", "x")]).await
    };
    let (first, panicked) = tokio::join!(first, panicking);
    fail::remove("writer-apply");
    assert!(first.expect("stored").iter().all(|r| matches!(r, Ok(Outcome::Stored { .. }))));
    match panicked {
        Err(StoreError::Internal(message)) => assert!(message.contains("bug"), "{message}"),
        other => panic!("expected an internal error, got {other:?}"),
    }

    // The writer read its state back and serves: ready, the next write stored, a resend of the
    // stored batch a duplicate, the failed write absent.
    store.ready().await.expect("ready");
    let after = store.apply(p, vec![event("after", "a")]).await.expect("stored");
    assert!(matches!(after[0], Ok(Outcome::Stored { .. })));
    let again = store.apply(p, vec![event("bulk", "bulk-7")]).await.expect("answered");
    assert!(matches!(again[0], Ok(Outcome::Duplicate)), "{again:?}");
    let events = store.events(p, EventQuery { limit: 5000, ..EventQuery::default() }).await.expect("events");
    let count = |name: &str| events.iter().filter(|e| e.event == name).count();
    assert_eq!((count("before"), count("bulk"), count("panics"), count("after")), (1, 2000, 0, 1));
    scenario.teardown();
}
