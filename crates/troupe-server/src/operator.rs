//! The operator's commands (`troupe user …`, `troupe key …`, `troupe backup`): run on a store the
//! CLI opened itself, or — when a running server holds the embedded store — sent to that server
//! over its control route (`POST /internal/control`, with the token the server
//! wrote into its data directory). One enum, one `run`, both ways.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use troupe_store::{Project, Store, StoreError, INSTANCE};

use crate::access::Role;
use crate::accounts;
use crate::audit;
use crate::auth::{self, Scope};
use crate::dashboard::Sessions;
use crate::error::{json_body, ApiError};
use crate::keys;
use crate::AppState;

/// Who the audit log names for these commands.
pub const OPERATOR: &str = "cli";
/// The file in the data directory a running server writes its control address and token to.
pub const CONTROL_FILE: &str = "control.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum OperatorCommand {
    AddUser { email: String, password: String, instance_admin: bool, project: Option<String>, role: Option<String> },
    ResetPassword { email: String, password: String },
    RemoveUser { email: String },
    ListUsers,
    CreateKey { project: String, name: String, scope: String, expires_in_days: Option<i64> },
    ListKeys { project: String },
    RevokeKey { project: String, key: String },
    RotateIngestionKey { project: String, overlap_hours: f64 },
    Backup { to: std::path::PathBuf },
}

impl OperatorCommand {
    /// Whether the command changes keys (a server reloads its key cache after).
    pub fn changes_keys(&self) -> bool {
        matches!(self, Self::CreateKey { .. } | Self::RevokeKey { .. } | Self::RotateIngestionKey { .. })
    }
}

async fn project(store: &dyn Store, reference: &str) -> Result<Project, ApiError> {
    store
        .projects()
        .await?
        .into_iter()
        .find(|p| p.name == reference || p.id.to_string() == reference)
        .ok_or_else(|| ApiError::NotFound(format!("no project '{reference}'")))
}

