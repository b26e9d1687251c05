//! Changing a project's keys: named secret keys with a scope and an optional expiry (the secret
//! is returned once and stored hashed), and rotation of the ingestion key with an overlap during
//! which the old key still works. Used by the API, the dashboard and the CLI alike.

use chrono::{DateTime, Duration, Utc};
use serde_json::json;
use troupe_store::{Project, Store, StoreError};

use crate::audit;
use crate::auth::{generate_key, hash_secret, key_ring, save_key_ring, Scope, SecretKey};
use crate::error::ApiError;

/// The longest overlap a rotation may ask: clients are redeployed slowly, but not forever.
pub const MAX_OVERLAP_HOURS: f64 = 24.0 * 90.0;
pub const DEFAULT_OVERLAP_HOURS: f64 = 24.0 * 7.0;

/// Changes to key rings are read-modify-write of one document: one at a time in this process
/// (two admins creating keys at once must not lose one).
static RING_CHANGES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A secret key just made: `secret` exists only in this answer.
pub struct CreatedKey {
    pub secret: String,
    pub key: SecretKey,
}

impl CreatedKey {
    /// As the API and the CLI answer: the key as listed, and its secret.
    pub fn answer(&self) -> serde_json::Value {
        let mut body = serde_json::to_value(self.key.public()).unwrap_or_default();
        body["secret"] = json!(self.secret);
        body
    }
}

/// The most days a key may be made to last.
const MAX_KEY_DAYS: i64 = 3650;

/// The expiry of a key made to last `days` from now; a 400 naming `field` outside 1 to 3650.
pub fn expiry_in_days(days: i64, field: &str) -> Result<DateTime<Utc>, ApiError> {
    if !(1..=MAX_KEY_DAYS).contains(&days) {
        return Err(ApiError::BadQuery(format!("{field}: between 1 and {MAX_KEY_DAYS}")));
    }
    Ok(Utc::now() + Duration::days(days))
}

pub async fn create_secret_key(
    store: &dyn Store,
    project: &Project,
    name: &str,
    scope: Scope,
    expires_at: Option<DateTime<Utc>>,
    actor: &str,
) -> Result<CreatedKey, ApiError> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::BadQuery("name: 1 to 100 characters".into()));
    }
    if expires_at.is_some_and(|at| at <= Utc::now()) {
        return Err(ApiError::BadQuery("expires_at: must be in the future".into()));
    }
    let _one = RING_CHANGES.lock().await;
    let mut ring = key_ring(store, project).await?;
    if ring.secret.iter().any(|k| k.name == name) {
        return Err(ApiError::Store(StoreError::Conflict(format!("a key named '{name}' exists: pick another name"))));
    }
    let secret = generate_key("trs_");
    let hash = hash_secret(&secret);
    let key = SecretKey {
        id: hash[..12].to_string(),
        name: name.to_string(),
        scope,
        hint: format!("{}…", &secret[..8]),
        hash,
        created_at: Utc::now(),
        expires_at,
        created_by: actor.to_string(),
    };
    ring.secret.push(key.clone());
    save_key_ring(store, project.id, &ring).await?;
    let details = json!({"scope": scope, "expires_at": expires_at, "id": key.id});
    audit::record(store, project.id, actor, "key.create", &key.name, details).await;
    Ok(CreatedKey { secret, key })
}

/// Revoke a secret key at once (by id or name).
pub async fn revoke_secret_key(
    store: &dyn Store,
    project: &Project,
    key: &str,
    actor: &str,
) -> Result<SecretKey, ApiError> {
    let _one = RING_CHANGES.lock().await;
    let mut ring = key_ring(store, project).await?;
    let index = ring
        .secret
        .iter()
        .position(|k| k.id == key || k.name == key)
        .ok_or_else(|| ApiError::NotFound(format!("no secret key '{key}' in project '{}'", project.name)))?;
    let removed = ring.secret.remove(index);
    save_key_ring(store, project.id, &ring).await?;
    audit::record(
        store,
        project.id,
        actor,
        "key.revoke",
        &removed.name,
        json!({"id": removed.id, "scope": removed.scope}),
    )
    .await;
    Ok(removed)
}

