//! A project's ingestion and general settings (secret key or session): `GET`/`PUT
//! /api/projects/{p}/settings/ingestion` and `…/settings/general`. The privacy settings are in
//! [`super::privacy`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use troupe_store::settings::{GeneralSettings, IngestionSettings};

use crate::error::{json_body, ApiError};
use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/projects/{project}/settings/ingestion", get(ingestion).put(put_ingestion))
        .route("/api/projects/{project}/settings/general", get(general).put(put_general))
}

async fn ingestion(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project).await?;
    Ok(Json(json!(app.ingestion_settings.get(app.store.as_ref(), project.id).await?)))
}

/// The whole settings object (fields left out take their defaults; an unknown field or value is a
/// 400 naming it).
async fn put_ingestion(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project).await?;
    let settings: IngestionSettings = json_body(&body)?;
    app.ingestion_settings.put(app.store.as_ref(), project.id, settings).await?;
    Ok(Json(json!(settings)))
}

async fn general(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project).await?;
    Ok(Json(json!(app.general_settings.get(app.store.as_ref(), project.id).await?)))
}

/// The whole settings object, as [`put_ingestion`]; an unknown timezone is a 400 naming it.
async fn put_general(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project).await?;
    let settings: GeneralSettings = json_body(&body)?;
    settings.check()?;
    app.general_settings.put(app.store.as_ref(), project.id, settings.clone()).await?;
    Ok(Json(json!(settings)))
}
