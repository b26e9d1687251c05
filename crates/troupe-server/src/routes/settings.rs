//! A project's ingestion and general settings (secret key or session): `GET`/`PUT
//! /api/projects/{p}/settings/ingestion` and `…/settings/general`, each read and replaced whole
//! through its cache. The privacy settings are in [`super::privacy`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use troupe_core::CoreError;
use troupe_store::settings::{GeneralSettings, IngestionSettings, SettingsArea};

use crate::error::{json_body, ApiError};
use crate::project_settings::SettingsCache;
use crate::{AppState, Permission};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route(
            "/api/projects/{project}/settings/ingestion",
            get(read::<IngestionSettings>).put(replace::<IngestionSettings>),
        )
        .route("/api/projects/{project}/settings/general", get(read::<GeneralSettings>).put(replace::<GeneralSettings>))
}

/// A settings area the API serves: where its cache is, and what a new value must pass.
trait ServedSettings: SettingsArea {
    fn cache(app: &AppState) -> &SettingsCache<Self>;

    fn check(&self) -> Result<(), CoreError> {
        Ok(())
    }
}

impl ServedSettings for IngestionSettings {
    fn cache(app: &AppState) -> &SettingsCache<Self> {
        &app.ingestion_settings
    }
}

impl ServedSettings for GeneralSettings {
    fn cache(app: &AppState) -> &SettingsCache<Self> {
        &app.general_settings
    }

    fn check(&self) -> Result<(), CoreError> {
        GeneralSettings::check(self)
    }
}

async fn read<T: ServedSettings>(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Read).await?;
    Ok(Json(json!(T::cache(&app).get(app.store.as_ref(), project.id).await?)))
}

/// The whole settings object (fields left out take their defaults; an unknown field or value is a
/// 400 naming it).
async fn replace<T: ServedSettings>(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let access = app.access(&headers, &project, Permission::Admin).await?;
    let settings: T = json_body(&body)?;
    settings.check()?;
    T::cache(&app).put(app.store.as_ref(), access.project.id, settings.clone()).await?;
    app.audit(&access, &format!("settings.{}", T::ID), &access.project.name, json!(settings)).await;
    Ok(Json(json!(settings)))
}
