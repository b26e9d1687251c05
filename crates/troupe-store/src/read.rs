//! Read models: what the read API returns, identical across backends.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use troupe_core::{ProjectId, Properties};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    pub id: ProjectId,
    pub name: String,
    /// Write-only key every wire protocol authenticates with.
    pub ingestion_key: String,
    /// Hash of the secret key that reads and administers the project.
    #[serde(skip)]
    pub secret_key_hash: String,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct NewProject {
    pub name: String,
    pub ingestion_key: String,
    pub secret_key_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct GroupTypeInfo {
    pub index: u8,
    pub group_type: String,
    pub display_name: String,
    pub group_count: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupSort {
    #[default]
    UpdatedAt,
    CreatedAt,
    Key,
    Name,
}

#[derive(Debug, Clone, Default)]
pub struct GroupQuery {
    pub group_type: String,
    /// Case-insensitive substring of the key, the name or a property value.
    pub search: Option<String>,
    pub sort: GroupSort,
    pub descending: bool,
    pub limit: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Page<T> {
    pub results: Vec<T>,
    pub total: u64,
    pub limit: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupRow {
    pub group_type: String,
    pub key: String,
    pub name: Option<String>,
    pub properties: Properties,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupProfile {
    #[serde(flatten)]
    pub group: GroupRow,
    /// Persons currently members of the group.
    pub members: Vec<PersonRow>,
    /// Events attributed to the group (stamped with its id, or an untyped id equal to its key).
    pub recent_events: Vec<EventRow>,
}

#[derive(Debug, Clone, Default)]
pub struct PersonQuery {
    /// Case-insensitive substring of a distinct id or a property value.
    pub search: Option<String>,
    pub limit: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonRow {
    pub id: String,
    pub distinct_ids: Vec<String>,
    pub properties: Properties,
    pub identified: bool,
    /// Current memberships per group type name.
    pub group_memberships: BTreeMap<String, Vec<String>>,
    /// Keys joined without a type that no group has yet (OpenPanel `setGroup` before
    /// `upsertGroup`); listed so the person's data and exports are whole.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub pending_groups: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChargeRow {
    pub amount: f64,
    pub properties: Properties,
    pub time: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PersonProfile {
    #[serde(flatten)]
    pub person: PersonRow,
    pub charges: Vec<ChargeRow>,
    pub recent_events: Vec<EventRow>,
}

#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub limit: usize,
    pub event: Option<String>,
    /// Events of this person (any of its distinct ids, before and after merges).
    pub person: Option<String>,
    /// Events attributed to this group: (type, key).
    pub group: Option<(String, String)>,
    /// Only events strictly older than this (for paging back).
    pub before: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    pub uuid: String,
    pub event: String,
    pub distinct_id: String,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub properties: Properties,
    /// Attribution stamped at ingest, per group type name.
    pub groups: BTreeMap<String, Vec<String>>,
    /// Untyped group ids as sent (OpenPanel).
    pub untyped_groups: Vec<String>,
}
