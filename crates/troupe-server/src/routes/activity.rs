//! Account views (secret key or session): a group's activity and related groups, and its
//! members a page at a time with when each was last seen. Lists of groups and persons take
//! `activity=true` for the same figures per row (see [`with_group_activity`]).
//!
//! - `GET /api/projects/{p}/groups/{type}/{key}/activity?days=30`
//! - `GET /api/projects/{p}/groups/{type}/{key}/members?limit=25&offset=0&days=90`

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use chrono::Utc;
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_core::{CoreError, ProjectId};
use troupe_query::activity::{self, Activity, MAX_DAYS};
use troupe_store::{GroupQuery, GroupRow, Page, PersonRow};

use crate::error::{ApiError, ApiQuery};
use crate::routes::read::limit_up_to;
use crate::{AppState, Permission};

/// Groups of another type whose property names this group, looked at per type at most.
const RELATED_SCAN: usize = 1000;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/projects/{project}/groups/{group_type}/{group_key}/activity", get(group_activity))
        .route("/api/projects/{project}/groups/{group_type}/{group_key}/members", get(members))
}

/// `days`: 1 to 366, `default` when absent.
pub fn days(requested: Option<u32>, default: u32) -> Result<u32, ApiError> {
    match requested {
        None => Ok(default),
        Some(d) if (1..=MAX_DAYS).contains(&d) => Ok(d),
        Some(_) => Err(CoreError::invalid("days", format!("must be between 1 and {MAX_DAYS}")).into()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActivityParams {
    days: Option<u32>,
}

async fn group_activity(
    State(app): State<Arc<AppState>>,
    Path((project, group_type, group_key)): Path<(String, String, String)>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<ActivityParams>,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Read).await?;
    let days = days(params.days, 30)?;
    let group = app.store.group(project.id, &group_type, &group_key, 0).await?;
    let group = group.ok_or_else(|| ApiError::NotFound(format!("no group '{group_key}' of type '{group_type}'")))?;
    let figures =
        activity::group_activity(app.store.as_ref(), project.id, &group_type, &group_key, Utc::now(), days).await?;
    let related = related(&app, project.id, &group.group).await?;
    let mut reply = json!(figures);
    reply["member_count"] = json!(group.members.len());
    reply["related"] = json!(related);
    Ok(Json(reply))
}

/// Groups this one names in a property called after a group type (a team's `company`), and
/// groups of other types that name this one that way (a company's teams).
async fn related(app: &AppState, project: ProjectId, group: &GroupRow) -> Result<Vec<Value>, ApiError> {
    let types = app.store.group_type_names(project).await?;
    let mut out = Vec::new();
    for other in types.iter().filter(|t| **t != group.group_type) {
        if let Some(key) = group.properties.get(other).and_then(Value::as_str) {
            if let Some(parent) = app.store.group(project, other, key, 0).await? {
                out.push(json!({"relation": "parent", "group_type": other, "key": key, "name": parent.group.name}));
            }
        }
        let query = GroupQuery {
            group_type: other.clone(),
            search: Some(group.key.clone()),
            limit: RELATED_SCAN,
            ..GroupQuery::default()
        };
        for child in app.store.groups(project, query).await?.results {
            if child.properties.get(&group.group_type).and_then(Value::as_str) == Some(group.key.as_str()) {
                out.push(json!({"relation": "child", "group_type": other, "key": child.key, "name": child.name}));
            }
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MembersParams {
    limit: Option<usize>,
    #[serde(default)]
    offset: usize,
    days: Option<u32>,
}

/// The group's current members, most recently seen first (never seen in the window last, by
/// id), each with `last_seen` and `events` in the window.
async fn members(
    State(app): State<Arc<AppState>>,
    Path((project, group_type, group_key)): Path<(String, String, String)>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<MembersParams>,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Read).await?;
    let limit = limit_up_to(params.limit, 25, 1000)?;
    let days = days(params.days, 90)?;
    let group = app.store.group(project.id, &group_type, &group_key, 0).await?;
    let group = group.ok_or_else(|| ApiError::NotFound(format!("no group '{group_key}' of type '{group_type}'")))?;
    let ids: Vec<String> = group.members.iter().map(|m| m.id.clone()).collect();
    let seen = activity::persons_activity(app.store.as_ref(), project.id, &ids, Utc::now(), days).await?;
    let mut members: Vec<(PersonRow, Activity)> = group
        .members
        .into_iter()
        .map(|m| {
            let activity = seen.get(&m.id).cloned().unwrap_or_default();
            (m, activity)
        })
        .collect();
    members.sort_by(|(a, x), (b, y)| y.last_seen.cmp(&x.last_seen).then_with(|| a.id.cmp(&b.id)));
    let total = members.len() as u64;
    let results: Vec<Value> =
        members.into_iter().skip(params.offset).take(limit).map(|(m, a)| with_activity(json!(m), &a)).collect();
    Ok(Json(json!({"results": results, "total": total, "limit": limit, "offset": params.offset, "days": days})))
}

fn with_activity(mut row: Value, activity: &Activity) -> Value {
    row["last_seen"] = json!(activity.last_seen);
    row["events"] = json!(activity.events);
    row
}

/// A page of groups with `member_count`, and `last_seen` and `events` over `days`.
pub async fn with_group_activity(
    app: &AppState,
    project: ProjectId,
    group_type: &str,
    page: Page<GroupRow>,
    days: u32,
) -> Result<Value, ApiError> {
    let keys: Vec<String> = page.results.iter().map(|g| g.key.clone()).collect();
    let seen = activity::groups_activity(app.store.as_ref(), project, group_type, &keys, Utc::now(), days).await?;
    let mut rows = Vec::with_capacity(page.results.len());
    for g in &page.results {
        let members = app.store.group(project, group_type, &g.key, 0).await?.map_or(0, |p| p.members.len());
        let mut row = with_activity(json!(g), &seen.get(&g.key).cloned().unwrap_or_default());
        row["member_count"] = json!(members);
        rows.push(row);
    }
    let mut reply = json!(page);
    reply["results"] = json!(rows);
    reply["days"] = json!(days);
    Ok(reply)
}

/// A page of persons with `last_seen` and `events` over `days`.
pub async fn with_person_activity(
    app: &AppState,
    project: ProjectId,
    page: Page<PersonRow>,
    days: u32,
) -> Result<Value, ApiError> {
    let ids: Vec<String> = page.results.iter().map(|p| p.id.clone()).collect();
    let seen = activity::persons_activity(app.store.as_ref(), project, &ids, Utc::now(), days).await?;
    let rows: Vec<Value> =
        page.results.iter().map(|p| with_activity(json!(p), &seen.get(&p.id).cloned().unwrap_or_default())).collect();
    let mut reply = json!(page);
    reply["results"] = json!(rows);
    reply["days"] = json!(days);
    Ok(reply)
}
