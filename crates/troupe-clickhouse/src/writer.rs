//! The writer: one task per store applies every command with the core rules on the live state of
//! each project, in arrival order, and answers only after ClickHouse holds the batch.
//!
//! Group commit: the task takes every job waiting in the channel, applies them all, writes the
//! resulting rows with one INSERT per table, then answers each job. Several troupe processes on one
//! ClickHouse must not write the same project at once (each would hold its own state): see
//! docs/clickhouse.md for how a deployment routes a project's writes to one process.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{Duration, Utc};
use tokio::sync::mpsc;
use troupe_core::working_set::{Needs, Touched};
use troupe_core::{Limits, ProjectId, ProjectState};
use troupe_store::writer::{Job, Pending};
use troupe_store::{NewProject, Project, StoreError};

use crate::http::Http;
use crate::rows::{ProjectRow, Versions};
use crate::{load, persist, working_set, ClickHouseError};

/// Jobs taken into one batch at most; bounds the latency of the first job in a burst.
const MAX_JOBS_PER_BATCH: usize = 256;

/// How often the retry keys of id-less writes older than the retry window are deleted (a
/// mutation, so not after every batch): the table then holds about this much beyond the window.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// A batch applied to the state, with its rows.
struct Applied {
    pending: Vec<Pending>,
    rows: BatchRows,
    /// What the batch changed, per project: held until it is written.
    touched: Unwritten,
    /// A job panicked: nothing of the batch may be written.
    panicked: bool,
}

/// What batches applied but not yet written changed, per project.
type Unwritten = HashMap<ProjectId, Touched>;

/// Everything one batch writes.
struct BatchRows {
    projects: Vec<ProjectRow>,
    changed: Vec<persist::ProjectRows>,
}

/// A batch whose rows are being written.
struct InFlight {
    task: tokio::task::JoinHandle<Result<(), ClickHouseError>>,
    pending: Vec<Pending>,
    touched: Unwritten,
}

async fn write_batch(http: &Http, versions: &Versions, rows: BatchRows) -> Result<(), ClickHouseError> {
    http.insert("projects", &rows.projects).await?;
    for project in rows.changed {
        persist::write(http, versions, project).await?;
    }
    Ok(())
}

/// A write task's outcome; a task that panicked is a failed write.
fn flatten(joined: Result<Result<(), ClickHouseError>, tokio::task::JoinError>) -> Result<(), ClickHouseError> {
    joined.unwrap_or_else(|e| Err(ClickHouseError::Schema(format!("the write task failed: {e}"))))
}

pub struct Writer {
    pub http: Http,
    pub limits: Limits,
    pub dedupe_window: Duration,
    /// `group_<slot>` for every slot the events table has (fixed while the writer runs).
    pub group_columns: Arc<[String]>,
    pub projects: Vec<Project>,
    pub states: HashMap<ProjectId, ProjectState>,
    pub versions: Versions,
    /// A write failed and the state could not be read back yet (ClickHouse away): it may hold
    /// what was never stored, so no job is applied until a reload succeeds.
    pub stale: bool,
    /// When the retry keys were last pruned (see [`PRUNE_EVERY`]).
    pub pruned: std::time::Instant,
    /// Persons, groups and client id hashes held between batches, over all projects; past it
    /// the states forget all but what an unwritten batch changed.
    pub cache_limit: usize,
    /// Projects marked as having stored an event with untyped group ids (see schema 6).
    pub untyped: HashSet<ProjectId>,
}

impl Writer {
    pub async fn open(
        http: Http,
        limits: Limits,
        dedupe_window: Duration,
        group_slots: usize,
    ) -> Result<Self, ClickHouseError> {
        let projects = load::projects(&http).await?;
        let http_cache_limit = http.config().writer_cache;
        let mut writer = Writer {
            http,
            limits,
            dedupe_window,
            group_columns: (0..group_slots).map(|slot| format!("group_{slot}")).collect(),
            projects,
            states: HashMap::new(),
            versions: Versions::default(),
            stale: false,
            pruned: std::time::Instant::now(),
            cache_limit: http_cache_limit,
            untyped: HashSet::new(),
        };
        writer.reload().await?;
        Ok(writer)
    }

    /// Start again from what ClickHouse holds: the projects, and each one's group types and
    /// retry window (everything else is looked up as batches need it).
    async fn reload(&mut self) -> Result<(), ClickHouseError> {
        self.projects = load::projects(&self.http).await?;
        self.untyped = load::projects_with_untyped_ids(&self.http).await?;
        self.states.clear();
        for project in &self.projects {
            let state = load::project_state(&self.http, project.id, self.limits.clone(), self.dedupe_window).await?;
            self.states.insert(project.id, state);
        }
        Ok(())
    }

