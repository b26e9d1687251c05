//! The storage boundary. A backend implements [`Store`]: it applies canonical commands with the
//! core rules on a single writer per project, makes them durable before answering, and serves the
//! read models below. [`conformance`] holds the cases every backend must pass.

pub mod aggregate;
pub mod audit;
pub mod conformance;
mod error;
pub mod forward;
pub mod privacy;
mod read;
mod scan;
pub mod settings;
pub mod value;
pub mod writer;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use troupe_core::{Command, CoreError, Outcome, PreparedCommand, ProjectId, ProjectState};

pub use error::StoreError;
pub use read::*;
pub use scan::*;

/// What a store reports to `/metrics` (`None`: it cannot tell cheaply).
#[derive(Debug, Clone, Default)]
pub struct StoreStats {
    /// Batches waiting for the writer.
    pub writer_queue: Option<u64>,
    /// Bytes the store takes on disk.
    pub size_bytes: Option<u64>,
}

/// What `Store::backup` wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupSummary {
    pub dir: std::path::PathBuf,
    pub bytes: u64,
    /// The highest event sequence number in the copy: every write acknowledged before the
    /// backup started is in it.
    pub last_event_seq: u64,
    pub schema_version: i32,
}

/// A new project checked against the existing ones, as every backend's writer creates it: names
/// and ingestion keys are unique, ids count up from 1.
pub fn next_project(existing: &[Project], new: NewProject) -> Result<Project, StoreError> {
    if existing.iter().any(|p| p.name == new.name) {
        return Err(StoreError::Conflict(format!("a project named '{}' already exists", new.name)));
    }
    if existing.iter().any(|p| p.ingestion_key == new.ingestion_key) {
        return Err(StoreError::Conflict("that ingestion key is already in use".into()));
    }
    Ok(Project {
        id: existing.iter().map(|p| p.id).max().unwrap_or(0) + 1,
        name: new.name,
        ingestion_key: new.ingestion_key,
        secret_key_hash: new.secret_key_hash,
        created_at: chrono::Utc::now(),
    })
}

/// The result of one command of a batch: applied, or refused by a rule (nothing of it applied).
pub type CommandResult = Result<Outcome, CoreError>;

/// A batch applied in order to a project's state (`None`: no such project, every command
/// refused), as every backend's writer applies it.
pub fn apply_batch(
    state: Option<&mut ProjectState>,
    project: ProjectId,
    commands: Vec<PreparedCommand>,
    now: DateTime<Utc>,
) -> Vec<CommandResult> {
    match state {
        Some(state) => {
            state.reserve_events(commands.len());
            commands.into_iter().map(|c| state.apply(c, now)).collect()
        }
        None => commands.iter().map(|_| Err(CoreError::invalid("project", format!("no project {project}")))).collect(),
    }
}

/// A storage backend.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Create a project. Names and keys are unique.
    async fn create_project(&self, new: NewProject) -> Result<Project, StoreError>;

    /// Every project, with its keys' hashes, for authentication.
    async fn projects(&self) -> Result<Vec<Project>, StoreError>;

    /// Apply commands in order. When this returns `Ok`, every applied command is durable.
    /// A command refused by a rule does not stop the others.
    async fn apply(&self, project: ProjectId, commands: Vec<Command>) -> Result<Vec<CommandResult>, StoreError> {
        self.apply_prepared(project, commands.into_iter().map(PreparedCommand::from).collect()).await
    }

    /// [`Store::apply`] of commands the caller prepared on its own thread (an import prepares a
    /// batch while the store's writer still applies the one before).
    async fn apply_prepared(
        &self,
        project: ProjectId,
        commands: Vec<PreparedCommand>,
    ) -> Result<Vec<CommandResult>, StoreError>;

    /// The project's group types with how many groups each has.
    async fn group_types(&self, project: ProjectId) -> Result<Vec<GroupTypeInfo>, StoreError>;

    /// The names of the project's group types, by slot: what every insight question about
    /// groups checks first. A backend that can skip counting the groups overrides this.
    async fn group_type_names(&self, project: ProjectId) -> Result<Vec<String>, StoreError> {
        Ok(self.group_types(project).await?.into_iter().map(|t| t.group_type).collect())
    }

    /// Groups of one type: searched, sorted, paginated.
    async fn groups(&self, project: ProjectId, query: GroupQuery) -> Result<Page<GroupRow>, StoreError>;

    /// One group with its current members and the recent events attributed to it.
    async fn group(
        &self,
        project: ProjectId,
        group_type: &str,
        group_key: &str,
        recent_events: usize,
    ) -> Result<Option<GroupProfile>, StoreError>;

    /// Persons: searched by distinct id or property value, paginated.
    async fn persons(&self, project: ProjectId, query: PersonQuery) -> Result<Page<PersonRow>, StoreError>;

    /// One person, found by any of its distinct ids or its person id.
    async fn person(
        &self,
        project: ProjectId,
        id: &str,
        recent_events: usize,
    ) -> Result<Option<PersonProfile>, StoreError>;

    /// Recent events with their attribution, newest first.
    async fn events(&self, project: ProjectId, query: EventQuery) -> Result<Vec<EventRow>, StoreError>;

    /// Events for an insight, columnar, with persons and groups resolved as they are now.
    async fn scan(&self, project: ProjectId, request: ScanRequest) -> Result<EventScan, StoreError>;

    /// Insight aggregates computed by the backend's own engine, when it offers them (see
    /// [`aggregate`]); without, the query layer computes from [`Store::scan`].
    fn aggregates(&self) -> Option<&dyn aggregate::Aggregates> {
        None
    }

    /// Create or replace a saved document (cohort, insight, dashboard).
    async fn put_document(&self, project: ProjectId, document: Document) -> Result<(), StoreError>;

    /// Saved documents of one kind, oldest first.
    async fn documents(&self, project: ProjectId, kind: &str) -> Result<Vec<Document>, StoreError>;

    /// Delete a document; `false` when there was none.
    async fn delete_document(&self, project: ProjectId, kind: &str, id: &str) -> Result<bool, StoreError>;

    /// Append to the audit log of a project ([`INSTANCE`] for instance-wide actions).
    async fn append_audit(&self, project: ProjectId, entry: audit::AuditEntry) -> Result<(), StoreError> {
        self.put_document(project, entry.to_document()).await
    }

    /// A page of the audit log, newest first, of entries older than `before` (an entry id).
    async fn audit_log(
        &self,
        project: ProjectId,
        before: Option<String>,
        limit: usize,
    ) -> Result<Vec<audit::AuditEntry>, StoreError> {
        let docs = self.documents(project, audit::AUDIT_KIND).await?;
        let entries = docs.into_iter().filter_map(audit::AuditEntry::from_document).collect();
        Ok(audit::page(entries, before.as_deref(), limit))
    }

    /// Figures for `/metrics`: what the backend can tell cheaply.
    fn stats(&self) -> StoreStats {
        StoreStats::default()
    }

    /// A consistent copy of the whole store into `dir` while it keeps serving (`troupe backup`).
    /// Backends with their own backup tools (ClickHouse) say so instead.
    async fn backup(&self, dir: std::path::PathBuf) -> Result<BackupSummary, StoreError> {
        let _ = dir;
        Err(StoreError::Unsupported(
            "this store is backed up with its own tools (docs/clickhouse.md, \"Backups\")".into(),
        ))
    }

    /// Whether the store can take writes now (`/readyz`); `Err` says why not. A store that was
    /// halted by a failed write may use the call to recover.
    async fn ready(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Finish before the process exits (e.g. give up being a deployment's writer at once).
    async fn close(&self) {}
}
