//! Running troupe for a team: a project's members and invitations, its keys, its audit log;
//! a user's sessions and password; the instance's accounts and audit log. Project routes need
//! the admin role (or an admin-scoped key); every change is written to the audit log.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_store::{StoreError, INSTANCE};

use crate::access::{Access, Actor, Permission, Role};
use crate::accounts;
use crate::audit;
use crate::auth::Scope;
use crate::dashboard::{self, session_id};
use crate::error::{json_body, ApiError, ApiQuery};
use crate::keys;
use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/projects/{project}/members", get(members).post(add_member))
        .route("/api/projects/{project}/members/{email}", put(change_member).delete(remove_member))
        .route("/api/projects/{project}/invites/{id}", delete(cancel_invite))
        .route("/api/projects/{project}/keys", get(list_keys).post(create_key))
        .route("/api/projects/{project}/keys/{id}", delete(revoke_key))
        .route("/api/projects/{project}/ingestion-keys/rotate", post(rotate_ingestion_key))
        .route("/api/projects/{project}/ingestion-keys/{key}", delete(retire_ingestion_key))
        .route("/api/projects/{project}/audit", get(project_audit))
        .route("/api/sessions", get(sessions))
        .route("/api/sessions/{id}", delete(revoke_session))
        .route("/api/password", post(change_password))
        .route("/api/invites/{token}", get(invite))
        .route("/api/invites/{token}/accept", post(dashboard::accept_invite))
        .route("/api/users", get(users))
        .route("/api/audit", get(instance_audit))
}

async fn admin(app: &AppState, headers: &HeaderMap, project: &str) -> Result<Access, ApiError> {
    app.access(headers, project, Permission::Admin).await
}

async fn members(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let access = admin(&app, &headers, &project).await?;
    let store = app.store.as_ref();
    let id = access.project.id;
    let members: Vec<Value> = accounts::users(store)
        .await?
        .into_iter()
        .filter_map(|u| {
            let role = u.role_in(id)?;
            Some(json!({"email": u.email, "role": role, "instance_admin": u.is_instance_admin()}))
        })
        .collect();
    let invites: Vec<Value> = accounts::invites(store, Some(id))
        .await?
        .into_iter()
        .map(|(_, i)| json!({"id": i.id, "email": i.email, "role": i.role, "created_by": i.created_by, "expires_at": i.expires_at}))
        .collect();
    Ok(Json(json!({"members": members, "invites": invites})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MemberRequest {
    email: String,
    role: String,
}

/// Add a member: an account that exists gets the role now; otherwise an invitation link is made
/// (its token is in this answer only).
async fn add_member(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let access = admin(&app, &headers, &project).await?;
    let request: MemberRequest = json_body(&body)?;
    let email = accounts::normalize_email(&request.email)?;
    let role = Role::parse(&request.role, "role")?;
    let store = app.store.as_ref();
    let actor = access.actor.label();
    let id = access.project.id;
    if let Some(mut user) = accounts::user(store, &email).await? {
        if user.is_instance_admin() {
            return Err(conflict(format!("{email} is an instance administrator: admin of every project already")));
        }
        user.set_role(id, Some(role));
        accounts::save_user(store, &user).await?;
        app.audit(&access, "member.add", &email, json!({"role": role})).await;
        return Ok((StatusCode::OK, Json(json!({"email": email, "role": role, "added": true}))));
    }
    let (token, invite) = accounts::create_invite(store, &email, id, role, &actor).await?;
    app.audit(&access, "member.invite", &email, json!({"role": role, "invite": invite.id})).await;
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "email": email, "role": role, "added": false,
            "invite": {"id": invite.id, "expires_at": invite.expires_at, "token": token, "path": format!("/#/invite/{token}")},
        })),
    ))
}

