//! One ClickHouse deployment per test binary (started on first use, stopped by its watchdog when
//! the binary exits), and a fresh database in it for every test.

use std::sync::OnceLock;

use troupe_clickhouse::testing::ClickHouseCluster;
use troupe_clickhouse::{ClickHouseConfig, ClickHouseStore};
use troupe_core::Limits;

static DEPLOYMENT: OnceLock<ClickHouseCluster> = OnceLock::new();

pub fn deployment(shards: usize) -> &'static ClickHouseCluster {
    DEPLOYMENT.get_or_init(|| match ClickHouseCluster::start(shards) {
        Ok(cluster) => cluster,
        Err(e) => panic!("cannot start ClickHouse for the tests: {e}"),
    })
}

pub async fn store_on(config: ClickHouseConfig) -> ClickHouseStore {
    let limits = Limits::default();
    troupe_clickhouse::migrate(&config, limits.max_group_types).await.expect("migrates");
    ClickHouseStore::open(config, limits, chrono::Duration::seconds(30)).await.expect("opens")
}

pub async fn fresh_store(shards: usize) -> (ClickHouseStore, ()) {
    (store_on(deployment(shards).fresh_database()).await, ())
}
