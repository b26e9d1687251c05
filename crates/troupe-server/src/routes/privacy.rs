//! Privacy routes: erase and export a person through the read API (secret key or session) and
//! through the Trodo SDK's `/api/sdk/gdpr/*` (its site id, when the project's privacy settings
//! allow it), the project's privacy policy, and the settings themselves. The operations are
//! `troupe_store::privacy`'s, shared with the CLI.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_core::{CoreError, ProjectId};
use troupe_store::privacy::{self, Export, PrivacyOperation, PrivacySettings};
use troupe_store::Project;

use crate::error::{json_body, json_value, ApiError};
use crate::routes::native;
use crate::{AppState, Permission};

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/projects/{project}/persons/{id}/export", get(export_with_secret))
        .route("/api/projects/{project}/persons/{id}/anonymize", post(anonymize_with_secret))
        .route("/api/projects/{project}/groups/{group_type}/{group_key}/export", get(export_group))
        .route("/api/projects/{project}/settings/privacy", get(settings).put(put_settings))
        .route("/api/sdk/gdpr/delete", post(sdk_delete))
        .route("/api/sdk/gdpr/export", post(sdk_export))
        .route("/api/sdk/gdpr/anonymize", post(sdk_anonymize))
        .route("/api/sdk/privacy/policy", get(sdk_policy))
}

/// `DELETE /api/projects/{p}/persons/{id}`: erase the person found by any of its ids or its
/// person id (`troupe_store::privacy::erase_person`). Always 200 with what was done, so that
/// a retry is harmless and says `"found": false`.
pub async fn erase_with_secret(
    State(app): State<Arc<AppState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let access = app.access(&headers, &project, Permission::Admin).await?;
    erase(&app, access.project.id, &id, &access.actor.label()).await
}

async fn erase(app: &AppState, project: ProjectId, id: &str, actor: &str) -> Result<Json<Value>, ApiError> {
    app.limits.check_id("id", id)?;
    let erasure = privacy::erase_person(app.store.as_ref(), project, id).await?;
    let details = json!({"found": erasure.found, "ids": erasure.distinct_ids.len()});
    crate::audit::record(app.store.as_ref(), project, actor, "person.erase", id, details).await;
    tracing::info!(project, found = erasure.found, ids = erasure.distinct_ids.len(), "person erased");
    // The pickers must not offer the erased person's values again.
    app.catalog.forget(project).await;
    let mut reply = json!(erasure);
    reply["erased"] = json!(true);
    Ok(Json(reply))
}

/// `POST …/persons/{id}/anonymize`: the person keeps its events under a pseudonym, without its
/// profile and the project's personal fields. 200 with what was done (`"found": false` for an
/// unknown id: nothing to do).
async fn anonymize_with_secret(
    State(app): State<Arc<AppState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let access = app.access(&headers, &project, Permission::Admin).await?;
    anonymize(&app, access.project.id, &id, &access.actor.label()).await
}

async fn anonymize(app: &AppState, project: ProjectId, id: &str, actor: &str) -> Result<Json<Value>, ApiError> {
    app.limits.check_id("id", id)?;
    let done = privacy::anonymize_person(app.store.as_ref(), project, id).await?;
    crate::audit::record(app.store.as_ref(), project, actor, "person.anonymize", id, json!({"found": done.found}))
        .await;
    tracing::info!(project, found = done.found, "person anonymized");
    app.catalog.forget(project).await;
    let mut reply = json!(done);
    reply["anonymized"] = json!(done.found);
    Ok(Json(reply))
}

async fn export_with_secret(
    State(app): State<Arc<AppState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Admin).await?;
    export(app, project, id).await
}

/// One JSON document: the person (profile, ids, memberships), its charges and every event of
/// its ids, newest first. Events are streamed a page at a time, so a person with millions of
/// events costs one page of memory; a read failing midway ends the body early (invalid JSON,
/// never a silently short export).
async fn export(app: Arc<AppState>, project: Project, id: String) -> Result<Response, ApiError> {
    app.limits.check_id("id", &id)?;
    // Checked before the answer starts, so an unknown person is a 404, not an empty stream.
    if Export::person(app.store.as_ref(), &project, &id).await?.is_none() {
        return Err(ApiError::NotFound(format!("no person '{id}'")));
    }
    let name = format!("person-{}", file_name(&id));
    Ok(streamed(name, async move |sender: Sender| {
        let export = Export::person(app.store.as_ref(), &project, &id).await;
        send_export(export, sender).await;
    }))
}

/// `GET …/groups/{type}/{key}/export`: the group, its current members and every event
/// attributed to it, as one streamed JSON document.
async fn export_group(
    State(app): State<Arc<AppState>>,
    Path((project, group_type, key)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Admin).await?;
    if Export::group(app.store.as_ref(), &project, &group_type, &key).await?.is_none() {
        return Err(ApiError::NotFound(format!("no group '{key}' of type '{group_type}'")));
    }
    let name = format!("group-{}-{}", file_name(&group_type), file_name(&key));
    Ok(streamed(name, async move |sender: Sender| {
        let export = Export::group(app.store.as_ref(), &project, &group_type, &key).await;
        send_export(export, sender).await;
    }))
}