/// A new ingestion key; the keys in use until now keep working for `overlap_hours`.
pub struct Rotation {
    pub key: String,
    pub retiring: Vec<String>,
    pub retires_at: DateTime<Utc>,
}

impl Rotation {
    pub fn answer(&self) -> serde_json::Value {
        json!({"key": self.key, "retiring": self.retiring, "retires_at": self.retires_at})
    }
}

pub async fn rotate_ingestion_key(
    store: &dyn Store,
    project: &Project,
    overlap_hours: f64,
    actor: &str,
) -> Result<Rotation, ApiError> {
    if !(0.0..=MAX_OVERLAP_HOURS).contains(&overlap_hours) {
        return Err(ApiError::BadQuery(format!("overlap_hours: between 0 and {MAX_OVERLAP_HOURS}")));
    }
    let _one = RING_CHANGES.lock().await;
    let mut ring = key_ring(store, project).await?;
    let now = Utc::now();
    // Fractions of an hour are taken to the millisecond.
    let retires_at = now + Duration::milliseconds((overlap_hours * 3_600_000.0) as i64);
    let mut retiring = Vec::new();
    for key in ring.ingestion.iter_mut().filter(|k| k.valid_at(now)) {
        // A key already retiring sooner keeps its earlier date.
        key.retires_at = Some(key.retires_at.map_or(retires_at, |at| at.min(retires_at)));
        retiring.push(key.key.clone());
    }
    // Retired keys are forgotten: they are refused either way.
    ring.ingestion.retain(|k| k.valid_at(now));
    let key = generate_key("tri_");
    ring.ingestion.push(crate::auth::IngestionKey { key: key.clone(), created_at: now, retires_at: None });
    save_key_ring(store, project.id, &ring).await?;
    let details = json!({"new_key": key, "retiring": retiring, "retires_at": retires_at});
    audit::record(store, project.id, actor, "ingestion_key.rotate", &project.name, details).await;
    Ok(Rotation { key, retiring, retires_at })
}

/// End a retiring ingestion key's overlap now.
pub async fn retire_ingestion_key(
    store: &dyn Store,
    project: &Project,
    key: &str,
    actor: &str,
) -> Result<(), ApiError> {
    let _one = RING_CHANGES.lock().await;
    let mut ring = key_ring(store, project).await?;
    if ring.current_ingestion_key() == Some(key) {
        return Err(ApiError::BadQuery("that is the current ingestion key: rotate it instead".into()));
    }
    let before = ring.ingestion.len();
    ring.ingestion.retain(|k| k.key != key);
    if ring.ingestion.len() == before {
        return Err(ApiError::NotFound(format!("no ingestion key '{key}' in project '{}'", project.name)));
    }
    save_key_ring(store, project.id, &ring).await?;
    audit::record(store, project.id, actor, "ingestion_key.retire", &project.name, json!({"key": key})).await;
    Ok(())
}

/// The keys as listed: ingestion keys whole (they are public), secret keys without hashes.
pub async fn listing(store: &dyn Store, project: &Project) -> Result<serde_json::Value, StoreError> {
    let ring = key_ring(store, project).await?;
    let now = Utc::now();
    let ingestion: Vec<_> = ring
        .ingestion
        .iter()
        .filter(|k| k.valid_at(now))
        .map(|k| json!({"key": k.key, "created_at": k.created_at, "retires_at": k.retires_at, "current": ring.current_ingestion_key() == Some(k.key.as_str())}))
        .collect();
    let secret: Vec<_> = ring
        .secret
        .iter()
        .map(|k| {
            let mut v = serde_json::to_value(k.public()).unwrap_or_default();
            v["expired"] = json!(!k.valid_at(now));
            v
        })
        .collect();
    Ok(json!({"ingestion": ingestion, "secret": secret}))
}
