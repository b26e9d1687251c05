//! The benchmark's questions through troupe's ClickHouse store, beside the embedded store: the
//! same generated data loaded through the ClickHouse store's writer, the same insights answered
//! with their aggregates pushed down into ClickHouse SQL.

use anyhow::{Context, Result};
use troupe_clickhouse::testing::ClickHouseCluster;
use troupe_clickhouse::{ClickHouseConfig, ClickHouseStore};
use troupe_duckdb::EmbeddedConfig;
use troupe_store::Store;

use super::generate::Shape;

pub struct OnClickHouse {
    pub store: ClickHouseStore,
    pub project: u32,
    pub load_seconds: Option<f64>,
    /// Where: the server's version and address.
    pub described: String,
    /// The server started for this run, stopped when dropped.
    _server: Option<ClickHouseCluster>,
}

/// Open (and load, unless an earlier run did) the data set on ClickHouse: `local` starts a
/// server for this run, anything else is a `clickhouse://` URL.
pub async fn open(target: &str, shape: Shape) -> Result<OnClickHouse> {
    let database = format!("troupe_bench_{}_{}", shape.events, shape.seed);
    let (config, server) = if target == "local" {
        let server = ClickHouseCluster::start(1).context(
            "cannot start clickhouse-server for --clickhouse local (scripts/setup-test-deps installs it; \
             or pass a clickhouse:// URL)",
        )?;
        (server.config(&database), Some(server))
    } else {
        (ClickHouseConfig::parse(target).context("--clickhouse")?, None)
    };
    let defaults = EmbeddedConfig::default();
    troupe_clickhouse::migrate(&config, defaults.limits.max_group_types)
        .await
        .context("cannot prepare the ClickHouse database")?;
    let described = format!("{} database {}", config.nodes.join(", "), config.database);
    let store = ClickHouseStore::open(config, defaults.limits, defaults.dedupe_window)
        .await
        .context("cannot open the ClickHouse store")?;
    let (project, load_seconds) = super::load(&store, shape).await?;
    Ok(OnClickHouse { store, project, load_seconds, described, _server: server })
}

impl OnClickHouse {
    pub async fn close(self) {
        self.store.close().await;
    }
}