type Sender = tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>;

/// A JSON attachment whose body `produce` sends, chunk by chunk, from a task of its own.
fn streamed<F>(name: String, produce: impl FnOnce(Sender) -> F) -> Response
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(4);
    tokio::spawn(produce(sender));
    let body = futures_util::stream::unfold(receiver, |mut r| async move { r.recv().await.map(|c| (c, r)) });
    let disposition = format!("attachment; filename=\"{name}.json\"");
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json".to_string()), (header::CONTENT_DISPOSITION, disposition)],
        Body::from_stream(body),
    )
        .into_response()
}

/// Send an export's chunks; a failure ends the body early (invalid JSON, never a short export).
async fn send_export(export: Result<Option<Export<'_>>, troupe_store::StoreError>, sender: Sender) {
    let mut export = match export {
        Ok(Some(export)) => export,
        Ok(None) | Err(_) => {
            let _ = sender.send(Err(std::io::Error::other("the export's subject is gone"))).await;
            return;
        }
    };
    loop {
        let chunk = match export.next_chunk().await {
            Ok(Some(text)) => Ok(Bytes::from(text)),
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "an export failed midway; its body ends early");
                Err(std::io::Error::other("the export failed midway"))
            }
        };
        let failed = chunk.is_err();
        if sender.send(chunk).await.is_err() || failed {
            return;
        }
    }
}

/// An id as a file name (anything but letters, digits and dashes replaced).
fn file_name(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' { c } else { '_' }).collect()
}

async fn settings(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Read).await?;
    Ok(Json(json!(PrivacySettings::load(app.store.as_ref(), project.id).await?)))
}

/// `PUT …/settings/privacy`: the whole settings object (fields left out take their defaults;
/// an unknown field is a 400 naming it).
async fn put_settings(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let access = app.access(&headers, &project, Permission::Admin).await?;
    let settings: PrivacySettings = json_body(&body)?;
    settings.check()?;
    settings.save(app.store.as_ref(), access.project.id).await?;
    app.audit(&access, "settings.privacy", &access.project.name, json!(settings)).await;
    Ok(Json(json!(settings)))
}

/// The Trodo SDKs' body of a privacy call: `{siteId, userId}`.
#[derive(Deserialize)]
struct SdkPrivacyRequest {
    #[serde(rename = "userId")]
    user_id: Option<String>,
}

/// The project of a Trodo privacy call and the user it names, refused unless the project lets
/// its ingestion key ask for `operation`.
async fn sdk_request(
    app: &AppState,
    headers: &HeaderMap,
    body: &Bytes,
    operation: PrivacyOperation,
) -> Result<(Project, String), ApiError> {
    let value = json_value(body)?;
    let project = native::project(app, headers, &value).await?;
    let settings = PrivacySettings::load(app.store.as_ref(), project.id).await?;
    if !settings.ingestion_key_may.contains(&operation) {
        return Err(ApiError::Forbidden(format!(
            "this project does not let its site id ask for {operation:?} (privacy settings: ingestion_key_may); \
             use the read API with the secret key"
        )));
    }
    let request: SdkPrivacyRequest = serde_json::from_value(value).map_err(|e| ApiError::BadJson(e.to_string()))?;
    let user = request.user_id.filter(|u| !u.is_empty()).ok_or_else(|| CoreError::missing("userId"))?;
    // The site id is public: its privacy calls (each a rewrite of stored rows) count against
    // the project's and the id's ingestion rate limits like any write.
    let as_write = [troupe_core::Command::ErasePerson { distinct_id: user.clone(), keep_out: false }];
    app.rate_limits.check_write(project.id, &project.name, &as_write, true)?;
    Ok((project, user))
}

async fn sdk_delete(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (project, user) = sdk_request(&app, &headers, &body, PrivacyOperation::Delete).await?;
    let Json(mut reply) = erase(&app, project.id, &user, "sdk:ingestion key").await?;
    reply["success"] = json!(true);
    Ok(Json(reply))
}

async fn sdk_export(State(app): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Result<Response, ApiError> {
    let (project, user) = sdk_request(&app, &headers, &body, PrivacyOperation::Export).await?;
    export(app, project, user).await
}

async fn sdk_anonymize(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (project, user) = sdk_request(&app, &headers, &body, PrivacyOperation::Anonymize).await?;
    let Json(mut reply) = anonymize(&app, project.id, &user, "sdk:ingestion key").await?;
    reply["success"] = json!(true);
    Ok(Json(reply))
}

/// `GET /api/sdk/privacy/policy` (`X-Trodo-Site-Id`): the project's policy text and link, as
/// configured (both `null` when none is).
async fn sdk_policy(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let project = native::project(&app, &headers, &Value::Null).await?;
    let settings = PrivacySettings::load(app.store.as_ref(), project.id).await?;
    Ok(Json(json!({"success": true, "policy": {"text": settings.policy_text, "url": settings.policy_url}})))
}
