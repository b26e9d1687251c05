//! The single writer, first stage: the rules thread. Every write goes through it; it owns the
//! live state of every project, so commands apply in arrival order and no update is lost.
//!
//! Group commit: the thread takes every job waiting in the channel, applies them all, builds the
//! rows of the resulting changes and hands them to the commit thread ([`crate::commit`]), which
//! writes them in one transaction and only then answers each job.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering;

use chrono::{Duration, Utc};
use duckdb::Connection;
use tokio::sync::mpsc;
use troupe_core::{Limits, ProjectId, ProjectState};
use troupe_store::writer::{Job, Pending};
use troupe_store::{NewProject, Project, StoreError};

use crate::commit::{Batch, CommitLink, ToCommit};
use crate::load;
use crate::persist::ProjectWrite;

/// Jobs taken into one transaction at most; bounds the latency of the first job in a burst.
const MAX_JOBS_PER_COMMIT: usize = 256;

pub type JobSender = mpsc::Sender<Job>;

pub struct Writer {
    /// Reads the state back after a failed commit; the commit thread has its own connection.
    conn: Connection,
    limits: Limits,
    dedupe_window: Duration,
    projects: Vec<Project>,
    states: HashMap<ProjectId, ProjectState>,
    commits: CommitLink,
    /// The next event's sequence number: events are numbered in the order batches are built,
    /// which is the order they commit in (a failed batch leaves a gap).
    next_seq: u64,
}

impl Writer {
    pub fn open(
        conn: Connection,
        limits: Limits,
        dedupe_window: Duration,
        commits: CommitLink,
    ) -> duckdb::Result<Self> {
        let projects = load::projects(&conn)?;
        let next_seq = crate::schema::last_event_seq(&conn)? + 1;
        let mut writer = Writer { conn, limits, dedupe_window, projects, states: HashMap::new(), commits, next_seq };
        writer.reload()?;
        Ok(writer)
    }

    /// Rebuild every project's state from the database (at start and after a failed commit).
    fn reload(&mut self) -> duckdb::Result<()> {
        crate::persist::prune_retry_keys(&self.conn, Utc::now() - self.dedupe_window)?;
        self.states.clear();
        for project in &self.projects {
            let state = load::project_state(&self.conn, project.id, self.limits.clone(), self.dedupe_window)?;
            self.states.insert(project.id, state);
        }
        Ok(())
    }

    /// Apply jobs until every sender is gone, then wait for the commit thread to write the last
    /// batch and checkpoint.
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
        let CommitLink { sender, thread, .. } = self.commits;
        drop(sender);
        if thread.join().is_err() {
            tracing::error!("the commit thread panicked");
        }
    }

    fn process(&mut self, jobs: Vec<Job>) {
        if self.commits.reload_needed.swap(false, Ordering::Acquire) {
            self.recover();
        }
        let mut batch = Batch::default();
        let mut panicked = false;
        for job in jobs {
            panicked |= !self.run_job(job, &mut batch);
        }
        if panicked {
            // The state may hold part of the job that panicked: nothing of the group is
            // written, and the state is read back from what is committed.
            self.states.values_mut().for_each(|state| drop(state.take_changes()));
            for pending in batch.pending {
                pending.fail(troupe_store::writer::innocent_of_panic());
            }
            self.recover_after_panic();
            return;
        }
        for state in self.states.values_mut() {
            let changes = state.take_changes();
            if changes.is_empty() {
                continue;
            }
            let next_seq = &mut self.next_seq;
            let built = std::panic::catch_unwind(AssertUnwindSafe(|| ProjectWrite::new(state, &changes, next_seq)));
            match built {
                Ok(Ok(write)) => batch.writes.push((state.project_id, changes, write)),
                Ok(Err(e)) => batch.broken = Some(format!("cannot build the rows of the batch: {e}")),
                Err(panic) => {
                    let message = troupe_store::writer::panic_message(panic.as_ref());
                    batch.broken = Some(format!("building the rows of the batch panicked: {message}"));
                }
            }
        }
        if let Err(std::sync::mpsc::SendError(ToCommit::Batch(batch))) =
            self.commits.sender.send(ToCommit::Batch(batch))
        {
            batch.fail(StoreError::Internal, "the commit thread has stopped; nothing was stored");
        }
    }

    /// A commit failed: the state holds batches that were not stored. The commit thread fails
    /// every batch until told to resume, so what is in the database now is all that was committed.
    fn recover(&mut self) {
        self.projects = load::projects(&self.conn).unwrap_or_default();
        if let Err(e) = self.reload() {
            tracing::error!(error = %e, "reloading state failed");
            // Still halted: the next job tries again.
            self.commits.reload_needed.store(true, Ordering::Release);
            return;
        }
        if self.commits.sender.send(ToCommit::Resume).is_err() {
            tracing::error!("the commit thread has stopped");
        }
    }

    /// A job panicked in the rules: wait until the commit thread has finished every batch sent
    /// before (their state is in ours), then read the state back from the database.
    fn recover_after_panic(&mut self) {
        let (done, wait) = std::sync::mpsc::sync_channel(1);
        if self.commits.sender.send(ToCommit::Barrier(done)).is_ok() {
            let _ = wait.recv();
        }
        self.commits.reload_needed.store(false, Ordering::Release);
        self.recover();
    }

    /// Apply one job into `batch`; `false` when it panicked (its caller has heard so).
    fn run_job(&mut self, job: Job, batch: &mut Batch) -> bool {
        match job {
            Job::Apply { project, commands, reply } => {
                let state = self.states.get_mut(&project);
                match troupe_store::writer::apply_caught(state, project, commands, Utc::now()) {
                    Ok(results) => batch.pending.push(Pending::Apply(reply, results)),
                    Err(panic) => {
                        tracing::error!(project, panic = %panic, "applying a write panicked; reloading state");
                        let _ = reply.send(Err(troupe_store::writer::write_panicked()));
                        return false;
                    }
                }
            }
            Job::CreateProject { new, reply } => {
                let result = self.create_project(new);
                if let Ok(project) = &result {
                    batch.created_projects.push(project.clone());
                }
                batch.pending.push(Pending::Project(reply, result));
            }
        }
        true
    }

    /// The project is in the state at once; its row is written with the batch.
    fn create_project(&mut self, new: NewProject) -> Result<Project, StoreError> {
        let project = troupe_store::next_project(&self.projects, new)?;
        self.projects.push(project.clone());
        self.states.insert(project.id, ProjectState::new(project.id, self.limits.clone(), self.dedupe_window));
        Ok(project)
    }
}
