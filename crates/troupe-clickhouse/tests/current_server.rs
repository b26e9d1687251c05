//! The store and insight conformance suites on current ClickHouse (26.x: PyPI `chdb-core` behind
//! `testing/chdb_front.py`), as `single_server.rs` runs them on Debian's 18.16. Not here: the
//! rows-read pruning test (the front has no `system.query_log`) and clusters (one node).

mod common;

use troupe_clickhouse::testing::Engine;

async fn current() -> (troupe_clickhouse::ClickHouseStore, ()) {
    (common::store_on(common::deployment_on(Engine::Current, 1).fresh_database()).await, ())
}

mod store {
    troupe_store::store_conformance_suite!(super::current);
}

mod insights {
    troupe_query::insight_conformance_suite!(super::current);
}

#[tokio::test]
async fn aggregates_are_computed_by_clickhouse() {
    let (store, _) = current().await;
    common::aggregates_are_computed_by_clickhouse(&store).await;
}

#[tokio::test]
async fn resent_writes_after_a_restart_are_applied_once() {
    let config = common::deployment_on(Engine::Current, 1).fresh_database();
    common::resent_writes_after_a_restart_are_applied_once(config).await;
}

#[tokio::test]
async fn the_front_runs_current_clickhouse() {
    #[derive(serde::Deserialize)]
    struct Version {
        major: u32,
    }
    let (store, _) = current().await;
    let version: Vec<Version> =
        store.http().rows("SELECT toUInt32(splitByChar('.', version())[1]) AS major").await.expect("the version");
    assert!(version.first().is_some_and(|v| v.major >= 24), "a current release");
}

/// On a current release the property columns compress with ZSTD (18.16 has no column codecs).
#[tokio::test]
async fn property_columns_compress_with_zstd() {
    #[derive(serde::Deserialize)]
    struct Column {
        name: String,
        codec: String,
    }
    let (store, _) = current().await;
    let database = &store.http().config().database;
    let columns: Vec<Column> = store
        .http()
        .rows(&format!(
            "SELECT name, compression_codec AS codec FROM system.columns WHERE database = '{database}' \
             AND table = 'events' AND name IN ('properties', 'prop_texts', 'prop_lowers', 'ts') ORDER BY name"
        ))
        .await
        .expect("columns");
    let codecs: Vec<(&str, bool)> = columns.iter().map(|c| (c.name.as_str(), c.codec.contains("ZSTD"))).collect();
    assert_eq!(codecs, vec![("prop_lowers", true), ("prop_texts", true), ("properties", true), ("ts", false)]);
}

#[tokio::test]
async fn expired_retry_keys_are_pruned() {
    common::expired_retry_keys_are_pruned(common::deployment_on(Engine::Current, 1).fresh_database()).await;
}

#[tokio::test]
async fn an_erased_person_leaves_no_row() {
    common::an_erased_person_leaves_no_row(common::deployment_on(Engine::Current, 1).fresh_database()).await;
}

#[tokio::test]
async fn an_anonymized_person_leaves_no_personal_field() {
    common::an_anonymized_person_leaves_no_personal_field(common::deployment_on(Engine::Current, 1).fresh_database())
        .await;
}

#[tokio::test]
async fn reads_leave_out_erasures_in_flight() {
    common::reads_leave_out_erasures_in_flight(common::deployment_on(Engine::Current, 1).fresh_database()).await;
}

#[tokio::test]
async fn a_person_erased_for_good_stays_out_after_a_restart() {
    common::a_person_erased_for_good_stays_out_after_a_restart(
        common::deployment_on(Engine::Current, 1).fresh_database(),
    )
    .await;
}
