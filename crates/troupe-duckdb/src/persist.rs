//! Writing one batch's changes inside the writer's transaction.
//!
//! Entities are written set-based: the rows of every touched entity are deleted with one
//! statement per table and the current state of those still present is appended. Events are
//! only ever appended.

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayRef, ListBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt32Array, UInt64Builder,
};
use duckdb::arrow::datatypes::{Field, Schema};
use duckdb::arrow::error::ArrowError;
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::{params, Connection};
use troupe_core::{Changes, ChargeChange, ProjectState, Slot, StoredEvent};

use crate::values::{json, text_list, ts};

pub fn changes(conn: &Connection, state: &ProjectState, changes: &Changes) -> duckdb::Result<()> {
    let project = state.project_id;
    // Clearing comes first: it concerns events committed before; this batch's events already
    // had the slot removed by the state.
    for slot in &changes.cleared_slots {
        conn.execute(&format!("UPDATE events SET group_{slot} = NULL WHERE project_id = ?"), [project])?;
    }
    events(conn, project, changes)?;
    persons(conn, state, changes)?;
    distinct_ids(conn, state, changes)?;
    groups(conn, state, changes)?;
    group_types(conn, state, changes)?;
    charges(conn, project, &changes.charges)
}

fn events(conn: &Connection, project: u32, changes: &Changes) -> duckdb::Result<()> {
    if changes.events.is_empty() {
        return Ok(());
    }
    let batch =
        event_batch(project, &changes.events).map_err(|e| duckdb::Error::ToSqlConversionFailure(Box::new(e)))?;
    let mut appender = conn.appender("events")?;
    for field in batch.schema().fields() {
        appender.add_column(field.name())?;
    }
    appender.append_record_batch(batch)?;
    appender.flush()
}

/// Events as one Arrow record batch with the names and types of the `events` table's columns:
/// appended by columns, DuckDB copies each column once instead of binding a value per cell.
/// Group columns no event of the batch has an id in are left out (they default to NULL), so
/// the unused slots of a project cost nothing.
fn event_batch(project: u32, events: &[StoredEvent]) -> Result<RecordBatch, ArrowError> {
    let rows = events.len();
    let text_bytes = |f: fn(&StoredEvent) -> &str| events.iter().map(|e| f(e).len()).sum::<usize>();
    let mut uuid = StringBuilder::with_capacity(rows, text_bytes(|e| &e.uuid));
    let mut dedup_key = UInt64Builder::with_capacity(rows);
    let mut event = StringBuilder::with_capacity(rows, text_bytes(|e| &e.event));
    let mut distinct_id = StringBuilder::with_capacity(rows, text_bytes(|e| &e.distinct_id));
    let mut ts = TimestampMicrosecondBuilder::with_capacity(rows);
    let mut received_at = TimestampMicrosecondBuilder::with_capacity(rows);
    let mut properties = StringBuilder::with_capacity(rows, text_bytes(|e| &e.properties_json));
    let used_slots: BTreeSet<Slot> = events.iter().flat_map(|e| e.groups.keys().copied()).collect();
    let untyped_used = events.iter().any(|e| !e.untyped_groups.is_empty());
    let mut untyped = ListBuilder::new(StringBuilder::new());
    let mut slots: Vec<(Slot, ListBuilder<StringBuilder>)> =
        used_slots.iter().map(|slot| (*slot, ListBuilder::new(StringBuilder::new()))).collect();
    for e in events {
        uuid.append_value(&e.uuid);
        dedup_key.append_option(e.dedup_key);
        event.append_value(&e.event);
        distinct_id.append_value(&e.distinct_id);
        ts.append_value(e.timestamp.timestamp_micros());
        received_at.append_value(e.received_at.timestamp_micros());
        properties.append_value(&e.properties_json);
        if untyped_used {
            append_list_or_null(&mut untyped, &e.untyped_groups);
        }
        for (slot, column) in &mut slots {
            append_list_or_null(column, e.groups.get(slot).map(Vec::as_slice).unwrap_or_default());
        }
    }
    let mut columns: Vec<(String, ArrayRef)> = vec![
        ("project_id".into(), Arc::new(UInt32Array::from(vec![project; rows]))),
        ("uuid".into(), Arc::new(uuid.finish())),
        ("dedup_key".into(), Arc::new(dedup_key.finish())),
        ("event".into(), Arc::new(event.finish())),
        ("distinct_id".into(), Arc::new(distinct_id.finish())),
        ("ts".into(), Arc::new(ts.finish())),
        ("received_at".into(), Arc::new(received_at.finish())),
        ("properties".into(), Arc::new(properties.finish())),
    ];
    if untyped_used {
        columns.push(("groups_untyped".into(), Arc::new(untyped.finish())));
    }
    columns.extend(slots.iter_mut().map(|(slot, b)| (format!("group_{slot}"), Arc::new(b.finish()) as ArrayRef)));
    let fields = columns.iter().map(|(name, column)| Field::new(name, column.data_type().clone(), true));
    let schema = Arc::new(Schema::new(fields.collect::<Vec<_>>()));
    RecordBatch::try_new(schema, columns.into_iter().map(|(_, column)| column).collect())
}

/// A list cell, NULL when empty (most events have no id of most types).
fn append_list_or_null(list: &mut ListBuilder<StringBuilder>, items: &[String]) {
    if items.is_empty() {
        list.append_null();
    } else {
        for item in items {
            list.values().append_value(item);
        }
        list.append(true);
    }
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
