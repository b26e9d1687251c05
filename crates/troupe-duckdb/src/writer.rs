//! The single writer. Every write goes through one thread that owns the write connection and the
//! live state of every project, so commands apply in arrival order and no update is lost.
//!
//! Group commit: the thread takes every job waiting in the channel, applies them all, persists
//! the resulting changes in one transaction and only then answers each job. DuckDB syncs its
//! WAL on commit, so an answer means the data survives `kill -9`.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{Duration, Utc};
use duckdb::Connection;
use tokio::sync::mpsc;
use troupe_core::{Changes, Limits, ProjectId, ProjectState};
use troupe_store::writer::{Job, Pending};
use troupe_store::{NewProject, Project, StoreError};

use crate::columns::{self, EventCache};
use crate::{load, persist, values};

/// Jobs taken into one transaction at most; bounds the latency of the first job in a burst.
const MAX_JOBS_PER_COMMIT: usize = 256;

pub type JobSender = mpsc::Sender<Job>;

pub struct Writer {
    conn: Connection,
    limits: Limits,
    dedupe_window: Duration,
    projects: Vec<Project>,
    states: HashMap<ProjectId, ProjectState>,
    /// Loaded projects' in-memory columns, appended to after each commit.
    cache: Arc<EventCache>,
    /// Committed changes are freed on a thread of their own: freeing a batch's events took a
    /// sixteenth of the writer's time in a bulk import.
    retired: Retired,
}

/// Where the writer sends committed changes to be freed.
pub type Retired = std::sync::mpsc::SyncSender<Vec<(ProjectId, Changes)>>;

/// The thread that frees what the writer retires; it ends when the writer (the sender) is gone.
pub fn spawn_freeing_thread() -> std::io::Result<Retired> {
    let (retired, to_free) = std::sync::mpsc::sync_channel::<Vec<(ProjectId, Changes)>>(2);
    std::thread::Builder::new().name("troupe-writer-free".into()).spawn(move || to_free.iter().for_each(drop))?;
    Ok(retired)
}

impl Writer {
    pub fn open(
        conn: Connection,
        limits: Limits,
        dedupe_window: Duration,
        cache: Arc<EventCache>,
        retired: Retired,
    ) -> duckdb::Result<Self> {
        let projects = load::projects(&conn)?;
        let mut writer = Writer { conn, limits, dedupe_window, projects, states: HashMap::new(), cache, retired };
        writer.reload()?;
        Ok(writer)
    }

    /// Rebuild every project's state from the database (at start and after a failed commit).
    fn reload(&mut self) -> duckdb::Result<()> {
        self.states.clear();
        for project in &self.projects {
            let state = load::project_state(&self.conn, project.id, self.limits.clone(), self.dedupe_window)?;
            self.states.insert(project.id, state);
        }
        Ok(())
    }

    pub fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        while let Some(first) = jobs.blocking_recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_JOBS_PER_COMMIT {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.process(batch);
        }
        if let Err(e) = self.conn.execute_batch("CHECKPOINT") {
            tracing::warn!(error = %e, "checkpoint at shutdown failed");
        }
    }

    fn process(&mut self, batch: Vec<Job>) {
        let cache = Arc::clone(&self.cache);
        // Held until the changes are in the cache too: see `columns` on consistency.
        let _gate = cache.gate();
        let mut pending = Vec::with_capacity(batch.len());
        let mut written = Vec::new();
        let committed = self.conn.execute_batch("BEGIN TRANSACTION").and_then(|_| {
            for job in batch {
                pending.push(self.run_job(job)?);
            }
            for state in self.states.values_mut() {
                let changes = state.take_changes();
                if !changes.is_empty() {
                    persist::changes(&self.conn, state, &changes)?;
                    written.push((state.project_id, changes));
                }
            }
            self.conn.execute_batch("COMMIT")
        });
        match committed {
            Ok(()) => {
                for (project, changes) in &written {
                    self.append_to_cache(*project, changes);
                }
                pending.into_iter().for_each(Pending::answer);
                // Only fails when the freeing thread is gone; the changes are then freed here.
                let _ = self.retired.send(written);
            }
            Err(e) => {
                tracing::error!(error = %e, "write transaction failed; reloading state");
                let _ = self.conn.execute_batch("ROLLBACK");
                self.projects = load::projects(&self.conn).unwrap_or_default();
                if let Err(reload) = self.reload() {
                    tracing::error!(error = %reload, "reloading state failed");
                }
                for p in pending {
                    p.fail(StoreError::Backend(format!("write failed, nothing was stored: {e}")));
                }
            }
        }
    }

    /// A committed batch's events and identity changes into the project's columns, when loaded.
    fn append_to_cache(&self, project: ProjectId, changes: &Changes) {
        let (Some(columns), Some(state)) = (self.cache.get(project), self.states.get(&project)) else { return };
        let mut columns = columns::write(&columns);
        for &slot in &changes.cleared_slots {
            columns.clear_slot(slot as usize);
        }
        for event in &changes.events {
            columns.push_stored(event);
        }
        for distinct_id in &changes.distinct_ids {
            let person = state.person_by_distinct_id(distinct_id).map(|p| p.id.to_string());
            columns.set_person(distinct_id, person.as_deref());
        }
    }

    fn run_job(&mut self, job: Job) -> duckdb::Result<Pending> {
        match job {
            Job::Apply { project, commands, reply } => {
                let results = troupe_store::apply_batch(self.states.get_mut(&project), project, commands, Utc::now());
                Ok(Pending::Apply(reply, results))
            }
            Job::CreateProject { new, reply } => {
                let result = self.create_project(new)?;
                Ok(Pending::Project(reply, result))
            }
        }
    }

    fn create_project(&mut self, new: NewProject) -> duckdb::Result<Result<Project, StoreError>> {
        let project = match troupe_store::next_project(&self.projects, new) {
            Ok(project) => project,
            Err(refused) => return Ok(Err(refused)),
        };
        let id = project.id;
        self.conn.execute(
            "INSERT INTO projects VALUES (?, ?, ?, ?, ?)",
            duckdb::params![
                project.id,
                project.name,
                project.ingestion_key,
                project.secret_key_hash,
                values::ts(project.created_at)
            ],
        )?;
        self.projects.push(project.clone());
        self.states.insert(id, ProjectState::new(id, self.limits.clone(), self.dedupe_window));
        Ok(Ok(project))
    }
}
