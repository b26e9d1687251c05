//! The embedded store, troupe's default: one data directory with a DuckDB database inside, no
//! server to install.
//!
//! Writes go to one writer thread ([`writer`]) that applies the core rules and commits in
//! groups; reads run on a small pool of reader connections on the blocking thread pool.

mod audit;
pub mod backup;
mod columns;
mod commit;
mod documents;
mod load;
mod persist;
mod read;
mod scan;
mod schema;
mod values;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use chrono::Duration;
use duckdb::Connection;
use tokio::sync::{mpsc, oneshot};
use troupe_core::{Limits, PreparedCommand, ProjectId};
use troupe_store::audit::AuditEntry;
use troupe_store::{
    BackupSummary, CommandResult, Document, EventQuery, EventRow, EventScan, GroupProfile, GroupQuery, GroupRow,
    GroupTypeInfo, NewProject, Page, PersonProfile, PersonQuery, PersonRow, Project, ScanRequest, Store, StoreError,
    StoreStats,
};

use columns::EventCache;
pub use schema::SCHEMA_VERSION;
use troupe_store::writer::Job;
use writer::{JobSender, Writer};

/// The database file inside the data directory.
pub const DB_FILE: &str = "troupe.duckdb";
/// The directory of the projects' column snapshots inside the data directory (a cache of the
/// database: deleting it costs the next start's first questions a read of every event).
pub const SNAPSHOT_DIR: &str = "columns";

/// DuckDB's own memory (its block cache and query working memory): room for the writer's
/// batches (at 64 MB ingestion was a fifth slower).
const DUCKDB_MEMORY_LIMIT: &str = "256MB";
/// DuckDB's memory while a project's events are read into columns: the blocks it reads are of
/// no use afterwards (questions read the columns), and keeping them would put the first
/// question's peak over 1 GB at 10M events.
const DUCKDB_LOAD_MEMORY_LIMIT: &str = "64MB";

/// WAL size at which DuckDB folds it into the database file. At the default 16 MB a bulk
/// import checkpointed every ~50k events and spent a sixth of the writer's time there (1M-event
/// import 8.1 -> 6.9 s at 64 MB). A restart after a crash replays at most this much WAL.
const DUCKDB_CHECKPOINT_THRESHOLD: &str = "64MB";

/// Jobs that may wait for the writer before senders are slowed down.
const WRITER_QUEUE: usize = 4096;

#[derive(Debug, Clone)]
pub struct EmbeddedConfig {
    /// The data directory; `None` keeps everything in memory (tests).
    pub data_dir: Option<PathBuf>,
    pub limits: Limits,
    /// How long an id-less event is remembered to drop client retries.
    pub dedupe_window: Duration,
    /// DuckDB's worker threads. One by default: DuckDB's main work here is the writer's commits
    /// and checkpoints, during which the writer thread spins waiting on its helpers, and insights
    /// read troupe's own columns (their load measured no faster with two). A 10M-event import
    /// took 57.4 s with one, 60.5 s with two on 2 cores. The benchmark's plain-SQL reference
    /// opens with every core.
    pub duckdb_threads: usize,
    /// Hands the memory the allocator holds freed back to the operating system. Called on the
    /// loading thread after a project's columns load: the load frees about as much as it keeps
    /// (DuckDB's batches, the sort's scratch), and an allocator that holds freed memory for a
    /// while (mimalloc purges after a second) would otherwise add it to the first question's
    /// peak. The binary owns the allocator, so it supplies this; `None` does nothing.
    pub release_freed_memory: Option<fn()>,
    /// Load, at open, the columns of every project with a snapshot (beside the writer reading
    /// its state), so that a server's first question after a restart finds them loaded. Off
    /// for commands that ask no question or one (the import would otherwise append to columns
    /// nobody reads, and save them).
    pub preload_columns: bool,
}

impl Default for EmbeddedConfig {
    fn default() -> Self {
        EmbeddedConfig {
            data_dir: None,
            limits: Limits::default(),
            dedupe_window: Duration::seconds(30),
            duckdb_threads: 1,
            release_freed_memory: None,
            preload_columns: false,
        }
    }
}

pub struct DuckStore {
    jobs: JobSender,
    readers: Arc<Readers>,
    cache: Arc<EventCache>,
    group_slots: usize,
    writer_thread: Mutex<Option<JoinHandle<()>>>,
    /// Loads, at start, the columns of the projects that have a snapshot (see [`Self::open`]).
    _preload: Preload,
    /// Set while the writer refuses writes after a failed commit (see [`commit`]).
    halted: Arc<AtomicBool>,
    data_dir: Option<PathBuf>,
}

