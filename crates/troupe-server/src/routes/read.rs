//! The read API (JSON, secret key): group types, groups, group profiles, persons, events.
//! The dashboard reads exactly these, so everything it shows is scriptable.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{get, patch};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_core::CoreError;
use troupe_store::{EventQuery, GroupQuery, GroupSort, PersonQuery};

use crate::error::{ApiError, ApiQuery};
use crate::routes::{activity, admin, privacy};
use crate::{AppState, Permission};

/// Page sizes are capped so one request cannot ask for the whole table.
const MAX_LIMIT: usize = 1000;
const DEFAULT_RECENT_EVENTS: usize = 20;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/projects", get(projects))
        .route("/api/projects/{project}/group-types", get(group_types))
        .route(
            "/api/projects/{project}/group-types/{group_type}",
            patch(admin::patch_group_type).delete(admin::delete_group_type),
        )
        .route("/api/projects/{project}/groups", get(groups))
        .route(
            "/api/projects/{project}/groups/{group_type}/{group_key}",
            get(group).put(admin::put_group).delete(admin::delete_group),
        )
        .route("/api/projects/{project}/persons", get(persons))
        .route("/api/projects/{project}/persons/{id}", get(person).delete(privacy::erase_with_secret))
        .route("/api/projects/{project}/events", get(events))
}

fn limit(requested: Option<usize>, default: usize) -> Result<usize, ApiError> {
    limit_up_to(requested, default, MAX_LIMIT)
}

/// A page's `limit`: `default` when absent, else 1 to `max` (a 400 naming `limit` otherwise).
pub(crate) fn limit_up_to(requested: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    match requested {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(CoreError::invalid("limit", format!("must be between 1 and {max}")).into()),
    }
}

async fn projects(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let mut projects = app.readable_projects(&headers).await?;
    // The key SDKs should be given now (a rotation's new key), not the one it was created with.
    for project in &mut projects {
        if let Some(key) = app.projects.ring(project.id).await.and_then(|r| r.current_ingestion_key().map(String::from))
        {
            project.ingestion_key = key;
        }
    }
    Ok(Json(json!({"results": projects})))
}

async fn group_types(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Read).await?;
    let types = app.store.group_types(project.id).await?;
    Ok(Json(json!({"results": types, "limit": app.limits.max_group_types})))
}

#[derive(Deserialize)]
struct GroupsParams {
    #[serde(rename = "type")]
    group_type: Option<String>,
    search: Option<String>,
    sort: Option<GroupSort>,
    order: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    offset: usize,
    /// Add `member_count`, `last_seen` and `events` (over `days`, default 30) to each row.
    #[serde(default)]
    activity: bool,
    days: Option<u32>,
}

async fn groups(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<GroupsParams>,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Read).await?;
    let group_type = params.group_type.filter(|t| !t.is_empty()).ok_or_else(|| CoreError::missing("type"))?;
    let descending = match params.order.as_deref() {
        None => params.sort.is_none(),
        Some("desc") => true,
        Some("asc") => false,
        Some(_) => return Err(CoreError::invalid("order", "must be 'asc' or 'desc'").into()),
    };
    let days = activity::days(params.days, 30)?;
    let query = GroupQuery {
        group_type: group_type.clone(),
        search: params.search,
        sort: params.sort.unwrap_or_default(),
        descending,
        limit: limit(params.limit, 50)?,
        offset: params.offset,
    };
    let page = app.store.groups(project.id, query).await?;
    match params.activity {
        true => Ok(Json(activity::with_group_activity(&app, project.id, &group_type, page, days).await?)),
        false => Ok(Json(json!(page))),
    }
}

#[derive(Deserialize)]
struct ProfileParams {
    events: Option<usize>,
}

async fn group(
    State(app): State<Arc<AppState>>,
    Path((project, group_type, group_key)): Path<(String, String, String)>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ProfileParams>,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Read).await?;
    let recent = params.events.unwrap_or(DEFAULT_RECENT_EVENTS).min(MAX_LIMIT);
    let group = app.store.group(project.id, &group_type, &group_key, recent).await?;
    let group = group.ok_or_else(|| ApiError::NotFound(format!("no group '{group_key}' of type '{group_type}'")))?;
    Ok(Json(json!(group)))
}

#[derive(Deserialize)]
struct PersonsParams {
    search: Option<String>,
    limit: Option<usize>,
    #[serde(default)]
    offset: usize,
    /// Add `last_seen` and `events` (over `days`, default 30) to each row.
    #[serde(default)]
    activity: bool,
    days: Option<u32>,
}

async fn persons(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<PersonsParams>,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Read).await?;
    let days = activity::days(params.days, 30)?;
    let query = PersonQuery { search: params.search, limit: limit(params.limit, 50)?, offset: params.offset };
    let page = app.store.persons(project.id, query).await?;
    match params.activity {
        true => Ok(Json(activity::with_person_activity(&app, project.id, page, days).await?)),
        false => Ok(Json(json!(page))),
    }
}

async fn person(
    State(app): State<Arc<AppState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ProfileParams>,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Read).await?;
    let recent = params.events.unwrap_or(DEFAULT_RECENT_EVENTS).min(MAX_LIMIT);
    let person = app.store.person(project.id, &id, recent).await?;
    Ok(Json(json!(person.ok_or_else(|| ApiError::NotFound(format!("no person '{id}'")))?)))
}

#[derive(Deserialize)]
struct EventsParams {
    limit: Option<usize>,
    event: Option<String>,
    person: Option<String>,
    group_type: Option<String>,
    group_key: Option<String>,
    before: Option<DateTime<Utc>>,
}

async fn events(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<EventsParams>,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Read).await?;
    let group = match (params.group_type, params.group_key) {
        (Some(t), Some(k)) => Some((t, k)),
        (None, None) => None,
        (Some(_), None) => return Err(CoreError::missing("group_key").into()),
        (None, Some(_)) => return Err(CoreError::missing("group_type").into()),
    };
    let query = EventQuery {
        limit: limit(params.limit, 100)?,
        event: params.event,
        person: params.person,
        group,
        before: params.before,
    };
    Ok(Json(json!({"results": app.store.events(project.id, query).await?})))
}
