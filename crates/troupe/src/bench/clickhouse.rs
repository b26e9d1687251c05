//! The benchmark's questions through troupe's ClickHouse store, beside the embedded store: the
//! same generated data loaded through the ClickHouse store's writer, the same insights answered
//! with their aggregates pushed down into ClickHouse SQL.

use anyhow::{Context, Result};
use troupe_clickhouse::config::DEFAULT_WRITER_CACHE;
use troupe_clickhouse::testing::{ClickHouseCluster, Engine};
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
    /// The `clickhouse://` URL of the database (for a `troupe serve` on it).
    pub url: String,
    /// The server started for this run, stopped when dropped.
    server: Option<ClickHouseCluster>,
}

/// Open (and load, unless an earlier run did) the data set on ClickHouse: `local` starts a
/// server for this run, anything else is a `clickhouse://` URL.
pub async fn open(target: &str, shape: Shape) -> Result<OnClickHouse> {
    let database = format!("troupe_bench_{}_{}", shape.events, shape.seed);
    let (config, url, server) = match local_engine(target) {
        Some(engine) => {
            let server = ClickHouseCluster::start_on(engine, 1).with_context(|| {
                format!(
                    "cannot start {} for --clickhouse {target} (scripts/setup-test-deps installs it; \
                     or pass a clickhouse:// URL)",
                    engine.name()
                )
            })?;
            // The writer's own default cache, not the tests' empty one.
            let config = ClickHouseConfig { writer_cache: DEFAULT_WRITER_CACHE, ..server.config(&database) };
            (config, server.url_with_writer_cache(&database, DEFAULT_WRITER_CACHE), Some(server))
        }
        None => (ClickHouseConfig::parse(target).context("--clickhouse")?, target.to_string(), None),
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
    Ok(OnClickHouse { store, project, load_seconds, described, url, server })
}

/// The engine `--clickhouse local` (Debian's 18.16) or `local-current` (26.x) starts; `None` for a
/// URL.
pub fn local_engine(target: &str) -> Option<Engine> {
    match target {
        "local" => Some(Engine::Debian),
        "local-current" => Some(Engine::Current),
        _ => None,
    }
}

impl OnClickHouse {
    /// Close the store (its writer gives the database up); the server started for this run, if
    /// any, is handed back to be kept running while another process uses the database.
    pub async fn close(self) -> Option<ClickHouseCluster> {
        self.store.close().await;
        self.server
    }
}