fn conflict(message: String) -> ApiError {
    ApiError::Store(StoreError::Conflict(message))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleRequest {
    role: String,
}

async fn change_member(
    State(app): State<Arc<AppState>>,
    Path((project, email)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let access = admin(&app, &headers, &project).await?;
    let request: RoleRequest = json_body(&body)?;
    let role = Role::parse(&request.role, "role")?;
    let mut user = member(&app, &access, &email).await?;
    let before = user.role_in(access.project.id);
    user.set_role(access.project.id, Some(role));
    accounts::save_user(app.store.as_ref(), &user).await?;
    let details = json!({"from": before, "to": role});
    app.audit(&access, "member.role", &user.email, details).await;
    Ok(Json(json!({"email": user.email, "role": role})))
}

/// Take a member out of the project. One left with no project at all is signed out everywhere.
async fn remove_member(
    State(app): State<Arc<AppState>>,
    Path((project, email)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let access = admin(&app, &headers, &project).await?;
    let mut user = member(&app, &access, &email).await?;
    let before = user.role_in(access.project.id);
    user.set_role(access.project.id, None);
    let store = app.store.as_ref();
    accounts::save_user(store, &user).await?;
    if user.roles.as_ref().is_none_or(|r| r.is_empty()) {
        app.sessions.end_all_of(&user.email, store).await?;
    }
    app.audit(&access, "member.remove", &user.email, json!({"role": before})).await;
    Ok(StatusCode::NO_CONTENT)
}

/// A member of the project whose role a project admin may change (not an instance admin).
async fn member(app: &AppState, access: &Access, email: &str) -> Result<accounts::User, ApiError> {
    let email = email.trim().to_lowercase();
    let user = accounts::user(app.store.as_ref(), &email)
        .await?
        .filter(|u| u.role_in(access.project.id).is_some())
        .ok_or_else(|| ApiError::NotFound(format!("{email} is not a member of project '{}'", access.project.name)))?;
    if user.is_instance_admin() {
        return Err(conflict(format!(
            "{email} is an instance administrator: admin of every project (`troupe user` changes that)"
        )));
    }
    if matches!(&access.actor, Actor::User { email: me } if *me == user.email) {
        return Err(conflict("you cannot change your own role: ask another admin".into()));
    }
    Ok(user)
}

async fn cancel_invite(
    State(app): State<Arc<AppState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let access = admin(&app, &headers, &project).await?;
    let store = app.store.as_ref();
    let (hash, invite) = accounts::invites(store, Some(access.project.id))
        .await?
        .into_iter()
        .find(|(_, i)| i.id == id)
        .ok_or_else(|| ApiError::NotFound(format!("no open invitation '{id}'")))?;
    accounts::delete_invite(store, &hash).await?;
    app.audit(&access, "member.invite_cancel", &invite.email, json!({"invite": id})).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_keys(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let access = admin(&app, &headers, &project).await?;
    Ok(Json(keys::listing(app.store.as_ref(), &access.project).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyRequest {
    name: String,
    scope: String,
    expires_at: Option<DateTime<Utc>>,
    expires_in_days: Option<i64>,
}

async fn create_key(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let access = admin(&app, &headers, &project).await?;
    let request: KeyRequest = json_body(&body)?;
    let scope = Scope::parse(&request.scope, "scope")?;
    let expires_at = match (request.expires_at, request.expires_in_days) {
        (Some(_), Some(_)) => return Err(ApiError::BadQuery("give expires_at or expires_in_days, not both".into())),
        (at, None) => at,
        (None, Some(days)) => Some(keys::expiry_in_days(days, "expires_in_days")?),
    };
    let created = keys::create_secret_key(
        app.store.as_ref(),
        &access.project,
        &request.name,
        scope,
        expires_at,
        &access.actor.label(),
    )
    .await?;
    app.projects.reload(app.store.as_ref()).await?;
    Ok((StatusCode::CREATED, Json(created.answer())))
}

async fn revoke_key(
    State(app): State<Arc<AppState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let access = admin(&app, &headers, &project).await?;
    keys::revoke_secret_key(app.store.as_ref(), &access.project, &id, &access.actor.label()).await?;
    app.projects.reload(app.store.as_ref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    overlap_hours: Option<f64>,
}

async fn rotate_ingestion_key(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let access = admin(&app, &headers, &project).await?;
    let request: RotateRequest = if body.is_empty() { RotateRequest::default() } else { json_body(&body)? };
    let overlap = request.overlap_hours.unwrap_or(keys::DEFAULT_OVERLAP_HOURS);
    let rotation =
        keys::rotate_ingestion_key(app.store.as_ref(), &access.project, overlap, &access.actor.label()).await?;
    app.projects.reload(app.store.as_ref()).await?;
    Ok(Json(rotation.answer()))
}

async fn retire_ingestion_key(
    State(app): State<Arc<AppState>>,
    Path((project, key)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let access = admin(&app, &headers, &project).await?;
    keys::retire_ingestion_key(app.store.as_ref(), &access.project, &key, &access.actor.label()).await?;
    app.projects.reload(app.store.as_ref()).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    limit: Option<usize>,
    before: Option<String>,
}

const MAX_AUDIT_PAGE: usize = 500;

async fn audit_page(app: &AppState, project: u32, params: AuditParams) -> Result<Json<Value>, ApiError> {
    let limit = params.limit.unwrap_or(100);
    if !(1..=MAX_AUDIT_PAGE).contains(&limit) {
        return Err(ApiError::BadQuery(format!("limit: between 1 and {MAX_AUDIT_PAGE}")));
    }
    let entries = app.store.audit_log(project, params.before, limit).await?;
    let next = (entries.len() == limit).then(|| entries.last().map(|e| e.id.clone())).flatten();
    Ok(Json(json!({"results": entries, "next_before": next})))
}

async fn project_audit(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<Value>, ApiError> {
    let access = admin(&app, &headers, &project).await?;
    audit_page(&app, access.project.id, params).await
}

async fn instance_audit(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> Result<Json<Value>, ApiError> {
    app.instance_admin(&headers).await?;
    audit_page(&app, INSTANCE, params).await
}

async fn users(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    app.instance_admin(&headers).await?;
    let users: Vec<Value> = accounts::users(app.store.as_ref()).await?.iter().map(accounts::User::public).collect();
    Ok(Json(json!({"results": users})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionParams {
    #[serde(default)]
    all: bool,
}

/// The signed-in user's sessions; with `all=true`, an instance administrator sees everyone's.
async fn sessions(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<SessionParams>,
) -> Result<Json<Value>, ApiError> {
    let me = app.sessions.check(&headers, app.store.as_ref()).await?;
    if params.all && !me.user.is_instance_admin() {
        return Err(ApiError::Forbidden("only an instance administrator sees everyone's sessions".into()));
    }
    let now = Utc::now();
    let mut list: Vec<_> = dashboard::all(app.store.as_ref())
        .await?
        .into_iter()
        .filter(|(_, s)| s.expires_at > now && (params.all || s.email == me.user.email))
        .map(|(key, s)| {
            json!({
                "id": session_id(&key), "email": s.email, "created_at": s.created_at, "expires_at": s.expires_at,
                "ip": s.ip, "user_agent": s.user_agent, "current": key == me.key,
            })
        })
        .collect();
    list.sort_by(|a, b| b["created_at"].as_str().cmp(&a["created_at"].as_str()));
    Ok(Json(json!({"results": list})))
}

/// End a session: one's own, or anyone's for an instance administrator.
async fn revoke_session(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let me = app.sessions.check(&headers, app.store.as_ref()).await?;
    let store = app.store.as_ref();
    let (key, session) = dashboard::all(store)
        .await?
        .into_iter()
        .find(|(key, _)| session_id(key) == id)
        .ok_or_else(|| ApiError::NotFound(format!("no session '{id}'")))?;
    if session.email != me.user.email && !me.user.is_instance_admin() {
        return Err(ApiError::NotFound(format!("no session '{id}'")));
    }
    app.sessions.end_key(&key, store).await?;
    let actor = format!("user:{}", me.user.email);
    audit::record(store, INSTANCE, &actor, "session.revoke", &session.email, json!({"session": id})).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// Change one's own password; every other session of the account ends.
async fn change_password(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let me = app.sessions.check(&headers, app.store.as_ref()).await?;
    let change: PasswordChange = json_body(&body)?;
    let mut user = me.user;
    if !accounts::verify_password(&user, &change.current_password) {
        return Err(ApiError::Forbidden("current_password: wrong password".into()));
    }
    user.password_hash = accounts::hash_password(&change.new_password)?;
    let store = app.store.as_ref();
    accounts::save_user(store, &user).await?;
    app.sessions.end_where(store, |key, session| session.email == user.email && key != me.key).await?;
    audit::record(store, INSTANCE, &format!("user:{}", user.email), "user.password", &user.email, json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

/// What an invitation link is for (the page shows it before asking for a password).
async fn invite(State(app): State<Arc<AppState>>, Path(token): Path<String>) -> Result<Json<Value>, ApiError> {
    let store = app.store.as_ref();
    let (_, invite) = accounts::find_invite(store, &token)
        .await?
        .ok_or_else(|| ApiError::NotFound("that invitation is unknown, used or expired: ask for a new one".into()))?;
    let project = app.projects.all().await.into_iter().find(|p| p.id == invite.project);
    let existing = accounts::user(store, &invite.email).await?.is_some();
    Ok(Json(json!({
        "email": invite.email, "role": invite.role, "project": project.map(|p| p.name),
        "expires_at": invite.expires_at, "existing_account": existing,
    })))
}
