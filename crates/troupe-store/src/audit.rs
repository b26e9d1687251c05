//! The audit log: who changed keys, members, settings, group types, or erased data, and when.
//! Entries are appended, never changed; a backend without a table of its own keeps them as
//! documents of kind [`AUDIT_KIND`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Document;

pub const AUDIT_KIND: &str = "audit";

/// One administrative action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Sorts in time order (microseconds since the epoch, then a random tail).
    pub id: String,
    pub at: DateTime<Utc>,
    /// `user:<email>`, `key:<key name>`, or `cli` for the operator's commands.
    pub actor: String,
    /// What was done, e.g. `key.create`, `member.invite`, `person.erase`, `settings.privacy`.
    pub action: String,
    /// What it was done to (a key's name, an email, a person id…).
    pub target: String,
    /// The particulars (a role, a scope, the settings written); never a secret.
    #[serde(default)]
    pub details: Value,
}

impl AuditEntry {
    pub fn new(actor: &str, action: &str, target: &str, details: Value) -> Self {
        let at = Utc::now();
        let tail: u32 = rand_tail();
        AuditEntry {
            id: format!("{:020}-{tail:08x}", at.timestamp_micros().max(0)),
            at,
            actor: actor.to_string(),
            action: action.to_string(),
            target: target.to_string(),
            details,
        }
    }

    pub fn to_document(&self) -> Document {
        Document {
            kind: AUDIT_KIND.into(),
            id: self.id.clone(),
            body: serde_json::to_value(self).unwrap_or_default(),
            updated_at: self.at,
        }
    }

    pub fn from_document(doc: Document) -> Option<Self> {
        serde_json::from_value(doc.body).ok()
    }
}

/// A page of the log, newest first: entries with ids below `before` (all when `None`).
pub fn page(mut entries: Vec<AuditEntry>, before: Option<&str>, limit: usize) -> Vec<AuditEntry> {
    entries.retain(|e| before.is_none_or(|b| e.id.as_str() < b));
    entries.sort_by(|a, b| b.id.cmp(&a.id));
    entries.truncate(limit);
    entries
}

/// Enough to tell two entries of the same microsecond apart (not a secret).
fn rand_tail() -> u32 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
    h.finish() as u32
}