impl DuckStore {
    /// Open (creating when needed) the store, migrate it, and start the writer.
    pub fn open(config: EmbeddedConfig) -> Result<Self, StoreError> {
        let conn = match &config.data_dir {
            Some(dir) => open_file(dir)?,
            None => Connection::open_in_memory().map_err(backend)?,
        };
        // DuckDB would keep up to 80% of the machine's memory of table blocks cached; insights
        // read troupe's in-memory columns instead, so its cache is kept small (it spills to
        // disk past this, it does not fail).
        conn.execute_batch(&format!("SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'")).map_err(backend)?;
        conn.execute_batch(&format!("SET checkpoint_threshold = '{DUCKDB_CHECKPOINT_THRESHOLD}'")).map_err(backend)?;
        conn.execute_batch(&format!("SET threads = {}", config.duckdb_threads.max(1))).map_err(backend)?;
        if let Some(dir) = &config.data_dir {
            backup::before_migrating(&conn, dir)?;
        }
        schema::migrate(&conn).map_err(backend)?;
        // A lowered limit never hides types that already exist: their columns stay.
        let group_slots = config.limits.max_group_types.max(schema::used_slots(&conn).map_err(backend)?);
        schema::ensure_group_columns(&conn, group_slots).map_err(backend)?;
        let writer_conn = conn.try_clone().map_err(backend)?;
        let commit_conn = conn.try_clone().map_err(backend)?;
        let snapshots = match &config.data_dir {
            Some(dir) => {
                let snapshots = dir.join(SNAPSHOT_DIR);
                std::fs::create_dir_all(&snapshots).map_err(|e| {
                    StoreError::Internal(format!("cannot create the snapshot directory {}: {e}", snapshots.display()))
                })?;
                Some(snapshots)
            }
            None => None,
        };
        let cache = Arc::new(EventCache::new(config.release_freed_memory, snapshots));
        // The columns of projects asked about before (those with a snapshot) are loaded while the
        // writer reads its state, on the other core: the first question after a restart finds
        // them loaded (or waits for the load under way) instead of waiting for both in turn.
        let preload_thread = if config.preload_columns { preload(&conn, &cache, group_slots)? } else { Preload(None) };
        let commits = commit::spawn(commit_conn, Arc::clone(&cache), config.dedupe_window)
            .map_err(|e| StoreError::Internal(format!("cannot start the writer's commit thread: {e}")))?;
        let halted = Arc::clone(&commits.halted);
        let writer =
            Writer::open(writer_conn, config.limits.clone(), config.dedupe_window, commits).map_err(backend)?;
        // The writer's state is read: the table blocks DuckDB cached for it are of no further use
        // (lowering the limit evicts them), and would stay in the process's memory otherwise.
        conn.execute_batch(&format!(
            "SET memory_limit = '{DUCKDB_LOAD_MEMORY_LIMIT}'; SET memory_limit = '{DUCKDB_MEMORY_LIMIT}'"
        ))
        .map_err(backend)?;
        let (jobs, receiver) = mpsc::channel(WRITER_QUEUE);
        let thread = std::thread::Builder::new()
            .name("troupe-writer".into())
            .spawn(move || writer.run(receiver))
            .map_err(|e| StoreError::Internal(format!("cannot start the writer thread: {e}")))?;
        Ok(DuckStore {
            jobs,
            readers: Arc::new(Readers { base: Mutex::new(conn), idle: Mutex::new(Vec::new()) }),
            cache,
            group_slots,
            writer_thread: Mutex::new(Some(thread)),
            _preload: preload_thread,
            halted,
            data_dir: config.data_dir.clone(),
        })
    }

    /// Run one read-only SQL statement and return its rows, every column cast to a number by the
    /// statement's author. For the benchmark's plain-SQL references; not part of the `Store`
    /// trait, being backend-specific by nature.
    pub async fn sql_numbers(&self, sql: String) -> Result<Vec<Vec<f64>>, StoreError> {
        self.read(move |conn, _| {
            let mut stmt = conn.prepare(&sql)?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let columns = r.as_ref().column_count();
                out.push(
                    (0..columns)
                        .map(|i| r.get::<_, Option<f64>>(i).map(|v| v.unwrap_or(f64::NAN)))
                        .collect::<duckdb::Result<_>>()?,
                );
            }
            Ok(out)
        })
        .await
    }

    /// The schema version of the database in `data_dir`, without starting a writer.
    pub fn schema_version(data_dir: &Path) -> Result<i32, StoreError> {
        let conn = open_file(data_dir)?;
        schema::schema_version(&conn).map_err(backend)
    }

    async fn send<T>(&self, job: impl FnOnce(oneshot::Sender<T>) -> Job) -> Result<T, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(job(reply)).await.map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)
    }

    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection, usize) -> duckdb::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = Arc::clone(&self.readers);
        let slots = self.group_slots;
        tokio::task::spawn_blocking(move || readers.with(|conn| f(conn, slots)))
            .await
            .map_err(|e| StoreError::Internal(format!("reader task failed: {e}")))?
    }
}

