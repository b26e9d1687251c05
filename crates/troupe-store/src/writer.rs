//! What every backend's single writer takes in and answers: a job, and its answer held until
//! the batch it belongs to is durable (or has failed, and nothing of it was stored).

use tokio::sync::oneshot;
use troupe_core::{PreparedCommand, ProjectId};

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
