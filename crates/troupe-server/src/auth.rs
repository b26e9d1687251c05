//! Projects and their keys. An ingestion key (public, write-only) identifies the project of a
//! client request in every protocol; a secret key (`Authorization: Bearer …`) opens the API with
//! its scope. Each project's keys are a [`KeyRing`] document; a project without one has the two
//! keys it was created with (the secret one with the admin scope).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use chrono::{DateTime, Utc};
use rand::distributions::Alphanumeric;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};
use troupe_core::ProjectId;
use troupe_store::{Document, Project, Store, StoreError};

use crate::access::Permission;
use crate::error::ApiError;

/// How often an unknown key may trigger a reload of the project list.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);
/// Keys changed by another process of a deployment (or a CLI) are seen within this: the server
/// reads them again this often, off the requests' path ([`crate::AppState::new`]).
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(10);
/// The document holding a project's keys.
const KEYS_KIND: &str = "keys";
const KEYS_ID: &str = "ring";

/// A new random key with a readable prefix (`tri_` ingestion, `trs_` secret).
pub fn generate_key(prefix: &str) -> String {
    let random: String = rand::thread_rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect();
    format!("{prefix}{random}")
}

/// Secret keys are stored hashed. They are long random tokens, so a plain SHA-256 is enough
/// (a slow password hash protects guessable secrets; these are not guessable).
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// What a secret key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read data and saved insights, dashboards, cohorts.
    Read,
    /// Read, and ask questions (`/query`, actors).
    Query,
    /// Everything a project administrator may do.
    Admin,
}

impl Scope {
    pub fn allows(self, need: Permission) -> bool {
        let granted = match self {
            Scope::Read => Permission::Read,
            Scope::Query => Permission::Query,
            Scope::Admin => Permission::Admin,
        };
        granted >= need
    }

    /// The scope `text` names; a 400 naming `field` (the API's `scope`, the CLI's `--scope`) else.
    pub fn parse(text: &str, field: &str) -> Result<Scope, ApiError> {
        match text {
            "read" => Ok(Scope::Read),
            "query" => Ok(Scope::Query),
            "admin" => Ok(Scope::Admin),
            _ => Err(ApiError::BadQuery(format!("{field}: '{text}' is not a scope (read, query, admin)"))),
        }
    }
}

/// An ingestion key; one past its `retires_at` is refused (the old key of a rotation).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestionKey {
    pub key: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub retires_at: Option<DateTime<Utc>>,
}

impl IngestionKey {
    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.retires_at.is_none_or(|at| at > now)
    }
}

/// A named secret key: only its hash and a hint (its first characters) are kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretKey {
    pub id: String,
    pub name: String,
    pub scope: Scope,
    #[serde(skip_serializing_if = "String::is_empty", default)]
    pub hash: String,
    pub hint: String,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub expires_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub created_by: String,
}

impl SecretKey {
    pub fn valid_at(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|at| at > now)
    }

    /// As listed by the API: without the hash.
    pub fn public(&self) -> SecretKey {
        SecretKey { hash: String::new(), ..self.clone() }
    }
}

/// Every key of one project.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct KeyRing {
    pub ingestion: Vec<IngestionKey>,
    pub secret: Vec<SecretKey>,
}

impl KeyRing {
    /// The keys a project has before any change: those it was created with.
    fn of_new_project(project: &Project) -> KeyRing {
        KeyRing {
            ingestion: vec![IngestionKey {
                key: project.ingestion_key.clone(),
                created_at: project.created_at,
                retires_at: None,
            }],
            secret: vec![SecretKey {
                id: "default".into(),
                name: "default".into(),
                scope: Scope::Admin,
                hash: project.secret_key_hash.clone(),
                hint: "trs_…".into(),
                created_at: project.created_at,
                expires_at: None,
                created_by: "project creation".into(),
            }],
        }
    }

    /// The key SDKs should be given now: the newest one without a retirement date.
    pub fn current_ingestion_key(&self) -> Option<&str> {
        self.ingestion.iter().rev().find(|k| k.retires_at.is_none()).map(|k| k.key.as_str())
    }
}

/// A project's keys as stored (or as created, when never changed).
pub async fn key_ring(store: &dyn Store, project: &Project) -> Result<KeyRing, StoreError> {
    let stored = store.documents(project.id, KEYS_KIND).await?;
    Ok(stored
        .into_iter()
        .find(|d| d.id == KEYS_ID)
        .and_then(|d| serde_json::from_value(d.body).ok())
        .unwrap_or_else(|| KeyRing::of_new_project(project)))
}

pub async fn save_key_ring(store: &dyn Store, project: ProjectId, ring: &KeyRing) -> Result<(), StoreError> {
    let body = serde_json::to_value(ring).map_err(|e| StoreError::Internal(format!("cannot encode keys: {e}")))?;
    store
        .put_document(project, Document { kind: KEYS_KIND.into(), id: KEYS_ID.into(), body, updated_at: Utc::now() })
        .await
}

/// The secret key a request was made with: which project, which key.
#[derive(Debug, Clone)]
pub struct KeyGrant {
    pub project: Project,
    pub key: SecretKey,
}

