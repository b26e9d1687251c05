//! The ClickHouse store, for installs that outgrow one machine. Same rules, same answers as the
//! embedded store (both pass `troupe_store::conformance` and the insight conformance suite), over
//! ClickHouse's HTTP interface, on one server or a sharded cluster (see [`config`]).
//!
//! Writes go through one writer task ([`writer`]) holding each project's live state, like the
//! embedded store's writer; reads and insight scans go straight to ClickHouse.

mod aggregate;
mod audit;
pub mod config;
mod documents;
mod erasing;
mod guard;
mod http;
mod load;
mod persist;
mod read;
pub mod remote;
mod row_binary;
mod rows;
mod scan;
mod schema;
pub mod testing;
mod tsv;
mod working_set;
mod writer;

use std::sync::Arc;

use async_trait::async_trait;
use chrono::Duration;
use tokio::sync::{mpsc, oneshot, Mutex};
use troupe_core::{Command, Limits, PreparedCommand, ProjectId};
use troupe_store::{
    CommandResult, Document, EventQuery, EventRow, EventScan, GroupProfile, GroupQuery, GroupRow, GroupTypeInfo,
    NewProject, Page, PersonProfile, PersonQuery, PersonRow, Project, ScanRequest, Store, StoreError,
};

pub use config::ClickHouseConfig;
pub use http::{quote, Http};
pub use schema::SCHEMA_VERSION;
use troupe_store::writer::Job;
use writer::Writer;

/// Jobs that may wait for the writer before senders are slowed down.
const WRITER_QUEUE: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum ClickHouseError {
    #[error("{0}")]
    Config(String),
    /// No answer from a node. `sent`: the request may have reached it (a timeout or a dropped
    /// connection after connecting), so a write may have happened.
    #[error("cannot reach ClickHouse at {node}: {message}")]
    Unreachable { node: String, message: String, sent: bool },
    #[error("ClickHouse answered {status}: {message}")]
    Server { status: u16, message: String },
    #[error("unexpected data from ClickHouse: {0}")]
    Decode(String),
    #[error("{0}")]
    Schema(String),
}

impl From<ClickHouseError> for StoreError {
    fn from(e: ClickHouseError) -> Self {
        e.to_store_error()
    }
}

/// ClickHouse's error codes that mean "not now" rather than "never": network and timeouts,
/// overload, memory, a replica or shard that cannot be reached, a read-only table while
/// ZooKeeper/Keeper is away.
const TRANSIENT_CLICKHOUSE_CODES: &[u32] =
    &[3, 159, 160, 164, 202, 203, 209, 210, 241, 242, 252, 279, 285, 319, 394, 425, 439, 999];

impl ClickHouseError {
    /// The store's error of this kind (the text is for the log).
    pub fn to_store_error(&self) -> StoreError {
        if self.is_transient() {
            StoreError::Unavailable(self.to_string())
        } else {
            StoreError::Internal(self.to_string())
        }
    }

    /// Whether a retry of the same request may succeed: the server could not be reached, or it
    /// answered with an error of the transient kind (by its `Code: N`), or an HTTP 503.
    pub fn is_transient(&self) -> bool {
        match self {
            ClickHouseError::Unreachable { .. } => true,
            // 502/503/504: a proxy or load balancer in front of ClickHouse that cannot reach it.
            ClickHouseError::Server { status, message } => {
                matches!(status, 502..=504)
                    || clickhouse_code(message).is_some_and(|code| TRANSIENT_CLICKHOUSE_CODES.contains(&code))
            }
            ClickHouseError::Config(_) | ClickHouseError::Decode(_) | ClickHouseError::Schema(_) => false,
        }
    }
}

/// The `N` of ClickHouse's "Code: N. DB::Exception: …".
fn clickhouse_code(message: &str) -> Option<u32> {
    let after = &message[message.find("Code: ")? + 6..];
    let digits = after.find(|c: char| !c.is_ascii_digit()).unwrap_or(after.len());
    after[..digits].parse().ok()
}

/// Which process applies this store's writes.
#[derive(Debug, Clone, Default)]
pub enum WriterRole {
    /// This process is the writer of the database.
    #[default]
    Own,
    /// Another troupe process is (its base URL and the shared secret of `/internal/v1/…`).
    Forward { url: String, secret: String },
    /// Nothing is written through this store (`troupe query`): it never competes with the writer.
    ReadOnly,
}

