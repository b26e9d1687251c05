//! `/internal/v1/…`: the write half of the store for other troupe processes of the same
//! deployment (ClickHouse with several servers: one writer applies, the others forward here).
//! Mounted only when the process is the writer and a shared secret is configured.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use sha2::{Digest, Sha256};
use troupe_core::{Command, ProjectId};
use troupe_store::forward::{NewProjectWire, ProjectWire};
use troupe_store::CommandResult;

use crate::error::{json_body, ApiError};
use crate::{auth, AppState};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/internal/v1/projects", post(create_project))
        .route("/internal/v1/projects/{project}/apply", post(apply))
}

/// The shared secret, compared as digests so the comparison time says nothing about it.
fn check(app: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(secret) = app.settings.internal_secret.as_deref() else {
        return Err(ApiError::NotFound("no route /internal/v1 (this troupe is not a writer for others)".into()));
    };
    let given = auth::bearer(headers).unwrap_or_default();
    if Sha256::digest(given.as_bytes()) != Sha256::digest(secret.as_bytes()) {
        return Err(ApiError::Unauthorized("internal routes need the deployment's shared secret".into()));
    }
    Ok(())
}

async fn apply(
    State(app): State<Arc<AppState>>,
    Path(project): Path<ProjectId>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Vec<CommandResult>>, ApiError> {
    check(&app, &headers)?;
    let commands: Vec<Command> = json_body(&body)?;
    Ok(Json(app.store.apply(project, commands).await?))
}

async fn create_project(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ProjectWire>, ApiError> {
    check(&app, &headers)?;
    let new: NewProjectWire = json_body(&body)?;
    let project = app.store.create_project(new.into()).await?;
    app.projects.reload(app.store.as_ref()).await?;
    Ok(Json(project.into()))
}
