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
