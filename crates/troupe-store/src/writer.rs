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
