//! What every backend's single writer takes in and answers: a job, and its answer held until
//! the batch it belongs to is durable (or has failed, and nothing of it was stored).

use std::panic::AssertUnwindSafe;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;
use troupe_core::{PreparedCommand, ProjectId, ProjectState};

use crate::{CommandResult, NewProject, Project, StoreError};

/// A write for a backend's writer, with where its answer goes.
pub enum Job {
    Apply {
        project: ProjectId,
        commands: Vec<PreparedCommand>,
        reply: oneshot::Sender<Result<Vec<CommandResult>, StoreError>>,
    },
    CreateProject {
        new: NewProject,
        reply: oneshot::Sender<Result<Project, StoreError>>,
    },
}

impl Job {
    /// Answer the job with an error without applying it.
    pub fn refuse(self, error: StoreError) {
        match self {
            Job::Apply { reply, .. } => drop(reply.send(Err(error))),
            Job::CreateProject { reply, .. } => drop(reply.send(Err(error))),
        }
    }
}

/// A job's answer, held until its batch is durable.
pub enum Pending {
    Apply(oneshot::Sender<Result<Vec<CommandResult>, StoreError>>, Vec<CommandResult>),
    Project(oneshot::Sender<Result<Project, StoreError>>, Result<Project, StoreError>),
}

impl Pending {
    /// The batch is durable: send the answer. A caller that stopped waiting is no error.
    pub fn answer(self) {
        match self {
            Pending::Apply(reply, results) => drop(reply.send(Ok(results))),
            Pending::Project(reply, result) => drop(reply.send(result)),
        }
    }

    /// The batch was not stored: send `error` instead of the answer.
    pub fn fail(self, error: StoreError) {
        match self {
            Pending::Apply(reply, _) => drop(reply.send(Err(error))),
            Pending::Project(reply, _) => drop(reply.send(Err(error))),
        }
    }
}

/// A batch's commands applied to a project's state as [`crate::apply_batch`] does, with a panic
/// of the rules caught: `Err` holds the panic's message, and the state may then hold part of
/// the batch, so the writer must fail its whole group of jobs and reload from durable state.
pub fn apply_caught(
    state: Option<&mut ProjectState>,
    project: ProjectId,
    commands: Vec<PreparedCommand>,
    now: DateTime<Utc>,
) -> Result<Vec<CommandResult>, String> {
    std::panic::catch_unwind(AssertUnwindSafe(|| {
        // Tests make a write panic here (see the `failpoints` feature).
        fail::fail_point!("writer-apply");
        crate::apply_batch(state, project, commands, now)
    }))
    .map_err(|panic| panic_message(panic.as_ref()))
}

/// The text a panic carried (`panic!("…")` gives a `&str` or a `String`).
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

/// What the caller of a write that panicked hears: a fault of troupe, not worth a retry of the
/// same request. The others of its group hear [`innocent_of_panic`].
pub fn write_panicked() -> StoreError {
    StoreError::Internal("troupe failed on this request (a bug, logged); nothing of it was stored".into())
}

/// What the other jobs grouped with a write that panicked hear: nothing of theirs was stored,
/// and a retry will go through once the writer has reloaded.
pub fn innocent_of_panic() -> StoreError {
    StoreError::Unavailable("another write in the same group failed; nothing of this one was stored, retry it".into())
}

/// How much lower than the process the threads that feed or trail the writer run.
const BACKGROUND_NICENESS: i32 = 10;

/// Lower the calling thread's scheduling priority, for work that runs ahead of a writer whose
/// commit thread is the bottleneck (a bulk import's reader): on a machine with fewer cores than
/// busy threads, the commit thread should be the one that runs. A bulk import of 1M PostHog
/// events took 5.3-5.6 s with every thread equal, 4.7-5.2 s with the reader lowered (2 cores).
/// Never for a thread the writer waits on, which would stall it instead.
///
/// Best effort: a system that refuses leaves the priority as it was.
pub fn lower_thread_priority() {
    // On Linux the nice value is per thread, and "the calling process" means the calling
    // thread; elsewhere this lowers the whole process, which changes nothing relative.
    let Ok(current) = rustix::process::getpriority_process(None) else { return };
    let _ = rustix::process::setpriority_process(None, (current + BACKGROUND_NICENESS).min(19));
}
