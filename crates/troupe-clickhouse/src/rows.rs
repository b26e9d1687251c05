//! Rows as they travel to and from ClickHouse (`JSONEachRow`), one struct per table.

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct ProjectRow {
    pub id: u32,
    pub name: String,
    pub ingestion_key: String,
    pub secret_key_hash: String,
    pub created_at: i64,
    pub version: u64,
    pub deleted: u8,
    /// The project stored an event with untyped group ids (schema 6; sticky).
    pub has_untyped: u8,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct GroupTypeRow {
    pub project_id: u32,
    pub slot: u8,
    pub name: String,
    pub display_name: String,
    pub version: u64,
    pub deleted: u8,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct PersonRow {
    pub project_id: u32,
    pub id: String,
    pub distinct_ids: Vec<String>,
    pub properties: String,
    pub identified: u8,
    pub created_at: i64,
    pub updated_at: i64,
    pub membership_slots: Vec<u8>,
    pub membership_keys: Vec<Vec<String>>,
    /// Per slot of `membership_slots`: when a `set_group` last replaced the set (µs), 0 if never.
    pub membership_replaced_at: Vec<i64>,
    pub version: u64,
    pub deleted: u8,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DistinctIdRow {
    pub project_id: u32,
    pub distinct_id: String,
    pub person_id: String,
    pub version: u64,
    pub deleted: u8,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct GroupProfileRow {
    pub project_id: u32,
    pub slot: u8,
    pub group_key: String,
    pub name: Option<String>,
    pub properties: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: u64,
    pub deleted: u8,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ChargeRow {
    pub project_id: u32,
    pub id: String,
    pub person_id: String,
    pub amount: f64,
    pub properties: String,
    pub time: i64,
    pub version: u64,
    pub deleted: u8,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct DocumentRow {
    pub project_id: u32,
    pub kind: String,
    pub id: String,
    pub body: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub version: u64,
    pub deleted: u8,
}

/// Versions for the rows this process writes: microseconds of the wall clock, strictly
/// increasing even when the clock stalls or steps back. Clones share one sequence.
#[derive(Debug, Default, Clone)]
pub struct Versions {
    last: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Versions {
    pub fn next(&self) -> u64 {
        use std::sync::atomic::Ordering;
        let now = u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(0);
        let previous = self
            .last
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(now.max(last + 1)))
            .unwrap_or_else(|last| last);
        now.max(previous + 1)
    }
}

/// The column list of a row struct's table, for SELECTs that decode into it.
pub const PERSON_VALUES: &[&str] = &[
    "distinct_ids",
    "properties",
    "identified",
    "created_at",
    "updated_at",
    "membership_slots",
    "membership_keys",
    "membership_replaced_at",
];
pub const GROUP_VALUES: &[&str] = &["name", "properties", "created_at", "updated_at"];