enum Writes {
    Local { jobs: mpsc::Sender<Job>, claim: Arc<guard::WriterClaim>, heartbeat: tokio::task::JoinHandle<()> },
    Remote(remote::RemoteWriter),
    ReadOnly,
}

pub struct ClickHouseStore {
    http: Http,
    writes: Writes,
    group_slots: usize,
    /// Versions of document rows written outside the writer.
    versions: Arc<Mutex<rows::Versions>>,
}

/// Apply the numbered migrations on every node of `config` (idempotent), with group columns for
/// `max_group_types`. Returns the schema version.
pub async fn migrate(config: &ClickHouseConfig, max_group_types: usize) -> Result<u32, ClickHouseError> {
    let http = Http::new(config.clone())?;
    // A migration may copy a table and swap it in (schema 7): what a running writer wrote
    // meanwhile would be lost, so none may run.
    let first = config.nodes.first().cloned().unwrap_or_default();
    if schema::has_table(&http, &first, "writers").await? {
        if let Some(writer) = guard::live_writer(&http).await? {
            return Err(ClickHouseError::Config(format!(
                "a troupe writer is running on this database ({}): stop it before migrating (a migration may \
                 copy tables, and writes made meanwhile would be lost)",
                writer.describe()
            )));
        }
    }
    schema::migrate(&http, max_group_types).await
}

impl ClickHouseStore {
    /// Connect, check the schema (never migrates: `troupe migrate` does), load each project's
    /// state and start the writer.
    pub async fn open(
        config: ClickHouseConfig,
        limits: Limits,
        dedupe_window: Duration,
    ) -> Result<Self, ClickHouseError> {
        Self::open_as(config, limits, dedupe_window, WriterRole::Own).await
    }

    /// Open as the writer of the database, or as a process that forwards its writes to it.
    pub async fn open_as(
        config: ClickHouseConfig,
        limits: Limits,
        dedupe_window: Duration,
        role: WriterRole,
    ) -> Result<Self, ClickHouseError> {
        let http = Http::new(config)?;
        let group_slots = schema::check(&http, limits.max_group_types).await?;
        http.detect_insert_tokens().await?;
        let writes = match role {
            WriterRole::Own => {
                let claim = Arc::new(guard::WriterClaim::claim(&http).await?);
                let writer = Writer::open(http.clone(), limits, dedupe_window, group_slots).await?;
                let (jobs, receiver) = mpsc::channel(WRITER_QUEUE);
                tokio::spawn(writer.run(receiver));
                let heartbeat = claim.keep_alive();
                Writes::Local { jobs, claim, heartbeat }
            }
            WriterRole::ReadOnly => Writes::ReadOnly,
            WriterRole::Forward { url, secret } => Writes::Remote(
                remote::RemoteWriter::new(&url, &secret).map_err(|e| ClickHouseError::Config(e.to_string()))?,
            ),
        };
        Ok(ClickHouseStore { http, writes, group_slots, versions: Arc::new(Mutex::new(rows::Versions::default())) })
    }

    /// Delete the retry keys of id-less writes seen before `before` (the writer does so hourly
    /// for those past the retry window; see `persist::prune_retry_keys`).
    pub async fn prune_retry_keys(&self, before: chrono::DateTime<chrono::Utc>) -> Result<(), ClickHouseError> {
        persist::prune_retry_keys(&self.http, before.timestamp_micros()).await
    }

    /// The HTTP client, for the benchmark's SQL references.
    pub fn http(&self) -> &Http {
        &self.http
    }

    async fn send<T>(jobs: &mpsc::Sender<Job>, job: impl FnOnce(oneshot::Sender<T>) -> Job) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        jobs.send(job(reply)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)
    }
}

#[async_trait]
impl Store for ClickHouseStore {
    async fn create_project(&self, new: NewProject) -> Result<Project, StoreError> {
        match &self.writes {
            Writes::Local { jobs, .. } => Self::send(jobs, |reply| Job::CreateProject { new, reply }).await?,
            Writes::Remote(writer) => writer.create_project(new).await,
            Writes::ReadOnly => Err(read_only()),
        }
    }

    async fn projects(&self) -> Result<Vec<Project>, StoreError> {
        Ok(load::projects(&self.http).await?)
    }

