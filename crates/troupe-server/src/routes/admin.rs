//! Writes the dashboard makes (secret key or session): create, edit and delete a group, and a
//! group type's display name. They go through the same canonical commands as ingestion.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_core::{Command, CoreError, ProfileOp, Properties};

use crate::error::{json_body, ApiError, ApiQuery};
use crate::{AppState, Permission};

#[derive(Deserialize)]
struct GroupEdit {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    properties: Properties,
}

/// `PUT …/groups/{type}/{key}` `{name, properties}`: create the group, or make its name and
/// properties exactly these (keys left out are removed).
pub async fn put_group(
    State(app): State<Arc<AppState>>,
    Path((project, group_type, group_key)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Edit).await?;
    let edit: GroupEdit = json_body(&body)?;
    let current = app.store.group(project.id, &group_type, &group_key, 0).await?;
    let removed: Vec<String> = current
        .map(|g| g.group.properties.keys().filter(|k| !edit.properties.contains_key(*k)).cloned().collect())
        .unwrap_or_default();
    let mut commands = Vec::new();
    if !removed.is_empty() {
        commands.push(Command::GroupProfile {
            group_type: group_type.clone(),
            group_key: group_key.clone(),
            name: None,
            op: ProfileOp::Unset(removed),
        });
    }
    commands.push(Command::GroupProfile {
        group_type: group_type.clone(),
        group_key: group_key.clone(),
        name: edit.name.filter(|n| !n.trim().is_empty()),
        op: ProfileOp::Set(edit.properties),
    });
    apply(&app, project.id, commands).await?;
    let group = app.store.group(project.id, &group_type, &group_key, 0).await?;
    Ok(Json(json!(group.map(|g| g.group))))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EraseGroupParams {
    /// `detach` (default): events stay, without this group in their attribution; `delete`: the
    /// events attributed to it go too.
    #[serde(default)]
    events: EventsOfErasedGroup,
}

#[derive(Deserialize, Default, PartialEq)]
#[serde(rename_all = "snake_case")]
enum EventsOfErasedGroup {
    #[default]
    Detach,
    Delete,
}

/// `DELETE …/groups/{type}/{key}[?events=detach|delete]`: erase the group (profile, memberships,
/// and its place in events' attribution, or its events). `204`; `404` for an unknown group.
pub async fn delete_group(
    State(app): State<Arc<AppState>>,
    Path((project, group_type, group_key)): Path<(String, String, String)>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<EraseGroupParams>,
) -> Result<StatusCode, ApiError> {
    let access = app.access(&headers, &project, Permission::Admin).await?;
    let project = &access.project;
    if app.store.group(project.id, &group_type, &group_key, 0).await?.is_none() {
        return Err(ApiError::NotFound(format!("no group '{group_key}' of type '{group_type}'")));
    }
    let with_events = params.events == EventsOfErasedGroup::Delete;
    let target = format!("{group_type}/{group_key}");
    apply(&app, project.id, vec![Command::EraseGroup { group_type, group_key, with_events }]).await?;
    app.catalog.forget(project.id).await;
    app.audit(&access, "group.erase", &target, json!({"events": if with_events { "delete" } else { "detach" }})).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TypeEdit {
    /// A new key: the type keeps its slot, so attribution already stamped stays with it.
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    display_name: Option<String>,
}

/// `PATCH …/group-types/{type}` `{name?, display_name?}`: rename the type's key, change its
/// display name, or both.
pub async fn patch_group_type(
    State(app): State<Arc<AppState>>,
    Path((project, group_type)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let access = app.access(&headers, &project, Permission::Admin).await?;
    let project = &access.project;
    let edit: TypeEdit = json_body(&body)?;
    let details = json!({"name": edit.name, "display_name": edit.display_name});
    existing_type(&app, project.id, &group_type).await?;
    let mut commands = Vec::new();
    let mut now_named = group_type.clone();
    if let Some(name) = edit.name.map(|n| n.trim().to_string()).filter(|n| *n != group_type) {
        if name.is_empty() {
            return Err(CoreError::invalid("name", "must not be empty").into());
        }
        commands.push(Command::RenameGroupType { from: group_type.clone(), to: name.clone() });
        now_named = name;
    }
    if let Some(display_name) = edit.display_name {
        if display_name.trim().is_empty() {
            return Err(CoreError::invalid("display_name", "must not be empty").into());
        }
        let command = Command::SetGroupTypeDisplayName {
            group_type: now_named.clone(),
            display_name: display_name.trim().into(),
        };
        commands.push(command);
    }
    if commands.is_empty() {
        return Err(CoreError::invalid("display_name", "send name, display_name or both").into());
    }
    apply(&app, project.id, commands).await?;
    app.audit(&access, "group_type.change", &group_type, details).await;
    let types = app.store.group_types(project.id).await?;
    Ok(Json(json!(types.into_iter().find(|t| t.group_type == now_named))))
}

/// `DELETE …/group-types/{type}`: the type, its groups and every membership in them go, events
/// lose their attribution to it, and its slot is free for a new type. `204`.
pub async fn delete_group_type(
    State(app): State<Arc<AppState>>,
    Path((project, group_type)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let access = app.access(&headers, &project, Permission::Admin).await?;
    let project = &access.project;
    existing_type(&app, project.id, &group_type).await?;
    apply(&app, project.id, vec![Command::DeleteGroupType { group_type: group_type.clone() }]).await?;
    app.catalog.forget(project.id).await;
    app.audit(&access, "group_type.delete", &group_type, json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn existing_type(app: &AppState, project: u32, group_type: &str) -> Result<(), ApiError> {
    let names = app.store.group_type_names(project).await?;
    if names.iter().any(|n| n == group_type) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no group type '{group_type}'")))
    }
}

/// Apply, turning a refused command into a 400 naming the field.
async fn apply(app: &AppState, project: u32, commands: Vec<Command>) -> Result<(), ApiError> {
    for result in app.store.apply(project, commands).await? {
        result?;
    }
    Ok(())
}