    /// Read the state back after a batch that was not stored; when that fails too, the state
    /// is stale and the next batch tries again before applying anything.
    async fn reload_or_mark_stale(&mut self) {
        if let Err(reload) = self.reload().await {
            tracing::error!(error = %reload, "reloading state failed; writes are refused until it succeeds");
            self.stale = true;
        }
    }

    /// Take every waiting job into a batch, apply it, and write its rows while applying the
    /// next batch: writes stay one at a time and in order, and a batch is answered only when its
    /// write succeeded (durable before visible). When a write fails, the batch applied after it
    /// (whose rows were never sent) fails too, and the state is read back from ClickHouse.
    pub async fn run(mut self, mut jobs: mpsc::Receiver<Job>) {
        let mut in_flight: Option<InFlight> = None;
        loop {
            let first = match in_flight.as_mut() {
                None => match jobs.recv().await {
                    Some(job) => job,
                    None => break,
                },
                Some(write) => tokio::select! {
                    written = &mut write.task => {
                        let finished = in_flight.take();
                        if let Some(write) = finished {
                            self.finish(write.pending, flatten(written)).await;
                        }
                        continue;
                    }
                    job = jobs.recv() => match job {
                        Some(job) => job,
                        None => break,
                    },
                },
            };
            let mut batch = vec![first];
            while batch.len() < MAX_JOBS_PER_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            let unwritten = in_flight.as_ref().map(|w| &w.touched);
            let applied = self.apply(batch, unwritten).await;
            // The previous batch's write ends before this one's starts (and before any reload).
            if let Some(write) = in_flight.take() {
                let written = flatten(write.task.await);
                if let Some(error) = self.finish(write.pending, written).await {
                    // Applied on a state that held the failed batch; the state was read back.
                    if let Some(applied) = applied {
                        applied.pending.into_iter().for_each(|p| p.fail(error.to_store_error()));
                    }
                    continue;
                }
            }
            match applied {
                Some(Applied { pending, rows, panicked: true, .. }) => {
                    drop(rows);
                    // The state may hold part of the job that panicked: nothing of the group is
                    // written, and the state is read back from ClickHouse.
                    self.reload_or_mark_stale().await;
                    for p in pending {
                        p.fail(troupe_store::writer::innocent_of_panic());
                    }
                }
                Some(Applied { pending, rows, touched, panicked: false }) => {
                    let (http, versions) = (self.http.clone(), self.versions.clone());
                    let task = tokio::spawn(async move { write_batch(&http, &versions, rows).await });
                    in_flight = Some(InFlight { task, pending, touched });
                }
                None => {}
            }
        }
        if let Some(write) = in_flight.take() {
            let written = flatten(write.task.await);
            self.finish(write.pending, written).await;
        }
    }

    /// Apply a batch to the state and take its rows; `None` when it was refused (the state is
    /// stale and ClickHouse still unavailable: every job heard so).
    async fn apply(&mut self, batch: Vec<Job>, unwritten: Option<&Unwritten>) -> Option<Applied> {
        // Durable before visible: after a failed write the state is read back from ClickHouse
        // before anything is applied to it again; while that fails, every job is refused
        // (nothing recorded as seen, so the client's retry is applied once ClickHouse is back).
        if self.stale {
            if let Err(e) = self.reload().await {
                tracing::warn!(error = %e, "ClickHouse still unavailable; refusing writes");
                for job in batch {
                    job.refuse(StoreError::Unavailable("ClickHouse is unavailable; nothing was stored".into()));
                }
                return None;
            }
            self.stale = false;
        }
        let nothing = Unwritten::new();
        let unwritten = unwritten.unwrap_or(&nothing);
        if let Err(e) = self.load_working_set(&batch, unwritten).await {
            // Nothing was applied: the state holds only what ClickHouse holds, so it stays.
            tracing::warn!(error = %e, "reading a batch's persons, groups or ids failed; refusing it");
            for job in batch {
                job.refuse(e.to_store_error());
            }
            return None;
        }
        let mut pending = Vec::with_capacity(batch.len());
        let mut new_projects = Vec::new();
        let mut panicked = false;
        for job in batch {
            match self.run_job(job, &mut new_projects) {
                Some(p) => pending.push(p),
                None => panicked = true,
            }
        }
        let (rows, touched) = self.take_rows(&new_projects);
        Some(Applied { pending, rows, touched, panicked })
    }

