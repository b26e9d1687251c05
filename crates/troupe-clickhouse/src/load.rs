//! Loading the writer's state from ClickHouse at start and after a failed write.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use troupe_core::{Group, GroupType, Limits, Person, PersonId, ProjectState, PENDING_SLOT};
use troupe_store::Project;

use crate::http::Http;
use crate::rows::PERSON_VALUES;
use crate::schema::latest;
use crate::ClickHouseError;

pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

/// Stored JSON is always written by troupe; a row that fails to parse reads as empty.
pub fn parse_json(text: &str) -> troupe_core::Properties {
    serde_json::from_str(text).unwrap_or_default()
}

pub async fn projects(http: &Http) -> Result<Vec<Project>, ClickHouseError> {
    #[derive(Deserialize)]
    struct Row {
        id: u32,
        name: String,
        ingestion_key: String,
        secret_key_hash: String,
        created_at: i64,
    }
    let sql = "SELECT id, n AS name, k AS ingestion_key, h AS secret_key_hash, c AS created_at FROM \
               (SELECT id, argMax(name, version) AS n, argMax(ingestion_key, version) AS k, \
               argMax(secret_key_hash, version) AS h, argMax(created_at, version) AS c, argMax(deleted, version) AS d \
               FROM projects GROUP BY id) WHERE d = 0 ORDER BY id";
    let rows: Vec<Row> = http.rows(sql).await?;
    Ok(rows
        .into_iter()
        .map(|r| Project {
            id: r.id,
            name: r.name,
            ingestion_key: r.ingestion_key,
            secret_key_hash: r.secret_key_hash,
            created_at: from_micros(r.created_at),
        })
        .collect())
}

/// Projects that stored an event with untyped group ids (schema 6's sticky mark).
pub async fn projects_with_untyped_ids(http: &Http) -> Result<std::collections::HashSet<u32>, ClickHouseError> {
    #[derive(Deserialize)]
    struct Row {
        id: u32,
    }
    let rows: Vec<Row> = http.rows("SELECT id FROM projects GROUP BY id HAVING max(has_untyped) = 1").await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

#[derive(Deserialize)]
pub struct TypeRow {
    pub slot: u8,
    pub name: String,
    pub display_name: String,
}

pub async fn group_types(http: &Http, project: u32) -> Result<Vec<TypeRow>, ClickHouseError> {
    let current = latest("group_types", project, &["slot"], &["name", "display_name"], "");
    http.rows(&format!("SELECT slot, name, display_name FROM {current} ORDER BY slot")).await
}

#[derive(Deserialize)]
pub struct StoredPerson {
    pub id: String,
    pub distinct_ids: Vec<String>,
    pub properties: String,
    pub identified: u8,
    pub created_at: i64,
    pub updated_at: i64,
    pub membership_slots: Vec<u8>,
    pub membership_keys: Vec<Vec<String>>,
    #[serde(default)]
    pub membership_replaced_at: Vec<i64>,
}

impl StoredPerson {
    pub fn into_person(self) -> Option<Person> {
        let uuid = uuid::Uuid::parse_str(&self.id).ok()?;
        let mut person = Person::new(PersonId(uuid), from_micros(self.created_at));
        person.distinct_ids = self.distinct_ids;
        person.properties = parse_json(&self.properties);
        person.identified = self.identified != 0;
        person.updated_at = from_micros(self.updated_at);
        for (i, (slot, keys)) in self.membership_slots.into_iter().zip(self.membership_keys).enumerate() {
            if slot == PENDING_SLOT {
                person.pending_groups = keys;
                continue;
            }
            person.memberships.insert(slot, keys);
            if let Some(&at) = self.membership_replaced_at.get(i).filter(|at| **at != 0) {
                person.replaced_at.insert(slot, from_micros(at));
            }
        }
        Some(person)
    }
}

pub fn person_columns() -> String {
    std::iter::once("id").chain(PERSON_VALUES.iter().copied()).collect::<Vec<_>>().join(", ")
}

#[derive(Deserialize)]
pub struct StoredGroup {
    pub slot: u8,
    pub group_key: String,
    pub name: Option<String>,
    pub properties: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl StoredGroup {
    pub fn into_group(self) -> Group {
        Group {
            slot: self.slot,
            key: self.group_key,
            name: self.name,
            properties: parse_json(&self.properties),
            created_at: from_micros(self.created_at),
            updated_at: from_micros(self.updated_at),
        }
    }
}

/// What the writer holds of a project before any batch: its group types and the content keys of
/// the retry window (both small). Persons, groups and client ids are looked up per batch
/// (`working_set`), so opening reads nothing that grows with history.
pub async fn project_state(
    http: &Http,
    project: u32,
    limits: Limits,
    dedupe_window: Duration,
) -> Result<ProjectState, ClickHouseError> {
    let mut state = ProjectState::new(project, limits, dedupe_window);
    let types = group_types(http, project).await?;
    state.restore_group_types(
        types.into_iter().map(|t| GroupType { slot: t.slot, name: t.name, display_name: t.display_name }).collect(),
    );

    // Content keys older than the window are of no use; guarded writes' ids are looked up.
    let now = chrono::Utc::now();
    let since = (now - dedupe_window).timestamp_micros();
    let rows: Vec<crate::persist::RetryKeyRow> = http
        .rows(&format!(
            "SELECT project_id, key, seen_at, forever FROM retry_keys \
             WHERE project_id = {project} AND forever = 0 AND seen_at >= {since}"
        ))
        .await?;
    let records = rows
        .into_iter()
        .map(|r| troupe_core::dedupe::RetryRecord {
            key: r.key,
            seen_at: chrono::DateTime::from_timestamp_micros(r.seen_at).unwrap_or_default(),
            forever: r.forever != 0,
        })
        .collect();
    state.restore_retry_keys(records, now);

    #[derive(serde::Deserialize)]
    struct KeptOut {
        key: u64,
    }
    let kept_out: Vec<KeptOut> = http.rows(&format!("SELECT key FROM kept_out WHERE project_id = {project}")).await?;
    state.restore_kept_out(kept_out.into_iter().map(|k| k.key));
    Ok(state)
}
