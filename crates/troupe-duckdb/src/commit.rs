//! The commit thread: the second stage of the writer. It owns the write connection, writes each
//! batch the rules thread ([`crate::writer`]) built in one transaction, appends it to the
//! in-memory columns and only then answers the batch's jobs. DuckDB syncs its WAL on commit, so
//! an answer means the data survives `kill -9`.
//!
//! While it commits one batch the rules thread applies the next: on a bulk import the two
//! halves of the work, each about half, run on both cores.
//!
//! A failed commit: the rules thread's state already holds that batch and maybe later ones. The
//! commit thread fails the batch and every batch after it, writing nothing, until the rules
//! thread has read its state back from the database and says so ([`ToCommit::Resume`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use duckdb::Connection;
use troupe_core::{Changes, ProjectId};
use troupe_store::writer::Pending;
use troupe_store::{Project, StoreError};

use crate::columns::{self, EventCache};
use crate::persist::ProjectWrite;
use crate::values;

/// Batches built ahead of the commit thread. Two keep it busy; more only hold memory.
const QUEUED_BATCHES: usize = 2;

/// What the rules thread sends.
pub enum ToCommit {
    Batch(Batch),
    /// The rules thread has reloaded its state after a failed commit: batches from here on were
    /// built on what is committed.
    Resume,
}

/// One group of jobs, ready to be written.
#[derive(Default)]
pub struct Batch {
    pub pending: Vec<Pending>,
    pub created_projects: Vec<Project>,
    pub writes: Vec<(ProjectId, Changes, ProjectWrite)>,
    /// Set when the batch could not even be built: it fails like a failed commit.
    pub broken: Option<String>,
}

impl Batch {
    /// Nothing of the batch was stored: every job hears `error`.
    pub fn fail(self, error: &str) {
        for pending in self.pending {
            pending.fail(StoreError::Backend(error.to_string()));
        }
    }
}

/// The rules thread's side of the commit thread.
pub struct CommitLink {
    pub sender: SyncSender<ToCommit>,
    /// Set by the commit thread when a commit failed: the rules thread must reload its state.
    pub reload_needed: Arc<AtomicBool>,
    pub thread: JoinHandle<()>,
}

/// Where the commit thread sends committed changes to be freed.
pub type Retired = SyncSender<Vec<(ProjectId, Changes)>>;

/// The thread that frees what the commit thread retires (freeing a batch's events took a
/// sixteenth of the writer's time in a bulk import); it ends when its sender is gone.
pub fn spawn_freeing_thread() -> std::io::Result<Retired> {
    let (retired, to_free) = std::sync::mpsc::sync_channel::<Vec<(ProjectId, Changes)>>(2);
    // Not lowered in priority like the import's reader: the commit thread waits for room in
    // this channel, so a starved freeing thread would stall it.
    std::thread::Builder::new().name("troupe-writer-free".into()).spawn(move || to_free.iter().for_each(drop))?;
    Ok(retired)
}

/// Start the commit thread on `conn`. It checkpoints the database and ends when the rules
/// thread drops its sender.
pub fn spawn(conn: Connection, cache: Arc<EventCache>) -> std::io::Result<CommitLink> {
    let retired = spawn_freeing_thread()?;
    let (sender, batches) = std::sync::mpsc::sync_channel(QUEUED_BATCHES);
    let reload_needed = Arc::new(AtomicBool::new(false));
    let committer = Committer { conn, cache, retired, reload_needed: Arc::clone(&reload_needed), halted: false };
    let thread = std::thread::Builder::new().name("troupe-commit".into()).spawn(move || committer.run(batches))?;
    Ok(CommitLink { sender, reload_needed, thread })
}

struct Committer {
    conn: Connection,
    cache: Arc<EventCache>,
    retired: Retired,
    reload_needed: Arc<AtomicBool>,
    /// A commit failed and the rules thread has not reloaded yet.
    halted: bool,
}

impl Committer {
    fn run(mut self, batches: Receiver<ToCommit>) {
        while let Ok(message) = batches.recv() {
            match message {
                ToCommit::Resume => self.halted = false,
                ToCommit::Batch(batch) if self.halted => {
                    batch.fail("write failed, nothing was stored: an earlier batch's write failed")
                }
                ToCommit::Batch(batch) => self.commit(batch),
            }
        }
        if let Err(e) = self.conn.execute_batch("CHECKPOINT") {
            tracing::warn!(error = %e, "checkpoint at shutdown failed");
        }
    }

    fn commit(&mut self, batch: Batch) {
        if let Some(reason) = &batch.broken {
            let error = format!("write failed, nothing was stored: {reason}");
            tracing::error!(error = %error, "batch could not be built; reloading state");
            self.halt();
            return batch.fail(&error);
        }
        let cache = Arc::clone(&self.cache);
        // Held until the changes are in the cache too: see `columns` on consistency.
        let _gate = cache.gate();
        match self.write(&batch) {
            Ok(()) => {
                for (project, changes, write) in &batch.writes {
                    self.append_to_cache(*project, changes, write);
                }
                let Batch { pending, writes, .. } = batch;
                pending.into_iter().for_each(Pending::answer);
                let written = writes.into_iter().map(|(project, changes, _)| (project, changes)).collect();
                // Only fails when the freeing thread is gone; the changes are then freed here.
                let _ = self.retired.send(written);
            }
            Err(e) => {
                tracing::error!(error = %e, "write transaction failed; reloading state");
                let _ = self.conn.execute_batch("ROLLBACK");
                self.halt();
                batch.fail(&format!("write failed, nothing was stored: {e}"));
            }
        }
    }

    /// Stop writing until the rules thread has reloaded its state.
    fn halt(&mut self) {
        self.halted = true;
        self.reload_needed.store(true, Ordering::Release);
    }

    fn write(&self, batch: &Batch) -> duckdb::Result<()> {
        self.conn.execute_batch("BEGIN TRANSACTION")?;
        for project in &batch.created_projects {
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
        }
        for (_, changes, write) in &batch.writes {
            write.write(&self.conn, changes)?;
        }
        self.conn.execute_batch("COMMIT")
    }

    /// A committed batch's events and identity changes into the project's columns, when loaded.
    fn append_to_cache(&self, project: ProjectId, changes: &Changes, write: &ProjectWrite) {
        let Some(columns) = self.cache.get(project) else { return };
        let mut columns = columns::write(&columns);
        for &slot in &changes.cleared_slots {
            columns.clear_slot(slot as usize);
        }
        for event in &changes.events {
            columns.push_stored(event);
        }
        for (distinct_id, person) in &write.distinct_ids {
            columns.set_person(distinct_id, person.as_deref());
        }
    }
}