    async fn apply_prepared(
        &self,
        project: ProjectId,
        commands: Vec<PreparedCommand>,
    ) -> Result<Vec<CommandResult>, StoreError> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        match &self.writes {
            Writes::Local { jobs, .. } => Self::send(jobs, |reply| Job::Apply { project, commands, reply }).await?,
            Writes::Remote(writer) => {
                let commands: Vec<Command> = commands.into_iter().map(PreparedCommand::into_command).collect();
                writer.apply(project, &commands).await
            }
            Writes::ReadOnly => Err(read_only()),
        }
    }

    /// Ready when ClickHouse answers and this process's writer (or the writer it forwards to)
    /// is running.
    async fn ready(&self) -> Result<(), StoreError> {
        if let Writes::Local { jobs, .. } = &self.writes {
            if jobs.is_closed() {
                return Err(StoreError::Unavailable("the writer has stopped".into()));
            }
        }
        self.http.execute("SELECT 1").await?;
        Ok(())
    }

    async fn group_types(&self, project: ProjectId) -> Result<Vec<GroupTypeInfo>, StoreError> {
        Ok(read::group_types(&self.http, project).await?)
    }

    /// The names alone: every question checks them, and counting groups would cost a query.
    async fn group_type_names(&self, project: ProjectId) -> Result<Vec<String>, StoreError> {
        Ok(read::slot_names(&self.http, project).await?.into_values().collect())
    }

    async fn groups(&self, project: ProjectId, query: GroupQuery) -> Result<Page<GroupRow>, StoreError> {
        Ok(read::groups(&self.http, project, &query).await?)
    }

    async fn group(
        &self,
        project: ProjectId,
        group_type: &str,
        group_key: &str,
        recent_events: usize,
    ) -> Result<Option<GroupProfile>, StoreError> {
        Ok(read::group(&self.http, project, group_type, group_key, recent_events, self.group_slots).await?)
    }

    async fn persons(&self, project: ProjectId, query: PersonQuery) -> Result<Page<PersonRow>, StoreError> {
        Ok(read::persons(&self.http, project, &query).await?)
    }

    async fn person(
        &self,
        project: ProjectId,
        id: &str,
        recent_events: usize,
    ) -> Result<Option<PersonProfile>, StoreError> {
        Ok(read::person(&self.http, project, id, recent_events, self.group_slots).await?)
    }

    async fn events(&self, project: ProjectId, query: EventQuery) -> Result<Vec<EventRow>, StoreError> {
        Ok(read::events(&self.http, project, &query, self.group_slots).await?)
    }

    async fn scan(&self, project: ProjectId, request: ScanRequest) -> Result<EventScan, StoreError> {
        Ok(scan::scan(&self.http, project, &request).await?)
    }

    fn aggregates(&self) -> Option<&dyn troupe_store::aggregate::Aggregates> {
        Some(self)
    }

    async fn append_audit(&self, project: ProjectId, entry: troupe_store::audit::AuditEntry) -> Result<(), StoreError> {
        // Like documents, entries are not the writer's: a process that is not the writer (the
        // operator's CLI) appends them too.
        Ok(audit::append(&self.http, project, &entry).await?)
    }

    async fn audit_log(
        &self,
        project: ProjectId,
        before: Option<String>,
        limit: usize,
    ) -> Result<Vec<troupe_store::audit::AuditEntry>, StoreError> {
        Ok(audit::page(&self.http, project, before.as_deref(), limit).await?)
    }

    async fn put_document(&self, project: ProjectId, document: Document) -> Result<(), StoreError> {
        let mut versions = self.versions.lock().await;
        Ok(documents::put(&self.http, &mut versions, project, &document).await?)
    }

    async fn documents(&self, project: ProjectId, kind: &str) -> Result<Vec<Document>, StoreError> {
        Ok(documents::list(&self.http, project, kind).await?)
    }

    async fn delete_document(&self, project: ProjectId, kind: &str, id: &str) -> Result<bool, StoreError> {
        let mut versions = self.versions.lock().await;
        Ok(documents::delete(&self.http, &mut versions, project, kind, id).await?)
    }

    async fn close(&self) {
        if let Writes::Local { claim, heartbeat, .. } = &self.writes {
            heartbeat.abort();
            claim.release().await;
        }
    }
}

fn read_only() -> StoreError {
    StoreError::Internal("this ClickHouse store was opened read-only".into())
}