impl Drop for DuckStore {
    /// Closing the channel stops the writer after it commits what it has; wait for it so the
    /// database is checkpointed and unlocked when the store is gone.
    fn drop(&mut self) {
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.jobs, closed));
        if let Some(thread) = self.writer_thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = thread.join();
        }
    }
}

/// The thread loading the columns at start. It holds a connection, so it is waited for when
/// dropped (with the store, or when the store failed to open): the database closes after it.
struct Preload(Option<JoinHandle<()>>);

impl Drop for Preload {
    fn drop(&mut self) {
        if let Some(thread) = self.0.take() {
            let _ = thread.join();
        }
    }
}

/// Start loading the columns of every project with a snapshot, on a thread of its own. A
/// failed load is logged: the first question tries again.
fn preload(conn: &Connection, cache: &Arc<EventCache>, group_slots: usize) -> Result<Preload, StoreError> {
    let projects = cache.snapshotted_projects();
    if projects.is_empty() {
        return Ok(Preload(None));
    }
    let conn = conn.try_clone().map_err(backend)?;
    let cache = Arc::clone(cache);
    let thread = std::thread::Builder::new()
        .name("troupe-columns-preload".into())
        .spawn(move || {
            for project in projects {
                if let Err(e) = scan::columns(&conn, project, &cache, group_slots) {
                    tracing::warn!(project, error = %e, "loading the columns at start failed; the first question loads them");
                }
            }
        })
        .map_err(|e| StoreError::Internal(format!("cannot start the columns' preload thread: {e}")))?;
    Ok(Preload(Some(thread)))
}

fn open_file(dir: &Path) -> Result<Connection, StoreError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| StoreError::Internal(format!("cannot create data directory {}: {e}", dir.display())))?;
    let file = dir.join(DB_FILE);
    Connection::open(&file).map_err(|e| {
        let message = e.to_string();
        if message.contains("lock") {
            StoreError::Internal(format!(
                "the data directory {} is in use by another troupe process (stop it, or use another --data-dir)",
                dir.display()
            ))
        } else {
            StoreError::Internal(format!("cannot open {}: {message}", file.display()))
        }
    })
}

fn backend(e: duckdb::Error) -> StoreError {
    StoreError::Internal(e.to_string())
}

/// Reader connections share the writer's database instance and see every committed write.
struct Readers {
    base: Mutex<Connection>,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> duckdb::Result<T>) -> Result<T, StoreError> {
        self.with_store_error(|conn| f(conn).map_err(backend))
    }

    fn with_store_error<T>(&self, f: impl FnOnce(&Connection) -> Result<T, StoreError>) -> Result<T, StoreError> {
        let pooled = self.idle.lock().map_err(|_| poisoned())?.pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => self.base.lock().map_err(|_| poisoned())?.try_clone().map_err(backend)?,
        };
        let result = f(&conn);
        self.idle.lock().map_err(|_| poisoned())?.push(conn);
        result
    }
}

fn poisoned() -> StoreError {
    StoreError::Internal("a reader connection lock was poisoned".into())
}

#[async_trait]
impl Store for DuckStore {
    async fn create_project(&self, new: NewProject) -> Result<Project, StoreError> {
        self.send(|reply| Job::CreateProject { new, reply }).await?
    }

    async fn projects(&self) -> Result<Vec<Project>, StoreError> {
        self.read(|conn, _| load::projects(conn)).await
    }

