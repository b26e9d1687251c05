//! Handing writes to the troupe process that owns them.
//!
//! Several troupe processes may serve one ClickHouse database, but only one of them — the writer —
//! applies writes: it holds each project's live state (identity, memberships, profiles, dedupe)
//! and is the single place where commands are ordered, so no profile update is lost and a retried
//! event is recognised whichever process the retry reached. The others forward the canonical
//! commands to it over HTTP (`/internal/v1/…`, authenticated by a shared secret) and read from
//! ClickHouse directly.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use troupe_core::{Command, ProjectId};
use troupe_store::forward::{NewProjectWire, ProjectWire};
use troupe_store::{CommandResult, NewProject, Project, StoreError};

/// The writer, seen from a forwarding process.
pub struct RemoteWriter {
    client: reqwest::Client,
    base: String,
    secret: String,
}

impl RemoteWriter {
    pub fn new(base: &str, secret: &str) -> Result<Self, StoreError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| StoreError::Internal(format!("cannot build the HTTP client: {e}")))?;
        Ok(RemoteWriter { client, base: base.trim_end_matches('/').to_string(), secret: secret.to_string() })
    }

    async fn post<B: Serialize, T: for<'de> Deserialize<'de>>(&self, path: &str, body: &B) -> Result<T, StoreError> {
        let url = format!("{}{path}", self.base);
        let unreachable = |e: reqwest::Error| {
            StoreError::Unavailable(format!("the troupe writer at {} is unreachable: {e}", self.base))
        };
        let response = self.client.post(&url).bearer_auth(&self.secret).json(body).send().await.map_err(unreachable)?;
        let status = response.status();
        if status.as_u16() == 409 {
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            let message = body["error"].as_str().unwrap_or("conflict").to_string();
            return Err(StoreError::Conflict(message));
        }
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            let message = format!("the troupe writer at {} answered {status}: {text}", self.base);
            // The writer's 503 and 429 are worth a retry; anything else it refused will not mend.
            return Err(if status.as_u16() == 503 || status.as_u16() == 429 {
                StoreError::Unavailable(message)
            } else {
                StoreError::Internal(message)
            });
        }
        response.json().await.map_err(unreachable)
    }

    pub async fn apply(&self, project: ProjectId, commands: &[Command]) -> Result<Vec<CommandResult>, StoreError> {
        self.post(&format!("/internal/v1/projects/{project}/apply"), &commands).await
    }

    pub async fn create_project(&self, new: NewProject) -> Result<Project, StoreError> {
        let wire =
            NewProjectWire { name: new.name, ingestion_key: new.ingestion_key, secret_key_hash: new.secret_key_hash };
        let project: ProjectWire = self.post("/internal/v1/projects", &wire).await?;
        Ok(project.into())
    }
}
