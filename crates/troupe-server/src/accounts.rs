//! Dashboard accounts: users with argon2id passwords, a role per project (or instance
//! administrators, admin everywhere), and invitations. Users and invitations are documents of
//! the instance scope ([`INSTANCE`]), so every backend stores them.

use std::collections::BTreeMap;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use troupe_core::ProjectId;
use troupe_store::{Document, Store, StoreError, INSTANCE};

use crate::access::Role;
use crate::auth::{generate_key, hash_secret};
use crate::error::ApiError;

pub const USER_KIND: &str = "user";
const INVITE_KIND: &str = "invite";
pub const MIN_PASSWORD: usize = 8;
/// An invitation link works for a week.
const INVITE_DAYS: i64 = 7;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub email: String,
    pub password_hash: String,
    #[serde(default = "Utc::now")]
    pub created_at: DateTime<Utc>,
    /// An instance administrator is admin of every project, present and future, and manages
    /// accounts. Absent on accounts made before roles existed: those were the administrator.
    #[serde(default)]
    pub admin: Option<bool>,
    /// Role per project id.
    #[serde(default)]
    pub roles: Option<BTreeMap<ProjectId, Role>>,
}

impl User {
    pub fn is_instance_admin(&self) -> bool {
        self.admin.unwrap_or(self.roles.is_none())
    }

    pub fn role_in(&self, project: ProjectId) -> Option<Role> {
        if self.is_instance_admin() {
            return Some(Role::Admin);
        }
        self.roles.as_ref()?.get(&project).copied()
    }

    pub fn set_role(&mut self, project: ProjectId, role: Option<Role>) {
        let admin = self.is_instance_admin();
        self.admin = Some(admin);
        let roles = self.roles.get_or_insert_with(BTreeMap::new);
        match role {
            Some(role) => roles.insert(project, role),
            None => roles.remove(&project),
        };
    }

    /// What the API shows of a user (never the hash).
    pub fn public(&self) -> serde_json::Value {
        serde_json::json!({
            "email": self.email,
            "created_at": self.created_at,
            "instance_admin": self.is_instance_admin(),
            "roles": self.roles.clone().unwrap_or_default(),
        })
    }
}

pub fn normalize_email(text: &str) -> Result<String, ApiError> {
    let email = text.trim().to_lowercase();
    if !email.contains('@') || email.len() > 200 || email.chars().any(char::is_whitespace) {
        return Err(ApiError::BadQuery("email: give an email address".into()));
    }
    Ok(email)
}

/// Whether a new password is acceptable (a 400 naming `password` else).
pub fn check_password(password: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(ApiError::BadQuery(format!("password: at least {MIN_PASSWORD} characters")));
    }
    if password.len() > 1024 {
        return Err(ApiError::BadQuery("password: at most 1024 bytes".into()));
    }
    Ok(())
}

pub fn hash_password(password: &str) -> Result<String, ApiError> {
    check_password(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Store(StoreError::Internal(format!("cannot hash the password: {e}"))))
}

pub fn verify_password(user: &User, password: &str) -> bool {
    PasswordHash::new(&user.password_hash)
        .is_ok_and(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
}

pub async fn users(store: &dyn Store) -> Result<Vec<User>, StoreError> {
    let docs = store.documents(INSTANCE, USER_KIND).await?;
    Ok(docs.into_iter().filter_map(|d| serde_json::from_value(d.body).ok()).collect())
}

pub async fn user(store: &dyn Store, email: &str) -> Result<Option<User>, StoreError> {
    Ok(users(store).await?.into_iter().find(|u| u.email == email))
}

pub async fn save_user(store: &dyn Store, user: &User) -> Result<(), StoreError> {
    let body = serde_json::to_value(user).map_err(|e| StoreError::Internal(format!("cannot encode a user: {e}")))?;
    store
        .put_document(
            INSTANCE,
            Document { kind: USER_KIND.into(), id: user.email.clone(), body, updated_at: Utc::now() },
        )
        .await
}

pub async fn delete_user(store: &dyn Store, email: &str) -> Result<bool, StoreError> {
    store.delete_document(INSTANCE, USER_KIND, email).await
}

/// A new account. Refused when the email has one.
pub async fn add_user(
    store: &dyn Store,
    email: &str,
    password: &str,
    instance_admin: bool,
    roles: BTreeMap<ProjectId, Role>,
) -> Result<User, ApiError> {
    let email = normalize_email(email)?;
    let password_hash = hash_password(password)?;
    if user(store, &email).await?.is_some() {
        return Err(ApiError::Store(StoreError::Conflict(format!("{email} has an account already"))));
    }
    let user = User { email, password_hash, created_at: Utc::now(), admin: Some(instance_admin), roles: Some(roles) };
    save_user(store, &user).await?;
    Ok(user)
}

/// An invitation to one project with a role, sent as a link holding its token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invite {
    /// The hash's first characters: how the API names it.
    pub id: String,
    pub email: String,
    pub project: ProjectId,
    pub role: Role,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Make an invitation; the token (in the link) exists only in the answer.
pub async fn create_invite(
    store: &dyn Store,
    email: &str,
    project: ProjectId,
    role: Role,
    by: &str,
) -> Result<(String, Invite), StoreError> {
    let token = generate_key("tin_");
    let hash = hash_secret(&token);
    let now = Utc::now();
    let invite = Invite {
        id: hash[..16].to_string(),
        email: email.to_string(),
        project,
        role,
        created_by: by.to_string(),
        created_at: now,
        expires_at: now + Duration::days(INVITE_DAYS),
    };
    let body = serde_json::to_value(&invite).map_err(|e| StoreError::Internal(e.to_string()))?;
    store.put_document(INSTANCE, Document { kind: INVITE_KIND.into(), id: hash, body, updated_at: now }).await?;
    Ok((token, invite))
}

/// Invitations not yet accepted nor expired (of one project, or all).
pub async fn invites(store: &dyn Store, project: Option<ProjectId>) -> Result<Vec<(String, Invite)>, StoreError> {
    let docs = store.documents(INSTANCE, INVITE_KIND).await?;
    let now = Utc::now();
    Ok(docs
        .into_iter()
        .filter_map(|d| Some((d.id, serde_json::from_value::<Invite>(d.body).ok()?)))
        .filter(|(_, i)| i.expires_at > now && project.is_none_or(|p| p == i.project))
        .collect())
}

pub async fn find_invite(store: &dyn Store, token: &str) -> Result<Option<(String, Invite)>, StoreError> {
    let hash = hash_secret(token);
    Ok(invites(store, None).await?.into_iter().find(|(h, _)| *h == hash))
}

pub async fn delete_invite(store: &dyn Store, hash: &str) -> Result<bool, StoreError> {
    store.delete_document(INSTANCE, INVITE_KIND, hash).await
}

/// Forget expired invitations.
pub async fn purge_expired_invites(store: &dyn Store) -> Result<usize, StoreError> {
    let now = Utc::now();
    let mut purged = 0;
    for doc in store.documents(INSTANCE, INVITE_KIND).await? {
        let expired = serde_json::from_value::<Invite>(doc.body).map_or(true, |i| i.expires_at <= now);
        if expired && store.delete_document(INSTANCE, INVITE_KIND, &doc.id).await? {
            purged += 1;
        }
    }
    Ok(purged)
}
