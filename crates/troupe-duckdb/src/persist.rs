//! Writing one batch's changes inside the writer's transaction.
//!
//! Entities are written set-based: the rows of every touched entity are deleted with one
//! statement per table and the current state of those still present is appended. Events are
//! only ever appended.

use std::collections::BTreeMap;

use duckdb::types::Value;
use duckdb::{appender_params_from_iter, params, Connection};
use troupe_core::{Changes, ChargeChange, ProjectState};

use crate::values::{json, text_list, text_list_or_null, ts};

pub fn changes(conn: &Connection, state: &ProjectState, changes: &Changes, group_slots: usize) -> duckdb::Result<()> {
    let project = state.project_id;
    // Clearing comes first: it concerns events committed before; this batch's events already
    // had the slot removed by the state.
    for slot in &changes.cleared_slots {
        conn.execute(&format!("UPDATE events SET group_{slot} = NULL WHERE project_id = ?"), [project])?;
    }
    events(conn, project, changes, group_slots)?;
    persons(conn, state, changes)?;
    distinct_ids(conn, state, changes)?;
    groups(conn, state, changes)?;
    group_types(conn, state, changes)?;
    charges(conn, project, &changes.charges)
}

fn events(conn: &Connection, project: u32, changes: &Changes, group_slots: usize) -> duckdb::Result<()> {
    if changes.events.is_empty() {
        return Ok(());
    }
    let mut appender = conn.appender("events")?;
    for e in &changes.events {
        let mut row = vec![
            Value::UInt(project),
            Value::Text(e.uuid.clone()),
            e.dedup_key.map(Value::UBigInt).unwrap_or(Value::Null),
            Value::Text(e.event.clone()),
            Value::Text(e.distinct_id.clone()),
            ts(e.timestamp),
            ts(e.received_at),
            Value::Text(json(&e.properties)),
            text_list_or_null(&e.untyped_groups),
        ];
        for slot in 0..group_slots {
            let ids = u8::try_from(slot).ok().and_then(|s| e.groups.get(&s));
            row.push(ids.map(|ids| text_list_or_null(ids)).unwrap_or(Value::Null));
        }
        appender.append_row(appender_params_from_iter(row))?;
    }
    appender.flush()
}

/// DELETE the rows whose `column` is in `keys` (one statement, a hash semi-join).
fn delete_keys(conn: &Connection, table: &str, column: &str, project: u32, keys: Vec<String>) -> duckdb::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let sql = format!("DELETE FROM {table} WHERE project_id = ? AND {column} IN (SELECT unnest(?::VARCHAR[]))");
    conn.execute(&sql, params![project, text_list(&keys)])?;
    Ok(())
}

fn persons(conn: &Connection, state: &ProjectState, changes: &Changes) -> duckdb::Result<()> {
    if changes.persons.is_empty() {
        return Ok(());
    }
    let project = state.project_id;
    let ids: Vec<String> = changes.persons.iter().map(|id| id.to_string()).collect();
    delete_keys(conn, "persons", "id", project, ids.clone())?;
    delete_keys(conn, "memberships", "person_id", project, ids)?;
    let mut persons = conn.appender("persons")?;
    let mut memberships = conn.appender("memberships")?;
    for person in changes.persons.iter().filter_map(|id| state.person(*id)) {
        let id = person.id.to_string();
        persons.append_row(params![
            project,
            id,
            text_list(&person.distinct_ids),
            json(&person.properties),
            person.identified,
            ts(person.created_at),
            ts(person.updated_at)
        ])?;
        for (slot, keys) in &person.memberships {
            memberships.append_row(params![project, id, *slot, text_list(keys)])?;
        }
    }
    persons.flush()?;
    memberships.flush()
}

fn distinct_ids(conn: &Connection, state: &ProjectState, changes: &Changes) -> duckdb::Result<()> {
    if changes.distinct_ids.is_empty() {
        return Ok(());
    }
    let project = state.project_id;
    delete_keys(conn, "person_distinct_ids", "distinct_id", project, changes.distinct_ids.iter().cloned().collect())?;
    let mut appender = conn.appender("person_distinct_ids")?;
    for distinct_id in &changes.distinct_ids {
        if let Some(person) = state.person_by_distinct_id(distinct_id) {
            appender.append_row(params![project, distinct_id, person.id.to_string()])?;
        }
    }
    appender.flush()
}

fn groups(conn: &Connection, state: &ProjectState, changes: &Changes) -> duckdb::Result<()> {
    if changes.groups.is_empty() {
        return Ok(());
    }
    let project = state.project_id;
    let mut by_slot: BTreeMap<u8, Vec<String>> = BTreeMap::new();
    for (slot, key) in &changes.groups {
        by_slot.entry(*slot).or_default().push(key.clone());
    }
    for (slot, keys) in by_slot {
        conn.execute(
            "DELETE FROM group_profiles WHERE project_id = ? AND slot = ? AND group_key IN (SELECT unnest(?::VARCHAR[]))",
            params![project, slot, text_list(&keys)],
        )?;
    }
    let mut appender = conn.appender("group_profiles")?;
    for (slot, key) in &changes.groups {
        if let Some(g) = state.group(*slot, key) {
            appender.append_row(params![
                project,
                g.slot,
                g.key,
                g.name,
                json(&g.properties),
                ts(g.created_at),
                ts(g.updated_at)
            ])?;
        }
    }
    appender.flush()
}

fn group_types(conn: &Connection, state: &ProjectState, changes: &Changes) -> duckdb::Result<()> {
    let project = state.project_id;
    for slot in &changes.group_types {
        conn.execute("DELETE FROM group_types WHERE project_id = ? AND slot = ?", params![project, slot])?;
        if let Some(t) = state.group_types().by_slot(*slot) {
            conn.execute(
                "INSERT INTO group_types VALUES (?, ?, ?, ?)",
                params![project, t.slot, t.name, t.display_name],
            )?;
        }
    }
    Ok(())
}

fn charges(conn: &Connection, project: u32, changes: &[ChargeChange]) -> duckdb::Result<()> {
    for change in changes {
        match change {
            ChargeChange::Add(c) => conn.execute(
                "INSERT INTO charges VALUES (?, ?, ?, ?, ?)",
                params![project, c.person_id.to_string(), c.amount, json(&c.properties), ts(c.time)],
            )?,
            ChargeChange::Clear(person) => conn.execute(
                "DELETE FROM charges WHERE project_id = ? AND person_id = ?",
                params![project, person.to_string()],
            )?,
            ChargeChange::Move { from, to } => conn.execute(
                "UPDATE charges SET person_id = ? WHERE project_id = ? AND person_id = ?",
                params![to.to_string(), project, from.to_string()],
            )?,
        };
    }
    Ok(())
}