/// Run one command; the answer is what the CLI prints. `sessions` is the running server's (so
/// the sessions a command ends are gone from its cache too), or a fresh one in the CLI.
pub async fn run(store: &dyn Store, sessions: &Sessions, command: OperatorCommand) -> Result<Value, ApiError> {
    match command {
        OperatorCommand::AddUser { email, password, instance_admin, project: reference, role } => {
            let mut roles = BTreeMap::new();
            if let Some(reference) = reference {
                let role = Role::parse(role.as_deref().unwrap_or("member"), "--role")?;
                roles.insert(project(store, &reference).await?.id, role);
            } else if !instance_admin {
                return Err(ApiError::BadQuery("give --project (with --role) or --instance-admin".into()));
            }
            let user = accounts::add_user(store, &email, &password, instance_admin, roles.clone()).await?;
            audit::record(
                store,
                INSTANCE,
                OPERATOR,
                "user.add",
                &user.email,
                json!({"instance_admin": instance_admin}),
            )
            .await;
            for (project, role) in roles {
                audit::record(store, project, OPERATOR, "member.add", &user.email, json!({"role": role})).await;
            }
            Ok(user.public())
        }
        OperatorCommand::ResetPassword { email, password } => {
            let email = accounts::normalize_email(&email)?;
            let mut user = accounts::user(store, &email)
                .await?
                .ok_or_else(|| ApiError::NotFound(format!("no account {email}")))?;
            user.password_hash = accounts::hash_password(&password)?;
            accounts::save_user(store, &user).await?;
            let ended = sessions.end_all_of(&email, store).await?;
            audit::record(store, INSTANCE, OPERATOR, "user.reset_password", &email, json!({"sessions_ended": ended}))
                .await;
            Ok(json!({"email": email, "sessions_ended": ended}))
        }
        OperatorCommand::RemoveUser { email } => {
            let email = accounts::normalize_email(&email)?;
            if !accounts::delete_user(store, &email).await? {
                return Err(ApiError::NotFound(format!("no account {email}")));
            }
            let ended = sessions.end_all_of(&email, store).await?;
            audit::record(store, INSTANCE, OPERATOR, "user.remove", &email, json!({"sessions_ended": ended})).await;
            Ok(json!({"email": email, "removed": true}))
        }
        OperatorCommand::ListUsers => {
            let users: Vec<Value> = accounts::users(store).await?.iter().map(accounts::User::public).collect();
            Ok(json!({"results": users}))
        }
        OperatorCommand::CreateKey { project: reference, name, scope, expires_in_days } => {
            let project = project(store, &reference).await?;
            let scope = Scope::parse(&scope, "--scope")?;
            let expires_at = expires_in_days.map(|days| keys::expiry_in_days(days, "--expires-in-days")).transpose()?;
            let created = keys::create_secret_key(store, &project, &name, scope, expires_at, OPERATOR).await?;
            Ok(created.answer())
        }
        OperatorCommand::ListKeys { project: reference } => {
            let project = project(store, &reference).await?;
            Ok(keys::listing(store, &project).await?)
        }
        OperatorCommand::RevokeKey { project: reference, key } => {
            let project = project(store, &reference).await?;
            let revoked = keys::revoke_secret_key(store, &project, &key, OPERATOR).await?;
            Ok(json!({"revoked": revoked.name}))
        }
        OperatorCommand::RotateIngestionKey { project: reference, overlap_hours } => {
            let project = project(store, &reference).await?;
            let rotation = keys::rotate_ingestion_key(store, &project, overlap_hours, OPERATOR).await?;
            Ok(rotation.answer())
        }
        OperatorCommand::Backup { to } => {
            if !to.is_absolute() {
                return Err(ApiError::BadQuery("--to: give an absolute path (the server resolves it)".into()));
            }
            let started = std::time::Instant::now();
            let summary = store.backup(to).await?;
            audit::record(
                store,
                INSTANCE,
                OPERATOR,
                "store.backup",
                &summary.dir.display().to_string(),
                json!({"bytes": summary.bytes}),
            )
            .await;
            let mut body = serde_json::to_value(&summary).unwrap_or_default();
            body["seconds"] = json!(started.elapsed().as_secs_f64());
            Ok(body)
        }
    }
}

/// `POST /internal/control`: a command from `troupe` on this machine.
pub async fn control(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let expected =
        app.settings.control_token.as_deref().ok_or_else(|| ApiError::NotFound("no route /internal/control".into()))?;
    // The token is readable only by the server's own user, in its data directory.
    let given = auth::bearer(&headers).unwrap_or_default();
    if auth::hash_secret(given) != auth::hash_secret(expected) {
        return Err(ApiError::Unauthorized("wrong control token".into()));
    }
    let command: OperatorCommand = json_body(&body)?;
    let reload = command.changes_keys();
    let answer = run(app.store.as_ref(), &app.sessions, command).await?;
    if reload {
        app.projects.reload(app.store.as_ref()).await.map_err(ApiError::Store)?;
    }
    Ok(Json(answer))
}

/// What `control.json` holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct ControlFile {
    pub url: String,
    pub token: String,
    pub pid: u32,
}

/// Write the control file (owner-only) for the CLI; removed again when the server stops.
pub fn write_control_file(dir: &std::path::Path, url: &str, token: &str) -> Result<std::path::PathBuf, StoreError> {
    let path = dir.join(CONTROL_FILE);
    let text = serde_json::to_string(&ControlFile { url: url.into(), token: token.into(), pid: std::process::id() })
        .map_err(|e| StoreError::Internal(e.to_string()))?;
    let io = |e: std::io::Error| StoreError::Internal(format!("cannot write {}: {e}", path.display()));
    let _ = std::fs::remove_file(&path);
    {
        use std::io::Write;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&path).map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
    }
    Ok(path)
}