    /// Make each project's state hold what the batch reads: first forget what is past the cache
    /// limit (keeping what the unwritten batch changed), then look up what is not held.
    async fn load_working_set(&mut self, batch: &[Job], unwritten: &Unwritten) -> Result<(), ClickHouseError> {
        let nothing = Touched::default();
        let held: usize = self.states.values().map(|s| s.held().total()).sum();
        if held > self.cache_limit {
            for (project, state) in &mut self.states {
                state.evict_except(unwritten.get(project).unwrap_or(&nothing));
            }
        }
        let mut needs: HashMap<ProjectId, Needs> = HashMap::new();
        for job in batch {
            if let Job::Apply { project, commands, .. } = job {
                let project_needs = needs.entry(*project).or_default();
                commands.iter().for_each(|c| project_needs.add(c));
            }
        }
        for (project, needs) in needs {
            // A project created in this batch has nothing stored yet.
            if let Some(state) = self.states.get_mut(&project) {
                working_set::load(&self.http, state, &needs, unwritten.get(&project).unwrap_or(&nothing)).await?;
            }
        }
        Ok(())
    }

    /// Answer a written batch, or fail it and read the state back when its write failed (the
    /// error is handed back).
    async fn finish(&mut self, pending: Vec<Pending>, written: Result<(), ClickHouseError>) -> Option<ClickHouseError> {
        match written {
            Ok(()) => {
                pending.into_iter().for_each(Pending::answer);
                self.prune_when_due().await;
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "ClickHouse write failed; reloading state");
                self.reload_or_mark_stale().await;
                for p in pending {
                    p.fail(e.to_store_error());
                }
                Some(e)
            }
        }
    }

    /// Delete expired content keys once every [`PRUNE_EVERY`]; a failure is logged and tried
    /// again at the next interval (the keys are only dead weight, never wrong).
    async fn prune_when_due(&mut self) {
        if self.pruned.elapsed() < PRUNE_EVERY {
            return;
        }
        self.pruned = std::time::Instant::now();
        let before = (Utc::now() - self.dedupe_window).timestamp_micros();
        if let Err(e) = persist::prune_retry_keys(&self.http, before).await {
            tracing::warn!(error = %e, "pruning expired retry keys failed; trying again later");
        }
    }

    /// The rows of everything applied since the last call: new projects, then each project's
    /// changes.
    fn take_rows(&mut self, new_projects: &[Project]) -> (BatchRows, Unwritten) {
        let row = |p: &Project, has_untyped: bool| ProjectRow {
            id: p.id,
            name: p.name.clone(),
            ingestion_key: p.ingestion_key.clone(),
            secret_key_hash: p.secret_key_hash.clone(),
            created_at: p.created_at.timestamp_micros(),
            version: self.versions.next(),
            deleted: 0,
            has_untyped: u8::from(has_untyped),
        };
        let mut projects: Vec<ProjectRow> = new_projects.iter().map(|p| row(p, false)).collect();
        let mut changed = Vec::new();
        let mut touched = Unwritten::new();
        for (project, state) in self.states.iter_mut() {
            let changes = state.take_changes();
            // The mark is written with (before) the first such event: a question never misses
            // one. A write that fails after it leaves a mark with no event, which only costs speed.
            if !self.untyped.contains(project) && changes.events.iter().any(|e| !e.untyped_groups.is_empty()) {
                if let Some(p) = self.projects.iter().find(|p| p.id == *project) {
                    projects.push(row(p, true));
                    self.untyped.insert(*project);
                }
            }
            if !changes.is_empty() {
                touched.insert(*project, Touched::of(&changes));
                changed.push(persist::rows(&self.versions, state, changes, &self.group_columns));
            }
        }
        (BatchRows { projects, changed }, touched)
    }

    /// Apply one job; `None` when it panicked (its caller has heard so).
    fn run_job(&mut self, job: Job, new_projects: &mut Vec<Project>) -> Option<Pending> {
        match job {
            Job::Apply { project, commands, reply } => {
                let state = self.states.get_mut(&project);
                match troupe_store::writer::apply_caught(state, project, commands, Utc::now()) {
                    Ok(results) => Some(Pending::Apply(reply, results)),
                    Err(panic) => {
                        tracing::error!(project, panic = %panic, "applying a write panicked; reloading state");
                        let _ = reply.send(Err(troupe_store::writer::write_panicked()));
                        None
                    }
                }
            }
            Job::CreateProject { new, reply } => {
                let result = self.create_project(new);
                if let Ok(project) = &result {
                    new_projects.push(project.clone());
                }
                Some(Pending::Project(reply, result))
            }
        }
    }

    fn create_project(&mut self, new: NewProject) -> Result<Project, StoreError> {
        let project = troupe_store::next_project(&self.projects, new)?;
        self.projects.push(project.clone());
        self.states.insert(project.id, ProjectState::new(project.id, self.limits.clone(), self.dedupe_window));
        Ok(project)
    }
}
