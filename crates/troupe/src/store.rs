//! Opening the store the flags name: the embedded one (default) or ClickHouse.

use std::sync::Arc;

use anyhow::{Context, Result};
use troupe_clickhouse::{ClickHouseConfig, ClickHouseStore, WriterRole};
use troupe_duckdb::{DuckStore, EmbeddedConfig};
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

    /// Which process applies writes (ClickHouse only).
    fn writer_role(&self) -> Result<WriterRole> {
        match (&self.writer_url, &self.internal_secret) {
            (None, _) => Ok(WriterRole::Own),
            (Some(url), Some(secret)) => Ok(WriterRole::Forward { url: url.clone(), secret: secret.clone() }),
            (Some(_), None) => {
                anyhow::bail!(
                    "--writer-url needs --internal-secret (TROUPE_INTERNAL_SECRET), the writer's shared secret"
                )
            }
        }
    }

    /// The secret this process accepts forwarded writes with: set only on a ClickHouse writer.
    pub fn accepted_internal_secret(&self) -> Option<String> {
        match (self.backend(), &self.writer_url) {
            (Ok(Backend::ClickHouse(_)), None) => self.internal_secret.clone(),
            _ => None,
        }
    }

    pub async fn open(&self) -> Result<Arc<dyn Store>> {
        self.open_as(self.writer_role()?, false).await
    }

    /// For commands that only read (`troupe query`): on ClickHouse this never competes with the
    /// deployment's writer.
    pub async fn open_read_only(&self) -> Result<Arc<dyn Store>> {
        self.open_as(WriterRole::ReadOnly, false).await
    }

    /// For the operator's commands (`troupe user`, `troupe key`): they write documents (accounts,
    /// key rings, the audit log), never events, so on ClickHouse they do not take the writer's
    /// place from a running deployment.
    pub async fn open_for_documents(&self) -> Result<Arc<dyn Store>> {
        self.open_as(WriterRole::ReadOnly, false).await
    }

    /// For `troupe serve`: the embedded store also loads the columns of the projects asked about
    /// before while the writer starts.
    pub async fn open_to_serve(&self) -> Result<Arc<dyn Store>> {
        self.open_as(self.writer_role()?, true).await
    }

    async fn open_as(&self, role: WriterRole, serving: bool) -> Result<Arc<dyn Store>> {
        match self.backend()? {
            Backend::Embedded => {
                if self.writer_url.is_some() {
                    anyhow::bail!("--writer-url is for the ClickHouse store (the embedded store has one process)");
                }
                let config = EmbeddedConfig { preload_columns: serving, ..self.embedded() };
                Ok(Arc::new(DuckStore::open(config)?))
            }
            Backend::ClickHouse(config) => {
                let embedded = self.embedded();
                let store = ClickHouseStore::open_as(config, embedded.limits, embedded.dedupe_window, role)
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
