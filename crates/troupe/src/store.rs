//! Opening the store the flags name: the embedded one (default) or ClickHouse.

use std::sync::Arc;

use anyhow::{Context, Result};
use troupe_clickhouse::{ClickHouseConfig, ClickHouseStore};
use troupe_duckdb::DuckStore;
use troupe_store::Store;

use crate::config::StoreArgs;

/// Which backend the flags name.
pub enum Backend {
    Embedded,
    ClickHouse(ClickHouseConfig),
}

impl StoreArgs {
    pub fn backend(&self) -> Result<Backend> {
        match self.store.trim() {
            "" | "embedded" => Ok(Backend::Embedded),
            url if url.starts_with("clickhouse://") => Ok(Backend::ClickHouse(ClickHouseConfig::parse(url)?)),
            other => anyhow::bail!(
                "--store must be 'embedded' or a clickhouse:// URL, not '{}'",
                other.split('@').next_back().unwrap_or(other)
            ),
        }
    }

    /// Where the data is, for messages (never the password).
    pub fn describe(&self) -> String {
        match self.backend() {
            Ok(Backend::ClickHouse(c)) => format!("ClickHouse database '{}' on {}", c.database, c.nodes.join(", ")),
            _ => format!("data in {}", self.data_dir.display()),
        }
    }

    pub async fn open(&self) -> Result<Arc<dyn Store>> {
        match self.backend()? {
            Backend::Embedded => Ok(Arc::new(DuckStore::open(self.embedded())?)),
            Backend::ClickHouse(config) => {
                let embedded = self.embedded();
                let store = ClickHouseStore::open(config, embedded.limits, embedded.dedupe_window)
                    .await
                    .context("cannot open the ClickHouse store")?;
                Ok(Arc::new(store))
            }
        }
    }
}

/// `troupe migrate`.
pub async fn migrate(args: &StoreArgs) -> Result<()> {
    match args.backend()? {
        Backend::Embedded => {
            drop(DuckStore::open(args.embedded())?);
            println!(
                "embedded store in {} is at schema version {}",
                args.data_dir.display(),
                troupe_duckdb::SCHEMA_VERSION
            );
        }
        Backend::ClickHouse(config) => {
            let version = troupe_clickhouse::migrate(&config, usize::from(args.max_group_types))
                .await
                .context("migrating ClickHouse failed")?;
            println!("{} is at schema version {version}", args.describe());
        }
    }
    Ok(())
}