    async fn apply_prepared(
        &self,
        project: ProjectId,
        commands: Vec<PreparedCommand>,
    ) -> Result<Vec<CommandResult>, StoreError> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        self.send(|reply| Job::Apply { project, commands, reply }).await?
    }

    async fn group_types(&self, project: ProjectId) -> Result<Vec<GroupTypeInfo>, StoreError> {
        self.read(move |conn, _| read::group_types(conn, project)).await
    }

    /// Ready while the writer runs and is not halted by a failed commit. A halted writer
    /// reloads its state when it next takes a job: an empty one is sent for that, so that a
    /// load balancer polling this route brings the store back without a client's write.
    async fn ready(&self) -> Result<(), StoreError> {
        let writer_gone = self.writer_thread.lock().map_or(true, |t| t.as_ref().is_none_or(|t| t.is_finished()));
        if writer_gone || self.jobs.is_closed() {
            return Err(StoreError::Unavailable("the writer has stopped".into()));
        }
        if self.halted.load(Ordering::Acquire) {
            self.send(|reply| Job::Apply { project: 0, commands: Vec::new(), reply }).await??;
            if self.halted.load(Ordering::Acquire) {
                return Err(StoreError::Unavailable("the writer is recovering from a failed write".into()));
            }
        }
        Ok(())
    }

    /// Without the count of groups per type, which cost a scan of the group profiles (~6 ms at
    /// 5,000 companies) in every insight question about groups.
    async fn group_type_names(&self, project: ProjectId) -> Result<Vec<String>, StoreError> {
        self.read(move |conn, _| read::group_type_names(conn, project)).await
    }

    async fn groups(&self, project: ProjectId, query: GroupQuery) -> Result<Page<GroupRow>, StoreError> {
        self.read(move |conn, _| read::groups(conn, project, &query)).await
    }

    async fn group(
        &self,
        project: ProjectId,
        group_type: &str,
        group_key: &str,
        recent_events: usize,
    ) -> Result<Option<GroupProfile>, StoreError> {
        let (group_type, group_key) = (group_type.to_string(), group_key.to_string());
        self.read(move |conn, slots| read::group(conn, project, &group_type, &group_key, recent_events, slots)).await
    }

    async fn persons(&self, project: ProjectId, query: PersonQuery) -> Result<Page<PersonRow>, StoreError> {
        self.read(move |conn, _| read::persons(conn, project, &query)).await
    }

    async fn person(
        &self,
        project: ProjectId,
        id: &str,
        recent_events: usize,
    ) -> Result<Option<PersonProfile>, StoreError> {
        let id = id.to_string();
        self.read(move |conn, slots| read::person(conn, project, &id, recent_events, slots)).await
    }

    async fn events(&self, project: ProjectId, query: EventQuery) -> Result<Vec<EventRow>, StoreError> {
        self.read(move |conn, slots| read::events(conn, project, &query, slots)).await
    }

    async fn scan(&self, project: ProjectId, request: ScanRequest) -> Result<EventScan, StoreError> {
        let cache = Arc::clone(&self.cache);
        self.read(move |conn, slots| scan::scan(conn, project, &request, &cache, slots)).await
    }

    async fn append_audit(&self, project: ProjectId, entry: AuditEntry) -> Result<(), StoreError> {
        self.read(move |conn, _| audit::append(conn, project, &entry)).await
    }

    async fn audit_log(
        &self,
        project: ProjectId,
        before: Option<String>,
        limit: usize,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(move |conn, _| audit::page(conn, project, before.as_deref(), limit)).await
    }

    fn stats(&self) -> StoreStats {
        let writer_queue = Some((WRITER_QUEUE - self.jobs.capacity()) as u64);
        let size_bytes = self.data_dir.as_ref().map(|dir| {
            [DB_FILE.to_string(), format!("{DB_FILE}.wal")]
                .iter()
                .filter_map(|name| std::fs::metadata(dir.join(name)).ok())
                .map(|m| m.len())
                .sum()
        });
        StoreStats { writer_queue, size_bytes }
    }

    async fn backup(&self, dir: PathBuf) -> Result<BackupSummary, StoreError> {
        if self.data_dir.is_none() {
            return Err(StoreError::Unsupported("an in-memory store has nothing to back up".into()));
        }
        let readers = Arc::clone(&self.readers);
        tokio::task::spawn_blocking(move || readers.with_store_error(|conn| backup::copy_to(conn, &dir)))
            .await
            .map_err(|e| StoreError::Internal(format!("backup task failed: {e}")))?
    }

    async fn put_document(&self, project: ProjectId, document: Document) -> Result<(), StoreError> {
        self.read(move |conn, _| documents::put(conn, project, &document)).await
    }

    async fn documents(&self, project: ProjectId, kind: &str) -> Result<Vec<Document>, StoreError> {
        let kind = kind.to_string();
        self.read(move |conn, _| documents::list(conn, project, &kind)).await
    }

    async fn delete_document(&self, project: ProjectId, kind: &str, id: &str) -> Result<bool, StoreError> {
        let (kind, id) = (kind.to_string(), id.to_string());
        self.read(move |conn, _| documents::delete(conn, project, &kind, &id)).await
    }
}
