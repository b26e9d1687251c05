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
