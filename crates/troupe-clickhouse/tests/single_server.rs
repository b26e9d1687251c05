//! The store and insight conformance suites on one real ClickHouse server.

mod common;

async fn single() -> (troupe_clickhouse::ClickHouseStore, ()) {
    common::fresh_store(1).await
}

mod store {
    troupe_store::store_conformance_suite!(super::single);
}

mod insights {
    troupe_query::insight_conformance_suite!(super::single);
}

#[tokio::test]
async fn aggregates_are_computed_by_clickhouse() {
    let (store, _) = single().await;
    common::aggregates_are_computed_by_clickhouse(&store).await;
}

/// The retry window is kept with the data in ClickHouse too: a client resending after this
/// process stopped (and another opened the database) is recognised.
#[tokio::test]
async fn resent_writes_after_a_restart_are_applied_once() {
    use troupe_store::conformance::{project, resent_writes_were_applied_once, writes_a_client_resends};
    use troupe_store::Store;
    let config = common::deployment(1).fresh_database();
    let store = common::store_on(config.clone()).await;
    let p = project(&store, "p").await;
    store.apply(p, writes_a_client_resends()).await.expect("applies");
    store.close().await;
    drop(store);

    let store = common::store_on(config).await;
    store.ready().await.expect("ready: ClickHouse answers and the writer runs");
    let again = store.apply(p, writes_a_client_resends()).await.expect("applies");
    assert!(again.iter().all(|r| matches!(r, Ok(troupe_core::Outcome::Duplicate))), "{again:?}");
    resent_writes_were_applied_once(&store, p).await;
}
