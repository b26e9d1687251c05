//! Loading persisted state into the writer at start.

use std::collections::HashMap;

use chrono::Duration;
use duckdb::types::Value;
use duckdb::Connection;
use troupe_core::dedupe::RetryRecord;
use troupe_core::{Group, GroupType, Limits, Person, PersonId, ProjectId, ProjectState, PENDING_SLOT};
use troupe_store::Project;

use crate::values::{from_micros, list_of_text, parse_json};

pub fn projects(conn: &Connection) -> duckdb::Result<Vec<Project>> {
    let mut stmt = conn
        .prepare("SELECT id, name, ingestion_key, secret_key_hash, epoch_us(created_at) FROM projects ORDER BY id")?;
    let rows = stmt.query_map([], |r| {
        Ok(Project {
            id: r.get(0)?,
            name: r.get(1)?,
            ingestion_key: r.get(2)?,
            secret_key_hash: r.get(3)?,
            created_at: from_micros(r.get(4)?),
        })
    })?;
    rows.collect()
}

pub fn project_state(
    conn: &Connection,
    project: ProjectId,
    limits: Limits,
    dedupe_window: Duration,
) -> duckdb::Result<ProjectState> {
    let mut state = ProjectState::new(project, limits, dedupe_window);

    let mut stmt = conn.prepare("SELECT slot, name, display_name FROM group_types WHERE project_id = ?")?;
    let types = stmt
        .query_map([project], |r| Ok(GroupType { slot: r.get(0)?, name: r.get(1)?, display_name: r.get(2)? }))?
        .collect::<duckdb::Result<Vec<_>>>()?;
    state.restore_group_types(types);

    // The memberships are read on a connection of their own while the persons are read here:
    // the two largest tables, each about a fifth of a second at 100k persons, and a start waits
    // for them before the first question.
    let other = conn.try_clone()?;
    let (memberships, persons) = std::thread::scope(|scope| {
        let memberships = scope.spawn(move || memberships_by_person(&other, project));
        let persons = person_rows(conn, project);
        let memberships = memberships.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (memberships, persons)
    });
    let mut memberships = memberships?;
    for (id, distinct_ids, properties, identified, created, updated) in persons? {
        let Ok(uuid) = uuid::Uuid::parse_str(&id) else {
            tracing::warn!(person = %id, "skipping a person row with an invalid id");
            continue;
        };
        let mut person = Person::new(PersonId(uuid), from_micros(created));
        person.distinct_ids = distinct_ids;
        person.properties = parse_json(&properties);
        person.identified = identified;
        person.updated_at = from_micros(updated);
        for (slot, keys, replaced_at) in memberships.remove(&id).unwrap_or_default() {
            if slot == PENDING_SLOT {
                person.pending_groups = keys;
                continue;
            }
            person.memberships.insert(slot, keys);
            if let Some(at) = replaced_at {
                person.replaced_at.insert(slot, from_micros(at));
            }
        }
        state.restore_person(person);
    }

    let mut stmt = conn.prepare(
        "SELECT slot, group_key, name, properties, epoch_us(created_at), epoch_us(updated_at)
         FROM group_profiles WHERE project_id = ?",
    )?;
    let rows = stmt.query_map([project], |r| {
        Ok(Group {
            slot: r.get(0)?,
            key: r.get(1)?,
            name: r.get(2)?,
            properties: parse_json(&r.get::<_, String>(3)?),
            created_at: from_micros(r.get(4)?),
            updated_at: from_micros(r.get(5)?),
        })
    })?;
    for group in rows {
        state.restore_group(group?);
    }

    let mut stmt = conn.prepare("SELECT dedup_key FROM events WHERE project_id = ? AND dedup_key IS NOT NULL")?;
    let keys = stmt.query_map([project], |r| r.get::<_, u64>(0))?.collect::<duckdb::Result<Vec<_>>>()?;
    state.restore_dedup_keys(keys);

    let now = chrono::Utc::now();
    let mut stmt = conn.prepare(
        "SELECT key, epoch_us(seen_at), forever FROM retry_keys WHERE project_id = ? AND (forever OR seen_at >= ?)",
    )?;
    let since = crate::values::ts(now - dedupe_window);
    let records = stmt
        .query_map(duckdb::params![project, since], |r| {
            Ok(RetryRecord { key: r.get(0)?, seen_at: from_micros(r.get(1)?), forever: r.get(2)? })
        })?
        .collect::<duckdb::Result<Vec<_>>>()?;
    state.restore_retry_keys(records, now);

    let mut stmt = conn.prepare("SELECT key FROM kept_out WHERE project_id = ?")?;
    let kept_out = stmt.query_map([project], |r| r.get::<_, u64>(0))?.collect::<duckdb::Result<Vec<_>>>()?;
    state.restore_kept_out(kept_out);
    Ok(state)
}

/// Per person id, its memberships: per slot, the group keys and when a set_group last
/// replaced them (µs).
type Memberships = HashMap<String, Vec<(u8, Vec<String>, Option<i64>)>>;

fn memberships_by_person(conn: &Connection, project: ProjectId) -> duckdb::Result<Memberships> {
    let mut memberships = Memberships::new();
    let mut stmt = conn
        .prepare("SELECT person_id, slot, group_keys, epoch_us(replaced_at) FROM memberships WHERE project_id = ?")?;
    let rows = stmt.query_map([project], |r| {
        let membership = (r.get::<_, u8>(1)?, list_of_text(r.get::<_, Value>(2)?), r.get::<_, Option<i64>>(3)?);
        Ok((r.get::<_, String>(0)?, membership))
    })?;
    for row in rows {
        let (person, membership) = row?;
        memberships.entry(person).or_default().push(membership);
    }
    Ok(memberships)
}

/// A person's row: id, distinct ids, properties (JSON), identified, created and updated (µs).
type PersonRow = (String, Vec<String>, String, bool, i64, i64);

fn person_rows(conn: &Connection, project: ProjectId) -> duckdb::Result<Vec<PersonRow>> {
    let mut stmt = conn.prepare(
        "SELECT id, distinct_ids, properties, identified, epoch_us(created_at), epoch_us(updated_at)
         FROM persons WHERE project_id = ?",
    )?;
    let rows = stmt.query_map([project], |r| {
        Ok((
            r.get::<_, String>(0)?,
            list_of_text(r.get::<_, Value>(1)?),
            r.get::<_, String>(2)?,
            r.get::<_, bool>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, i64>(5)?,
        ))
    })?;
    rows.collect()
}
