//! Projects and their keys. An ingestion key (public, write-only) identifies the project of a
//! client request in every protocol; a secret key (`Authorization: Bearer …`) reads it.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use rand::distributions::Alphanumeric;
use rand::Rng;
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};
use troupe_store::{Project, Store, StoreError};

use crate::error::ApiError;

/// How often an unknown key may trigger a reload of the project list.
const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

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

/// The project list, cached: keys are checked on every request.
pub struct Projects {
    by_ingestion_key: RwLock<HashMap<String, Project>>,
    last_reload: Mutex<Option<Instant>>,
}

impl Projects {
    pub async fn load(store: &dyn Store) -> Result<Self, StoreError> {
        let projects = Projects { by_ingestion_key: RwLock::new(HashMap::new()), last_reload: Mutex::new(None) };
        projects.reload(store).await?;
        Ok(projects)
    }

    pub async fn reload(&self, store: &dyn Store) -> Result<(), StoreError> {
        let fresh: HashMap<_, _> = store.projects().await?.into_iter().map(|p| (p.ingestion_key.clone(), p)).collect();
        *self.by_ingestion_key.write().await = fresh;
        *self.last_reload.lock().await = Some(Instant::now());
        Ok(())
    }

    pub async fn all(&self) -> Vec<Project> {
        let mut list: Vec<_> = self.by_ingestion_key.read().await.values().cloned().collect();
        list.sort_by_key(|p| p.id);
        list
    }

    /// The project of an ingestion key; an unknown key reloads the list at most once a second
    /// (a project created since start is found, a flood of bad keys costs nothing).
    pub async fn by_ingestion_key(&self, store: &dyn Store, key: &str) -> Result<Option<Project>, StoreError> {
        if let Some(p) = self.by_ingestion_key.read().await.get(key) {
            return Ok(Some(p.clone()));
        }
        let due = self.last_reload.lock().await.is_none_or(|at| at.elapsed() >= RELOAD_INTERVAL);
        if due {
            self.reload(store).await?;
            return Ok(self.by_ingestion_key.read().await.get(key).cloned());
        }
        Ok(None)
    }

    /// The project named by `reference` (its id or name) if `headers` carry its secret key.
    /// A project that does not exist and a wrong key get the same 401, so that project names
    /// cannot be probed without a key.
    pub async fn authorize_read(&self, headers: &HeaderMap, reference: &str) -> Result<Project, ApiError> {
        let hash = secret_hash(headers)?;
        self.all()
            .await
            .into_iter()
            .find(|p| (p.name == reference || p.id.to_string() == reference) && p.secret_key_hash == hash)
            .ok_or_else(|| ApiError::Unauthorized(format!("that secret key does not open a project '{reference}'")))
    }

    /// Every project a secret key opens.
    pub async fn readable_with(&self, headers: &HeaderMap) -> Result<Vec<Project>, ApiError> {
        let hash = secret_hash(headers)?;
        let projects: Vec<_> = self.all().await.into_iter().filter(|p| p.secret_key_hash == hash).collect();
        if projects.is_empty() {
            return Err(ApiError::Unauthorized("that secret key is not valid for any project".into()));
        }
        Ok(projects)
    }
}

/// The hash of the secret key in `Authorization: Bearer …`, or why there is none.
fn secret_hash(headers: &HeaderMap) -> Result<String, ApiError> {
    let secret = bearer(headers).ok_or_else(|| {
        ApiError::Unauthorized("missing secret key: send 'Authorization: Bearer <secret key>'".into())
    })?;
    Ok(hash_secret(secret))
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
