//! What a project's data holds, for the builder's pickers (secret key or session):
//!
//! - `GET /api/projects/{p}/catalog/events` — event names of the last 90 days with counts;
//! - `GET /api/projects/{p}/catalog/properties?source=event|person|group[&group_type=][&event=]`
//!   — property keys with the kind of value they hold;
//! - `GET /api/projects/{p}/catalog/values?source=…&key=…` — a property's top values.
//!
//! Each takes `search` (fuzzy: the characters in order, best matches first) and `limit`. What is
//! read and how it is bounded is `troupe_query::catalog`'s; the reads are cached here for
//! [`CACHED_FOR`] per project (pickers ask on every keystroke and page).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::Mutex;
use troupe_core::{CoreError, ProjectId, Properties};
use troupe_query::catalog::{self, EventName, PropertySource};

use crate::error::{ApiError, ApiQuery};
use crate::routes::read::limit_up_to;
use crate::{AppState, Permission};

/// How long a read of the data is reused: a new event name shows in the pickers within this.
pub const CACHED_FOR: Duration = Duration::from_secs(60);
/// Samples kept at most (each up to a few thousand property maps): the `event` parameter is free text,
/// so the cache must not grow with what callers send.
const MAX_SAMPLES: usize = 32;

type SampleKey = (ProjectId, PropertySource, Option<String>);
/// A read and when it was made.
type Read<T> = (Instant, Arc<T>);

#[derive(Default)]
pub struct CatalogCache {
    names: Mutex<HashMap<ProjectId, Read<Vec<EventName>>>>,
    samples: Mutex<HashMap<SampleKey, Read<Vec<Properties>>>>,
}

impl CatalogCache {
    async fn event_names(&self, app: &AppState, project: ProjectId) -> Result<Arc<Vec<EventName>>, ApiError> {
        if let Some((at, names)) = self.names.lock().await.get(&project) {
            if at.elapsed() < CACHED_FOR {
                return Ok(names.clone());
            }
        }
        let names = Arc::new(catalog::event_names(app.store.as_ref(), project, Utc::now()).await?);
        self.names.lock().await.insert(project, (Instant::now(), names.clone()));
        Ok(names)
    }

    async fn sample(&self, app: &AppState, key: SampleKey) -> Result<Arc<Vec<Properties>>, ApiError> {
        if let Some((at, sample)) = self.samples.lock().await.get(&key) {
            if at.elapsed() < CACHED_FOR {
                return Ok(sample.clone());
            }
        }
        let (project, source, event) = &key;
        let sample = Arc::new(catalog::sample(app.store.as_ref(), *project, source, event.as_deref()).await?);
        let mut samples = self.samples.lock().await;
        samples.retain(|_, (at, _)| at.elapsed() < CACHED_FOR);
        if samples.len() >= MAX_SAMPLES {
            if let Some(oldest) = samples.iter().min_by_key(|(_, (at, _))| *at).map(|(k, _)| k.clone()) {
                samples.remove(&oldest);
            }
        }
        samples.insert(key, (Instant::now(), sample.clone()));
        Ok(sample)
    }

    /// Forget a project's reads (after an erasure, say) so nothing erased is offered again.
    pub async fn forget(&self, project: ProjectId) {
        self.names.lock().await.remove(&project);
        self.samples.lock().await.retain(|(p, _, _), _| *p != project);
    }
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/projects/{project}/catalog/events", get(events))
        .route("/api/projects/{project}/catalog/properties", get(properties))
        .route("/api/projects/{project}/catalog/values", get(values))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsParams {
    search: Option<String>,
    limit: Option<usize>,
}

async fn events(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<EventsParams>,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Read).await?;
    let limit = limit_up_to(params.limit, 500, 1000)?;
    let names = app.catalog.event_names(&app, project.id).await?;
    let mut found = catalog::search(names.iter().collect(), params.search.as_deref(), |n| n.name.clone());
    found.truncate(limit);
    Ok(Json(json!({"results": found, "window_days": catalog::EVENT_NAME_DAYS})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceParams {
    source: Option<String>,
    group_type: Option<String>,
    /// Event properties: of this event's recent occurrences only.
    event: Option<String>,
    key: Option<String>,
    search: Option<String>,
    limit: Option<usize>,
}

impl SourceParams {
    /// The source asked for (`event` by default), its group type checked against the project's.
    async fn source(&self, app: &AppState, project: ProjectId) -> Result<PropertySource, ApiError> {
        match self.source.as_deref().unwrap_or("event") {
            "event" => Ok(PropertySource::Event),
            "person" => Ok(PropertySource::Person),
            "group" => {
                let group_type = self.group_type.clone().ok_or_else(|| CoreError::missing("group_type"))?;
                if !app.store.group_type_names(project).await?.contains(&group_type) {
                    return Err(CoreError::invalid(
                        "group_type",
                        format!("no group type '{group_type}' in this project"),
                    )
                    .into());
                }
                Ok(PropertySource::Group(group_type))
            }
            other => Err(CoreError::invalid("source", format!("'{other}' is not event, person or group")).into()),
        }
    }

    async fn sample(&self, app: &AppState, project: ProjectId) -> Result<Arc<Vec<Properties>>, ApiError> {
        let source = self.source(app, project).await?;
        // Only event properties are narrowed by event.
        let event = match source {
            PropertySource::Event => self.event.clone().filter(|e| !e.is_empty()),
            _ => None,
        };
        app.catalog.sample(app, (project, source, event)).await
    }
}

async fn properties(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<SourceParams>,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Read).await?;
    let limit = limit_up_to(params.limit, 500, 1000)?;
    let sample = params.sample(&app, project.id).await?;
    let mut keys = catalog::search(catalog::property_keys(&sample), params.search.as_deref(), |k| k.key.clone());
    keys.truncate(limit);
    Ok(Json(json!({"results": keys, "sampled": sample.len()})))
}

async fn values(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<SourceParams>,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Read).await?;
    let limit = limit_up_to(params.limit, 50, catalog::MAX_VALUES)?;
    let key = params.key.clone().filter(|k| !k.is_empty()).ok_or_else(|| CoreError::missing("key"))?;
    let sample = params.sample(&app, project.id).await?;
    let text = |v: &catalog::ValueCount| match &v.value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mut found = catalog::search(catalog::top_values(&sample, &key), params.search.as_deref(), text);
    found.truncate(limit);
    Ok(Json(json!({"results": found, "sampled": sample.len()})))
}
