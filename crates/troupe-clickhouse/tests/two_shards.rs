//! The store and insight conformance suites through Distributed tables over two real ClickHouse
//! servers, each one shard of a cluster.

mod common;

async fn two_shards() -> (troupe_clickhouse::ClickHouseStore, ()) {
    common::fresh_store(2).await
}

mod store {
    troupe_store::store_conformance_suite!(super::two_shards);
}

mod insights {
    troupe_query::insight_conformance_suite!(super::two_shards);
}

#[tokio::test]
async fn aggregates_are_computed_by_clickhouse() {
    let (store, _) = two_shards().await;
    common::aggregates_are_computed_by_clickhouse(&store).await;
}

#[tokio::test]
async fn an_erased_person_leaves_no_row() {
    common::an_erased_person_leaves_no_row(common::deployment(2).fresh_database()).await;
}

#[tokio::test]
async fn an_anonymized_person_leaves_no_personal_field() {
    common::an_anonymized_person_leaves_no_personal_field(common::deployment(2).fresh_database()).await;
}

#[tokio::test]
async fn reads_leave_out_erasures_in_flight() {
    common::reads_leave_out_erasures_in_flight(common::deployment(2).fresh_database()).await;
}

#[tokio::test]
async fn a_person_erased_for_good_stays_out_after_a_restart() {
    common::a_person_erased_for_good_stays_out_after_a_restart(common::deployment(2).fresh_database()).await;
}