#[derive(Default)]
struct Loaded {
    projects: Vec<(Project, KeyRing)>,
    /// Ingestion key → index in `projects`, and when the key retires.
    by_ingestion_key: HashMap<String, (usize, Option<DateTime<Utc>>)>,
    /// Secret key hash → index in `projects` and in its ring's secret keys.
    by_secret_hash: HashMap<String, (usize, usize)>,
}

/// The projects and their keys, cached: keys are checked on every request.
pub struct Projects {
    loaded: RwLock<Loaded>,
    last_miss_reload: Mutex<Option<Instant>>,
}

impl Projects {
    pub async fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let projects = Projects { loaded: RwLock::default(), last_miss_reload: Mutex::new(None) };
        projects.reload(store).await?;
        Ok(projects)
    }

    pub async fn reload(&self, store: &dyn Store) -> Result<(), StoreError> {
        let mut loaded = Loaded::default();
        for project in store.projects().await? {
            let ring = key_ring(store, &project).await?;
            let index = loaded.projects.len();
            for key in &ring.ingestion {
                loaded.by_ingestion_key.insert(key.key.clone(), (index, key.retires_at));
            }
            for (k, key) in ring.secret.iter().enumerate() {
                loaded.by_secret_hash.insert(key.hash.clone(), (index, k));
            }
            loaded.projects.push((project, ring));
        }
        *self.loaded.write().await = loaded;
        Ok(())
    }

    /// Reload for a key not found, at most once a second (a project or key created since, by
    /// another process; a flood of bad keys costs nothing).
    async fn reload_for_miss(&self, store: &dyn Store) -> Result<bool, StoreError> {
        let mut last = self.last_miss_reload.lock().await;
        if last.is_some_and(|at| at.elapsed() < RELOAD_INTERVAL) {
            return Ok(false);
        }
        *last = Some(Instant::now());
        drop(last);
        self.reload(store).await?;
        Ok(true)
    }

    pub async fn all(&self) -> Vec<Project> {
        let mut list: Vec<_> = self.loaded.read().await.projects.iter().map(|(p, _)| p.clone()).collect();
        list.sort_by_key(|p| p.id);
        list
    }

    /// A project with its keys, by id or name.
    pub async fn find(&self, reference: &str) -> Option<(Project, KeyRing)> {
        self.loaded
            .read()
            .await
            .projects
            .iter()
            .find(|(p, _)| p.name == reference || p.id.to_string() == reference)
            .cloned()
    }

    /// The key ring of a project (as cached).
    pub async fn ring(&self, project: ProjectId) -> Option<KeyRing> {
        self.loaded.read().await.projects.iter().find(|(p, _)| p.id == project).map(|(_, r)| r.clone())
    }

    /// The project of an ingestion key still valid now.
    pub async fn by_ingestion_key(&self, store: &dyn Store, key: &str) -> Result<Option<Project>, StoreError> {
        if let Some(found) = self.ingestion_lookup(key).await {
            return Ok(found);
        }
        if self.reload_for_miss(store).await? {
            return Ok(self.ingestion_lookup(key).await.flatten());
        }
        Ok(None)
    }

    /// `Some(None)`: the key is known but retired.
    async fn ingestion_lookup(&self, key: &str) -> Option<Option<Project>> {
        let loaded = self.loaded.read().await;
        let (index, retires_at) = loaded.by_ingestion_key.get(key)?;
        let valid = retires_at.is_none_or(|at| at > Utc::now());
        Some(valid.then(|| loaded.projects[*index].0.clone()))
    }

    /// The project and key of a secret key, if it is valid now.
    pub async fn by_secret(&self, store: &dyn Store, secret: &str) -> Result<Option<KeyGrant>, StoreError> {
        let hash = hash_secret(secret);
        if let Some(found) = self.secret_lookup(&hash).await {
            return Ok(found);
        }
        if self.reload_for_miss(store).await? {
            return Ok(self.secret_lookup(&hash).await.flatten());
        }
        Ok(None)
    }

    async fn secret_lookup(&self, hash: &str) -> Option<Option<KeyGrant>> {
        let loaded = self.loaded.read().await;
        let (p, k) = loaded.by_secret_hash.get(hash)?;
        let (project, ring) = &loaded.projects[*p];
        let key = &ring.secret[*k];
        Some(key.valid_at(Utc::now()).then(|| KeyGrant { project: project.clone(), key: key.clone() }))
    }

    /// The grant of the bearer key in `headers`, or why there is none.
    pub async fn bearer_grant(&self, store: &dyn Store, headers: &HeaderMap) -> Result<KeyGrant, ApiError> {
        let secret = bearer(headers).ok_or_else(|| {
            ApiError::Unauthorized("missing secret key: send 'Authorization: Bearer <secret key>'".into())
        })?;
        self.by_secret(store, secret)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("that secret key is not valid (unknown, revoked or expired)".into()))
    }
}

/// The token of `Authorization: Bearer <token>`.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// The user part of `Authorization: Basic base64(user:password)` (Segment's write key, Mixpanel's
/// API secret).
pub fn basic_user(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let value = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?.trim();
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let user = text.split(':').next()?.to_string();
    (!user.is_empty()).then_some(user)
}
