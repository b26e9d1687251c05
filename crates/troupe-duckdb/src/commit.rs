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

use std::panic::AssertUnwindSafe;
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
    /// Answer once every batch sent before is committed or failed (the rules thread waits for
    /// it before reloading its state after a panic).
    Barrier(SyncSender<()>),
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
    /// Nothing of the batch was stored: every job hears the error `kind` makes of `message`
    /// ([`StoreError::Unavailable`] when a retry may succeed, [`StoreError::Internal`] when not).
    pub fn fail(self, kind: fn(String) -> StoreError, message: &str) {
        for pending in self.pending {
            pending.fail(kind(message.to_string()));
        }
    }
}

/// The kind of error a failed DuckDB write is: running out of disk or memory, or an I/O error,
/// may mend (the writer reloads and the next batch tries again); anything else (a SQL or
/// constraint error) is a fault that a retry will not mend.
pub fn write_error_kind(e: &duckdb::Error) -> fn(String) -> StoreError {
    let text = e.to_string();
    if ["IO Error", "Out of Memory", "No space left", "disk"].iter().any(|s| text.contains(s)) {
        StoreError::Unavailable
    } else {
        StoreError::Internal
    }
}

/// The rules thread's side of the commit thread.
pub struct CommitLink {
    pub sender: SyncSender<ToCommit>,
    /// Set by the commit thread when a commit failed: the rules thread must reload its state.
    pub reload_needed: Arc<AtomicBool>,
    /// Set while the commit thread refuses every batch (from a failed commit until the rules
    /// thread has reloaded): the store is not ready for writes.
    pub halted: Arc<AtomicBool>,
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
pub fn spawn(conn: Connection, cache: Arc<EventCache>, dedupe_window: chrono::Duration) -> std::io::Result<CommitLink> {
    let retired = spawn_freeing_thread()?;
    let (sender, batches) = std::sync::mpsc::sync_channel(QUEUED_BATCHES);
    let reload_needed = Arc::new(AtomicBool::new(false));
    let halted = Arc::new(AtomicBool::new(false));
    let committer = Committer {
        conn,
        cache,
        retired,
        reload_needed: Arc::clone(&reload_needed),
        halted: Arc::clone(&halted),
        dedupe_window,
        commits_since_prune: 0,
    };
    let thread = std::thread::Builder::new().name("troupe-commit".into()).spawn(move || committer.run(batches))?;
    Ok(CommitLink { sender, reload_needed, halted, thread })
}

struct Committer {
    conn: Connection,
    cache: Arc<EventCache>,
    retired: Retired,
    reload_needed: Arc<AtomicBool>,
    /// A commit failed and the rules thread has not reloaded yet; shared with the store for
    /// `/readyz`.
    halted: Arc<AtomicBool>,
    /// Content retry keys older than this are pruned every [`PRUNE_EVERY`] commits.
    dedupe_window: chrono::Duration,
    commits_since_prune: usize,
}

/// Commits between two prunings of expired retry keys (one DELETE over a small table).
const PRUNE_EVERY: usize = 1024;

impl Committer {
    fn run(mut self, batches: Receiver<ToCommit>) {
        while let Ok(message) = batches.recv() {
            match message {
                ToCommit::Resume => self.set_halted(false),
                ToCommit::Barrier(done) => drop(done.send(())),
                ToCommit::Batch(batch) if self.halted.load(Ordering::Acquire) => batch
                    .fail(StoreError::Unavailable, "write failed, nothing was stored: an earlier batch's write failed"),
                ToCommit::Batch(batch) => self.commit(batch),
            }
        }
        if let Err(e) = self.conn.execute_batch("CHECKPOINT") {
            tracing::warn!(error = %e, "checkpoint at shutdown failed");
        }
        // The next start's first question then reads the columns back instead of the events.
        self.cache.save_all();
    }

    fn commit(&mut self, batch: Batch) {
        if let Some(reason) = &batch.broken {
            let error = format!("write failed, nothing was stored: {reason}");
            tracing::error!(error = %error, "batch could not be built; reloading state");
            self.halt();
            return batch.fail(StoreError::Internal, &error);
        }
        let cache = Arc::clone(&self.cache);
        // Held until the changes are in the cache too: see `columns` on consistency.
        let _gate = cache.gate();
        let written = std::panic::catch_unwind(AssertUnwindSafe(|| self.write(&batch)));
        match written {
            Ok(Ok(())) => {
                for (project, changes, write) in &batch.writes {
                    // The batch is durable whatever happens here: a panic while appending
                    // drops the project's columns, which the next question loads again.
                    let appended =
                        std::panic::catch_unwind(AssertUnwindSafe(|| self.append_to_cache(*project, changes, write)));
                    if appended.is_err() {
                        tracing::error!(project, "appending a committed batch to the columns panicked; they reload");
                        self.cache.forget(*project);
                    }
                    self.cache.save_in_background_when_due(*project);
                }
                let Batch { pending, writes, .. } = batch;
                pending.into_iter().for_each(Pending::answer);
                self.prune_now_and_then();
                let written = writes.into_iter().map(|(project, changes, _)| (project, changes)).collect();
                // Only fails when the freeing thread is gone; the changes are then freed here.
                let _ = self.retired.send(written);
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "write transaction failed; reloading state");
                let _ = self.conn.execute_batch("ROLLBACK");
                self.halt();
                batch.fail(write_error_kind(&e), &format!("write failed, nothing was stored: {e}"));
            }
            Err(panic) => {
                let message = troupe_store::writer::panic_message(panic.as_ref());
                tracing::error!(panic = %message, "write transaction panicked; reloading state");
                let _ = self.conn.execute_batch("ROLLBACK");
                self.halt();
                batch.fail(StoreError::Internal, &format!("write failed, nothing was stored: {message}"));
            }
        }
    }

    fn prune_now_and_then(&mut self) {
        self.commits_since_prune += 1;
        if self.commits_since_prune < PRUNE_EVERY {
            return;
        }
        self.commits_since_prune = 0;
        let older_than = chrono::Utc::now() - self.dedupe_window;
        if let Err(e) = crate::persist::prune_retry_keys(&self.conn, older_than) {
            tracing::warn!(error = %e, "pruning expired retry keys failed; the next pruning tries again");
        }
    }

    /// Stop writing until the rules thread has reloaded its state.
    fn halt(&mut self) {
        self.set_halted(true);
        self.reload_needed.store(true, Ordering::Release);
    }

    /// Whether writes fail until the rules thread has reloaded; `/readyz` reads it.
    fn set_halted(&self, halted: bool) {
        self.halted.store(halted, Ordering::Release);
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
        // Rare (erasures, anonymizations, retention): the columns are read again from the
        // database on the next question instead of having rows taken out of every column here.
        if changes.changes_stored_events() {
            self.cache.stored_events_changed(project, changes.rewrites_stored_events());
        }
        let Some(columns) = self.cache.get(project) else { return };
        let mut columns = columns::write(&columns);
        if !changes.cleared_slots.is_empty() {
            changes.cleared_slots.iter().for_each(|&slot| columns.clear_slot(slot as usize));
            columns.stored_events_changed();
        }
        for event in &changes.events {
            columns.push_stored(event);
        }
        columns.saw_seq(write.last_seq);
        for (distinct_id, person) in &write.distinct_ids {
            columns.set_person(distinct_id, person.as_deref());
        }
    }
}
