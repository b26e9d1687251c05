//! The write half of the [`crate::Store`] trait over HTTP, for deployments where several troupe
//! processes share one database and one of them applies every write (the ClickHouse store's
//! writer): the shapes both sides of `/internal/v1/…` agree on.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use troupe_core::ProjectId;

use crate::{NewProject, Project};

/// A project as the writer returns it to a forwarding process (secret hash included: the
/// forwarding process authenticates requests with it).
#[derive(Debug, Serialize, Deserialize)]
pub struct ProjectWire {
    pub id: ProjectId,
    pub name: String,
    pub ingestion_key: String,
    pub secret_key_hash: String,
    pub created_at: DateTime<Utc>,
}

impl From<Project> for ProjectWire {
    fn from(p: Project) -> Self {
        ProjectWire {
            id: p.id,
            name: p.name,
            ingestion_key: p.ingestion_key,
            secret_key_hash: p.secret_key_hash,
            created_at: p.created_at,
        }
    }
}

impl From<ProjectWire> for Project {
    fn from(p: ProjectWire) -> Self {
        Project {
            id: p.id,
            name: p.name,
            ingestion_key: p.ingestion_key,
            secret_key_hash: p.secret_key_hash,
            created_at: p.created_at,
        }
    }
}

/// A new project as sent to the writer.
#[derive(Debug, Serialize, Deserialize)]
pub struct NewProjectWire {
    pub name: String,
    pub ingestion_key: String,
    pub secret_key_hash: String,
}

impl From<NewProjectWire> for NewProject {
    fn from(p: NewProjectWire) -> Self {
        NewProject { name: p.name, ingestion_key: p.ingestion_key, secret_key_hash: p.secret_key_hash }
    }
}
