//! Writing one batch's changes inside the commit thread's transaction.
//!
//! Entities are written set-based: the rows of every touched entity are deleted with one
//! statement per table and the current state of those still present is appended. Events are
//! only ever appended.
//!
//! The rows are built on the rules thread ([`ProjectWrite::new`], from the state as the batch
//! left it) and written on the commit thread ([`ProjectWrite::write`]), so that building the
//! next batch overlaps with committing this one.

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use duckdb::arrow::array::{
    ArrayRef, ListBuilder, StringBuilder, TimestampMicrosecondBuilder, UInt32Array, UInt64Array, UInt64Builder,
};
use duckdb::arrow::datatypes::{Field, Schema};
use duckdb::arrow::error::ArrowError;
use duckdb::arrow::record_batch::RecordBatch;
use duckdb::types::Value;
use duckdb::{params, params_from_iter, Connection};
use troupe_core::dedupe::RetryRecord;
use troupe_core::{Anonymized, Changes, ChargeChange, ProjectState, Slot, StoredEvent, PENDING_SLOT};

use crate::values::{json, text_list, ts};

/// One table row, its values in column order.
type Row = Vec<Value>;

/// The rows one project's changes need from the state, built without it being read later. The
/// rest (cleared slots, charges) is written from the [`Changes`] themselves.
pub struct ProjectWrite {
    project: u32,
    events: Vec<RecordBatch>,
    /// The sequence number of the batch's last event (the columns' snapshot stamp), 0: none.
    pub last_seq: u64,
    /// Every touched person's id (its rows are replaced), then the rows of those still present.
    person_ids: Vec<String>,
    persons: Vec<Row>,
    memberships: Vec<Row>,
    /// Every touched distinct id with the person it now belongs to, if any.
    pub distinct_ids: Vec<(String, Option<String>)>,
    /// Touched groups by slot, then the rows of those still present.
    group_keys: BTreeMap<Slot, Vec<String>>,
    groups: Vec<Row>,
    /// Touched group types with their row, absent when the type was deleted.
    group_types: Vec<(Slot, Option<Row>)>,
}

impl ProjectWrite {
    /// The rows for `changes`, read from `state` as the batch left it; its events are numbered
    /// from `next_seq` on (which is moved past them).
    pub fn new(state: &ProjectState, changes: &Changes, next_seq: &mut u64) -> Result<Self, ArrowError> {
        let project = state.project_id;
        let first_seq = *next_seq;
        let events = event_batches(project, &changes.events, first_seq)?;
        *next_seq += changes.events.len() as u64;
        let mut write = ProjectWrite {
            project,
            events,
            last_seq: if changes.events.is_empty() { 0 } else { *next_seq - 1 },
            person_ids: changes.persons.iter().map(|id| id.to_string()).collect(),
            persons: Vec::new(),
            memberships: Vec::new(),
            distinct_ids: changes
                .distinct_ids
                .iter()
                .map(|id| (id.clone(), state.person_by_distinct_id(id).map(|p| p.id.to_string())))
                .collect(),
            group_keys: BTreeMap::new(),
            groups: Vec::new(),
            group_types: Vec::new(),
        };
        for person in changes.persons.iter().filter_map(|id| state.person(*id)) {
            let id = person.id.to_string();
            for (slot, keys) in &person.memberships {
                write.memberships.push(vec![
                    Value::UInt(project),
                    Value::Text(id.clone()),
                    Value::UTinyInt(*slot),
                    text_list(keys),
                    person.replaced_at.get(slot).map_or(Value::Null, |at| ts(*at)),
                ]);
            }
            if !person.pending_groups.is_empty() {
                write.memberships.push(vec![
                    Value::UInt(project),
                    Value::Text(id.clone()),
                    Value::UTinyInt(PENDING_SLOT),
                    text_list(&person.pending_groups),
                    Value::Null,
                ]);
            }
            write.persons.push(vec![
                Value::UInt(project),
                Value::Text(id),
                text_list(&person.distinct_ids),
                Value::Text(json(&person.properties)),
                Value::Boolean(person.identified),
                ts(person.created_at),
                ts(person.updated_at),
            ]);
        }
        for (slot, key) in &changes.groups {
            write.group_keys.entry(*slot).or_default().push(key.clone());
            if let Some(g) = state.group(*slot, key) {
                write.groups.push(vec![
                    Value::UInt(project),
                    Value::UTinyInt(g.slot),
                    Value::Text(g.key.clone()),
                    g.name.clone().map_or(Value::Null, Value::Text),
                    Value::Text(json(&g.properties)),
                    ts(g.created_at),
                    ts(g.updated_at),
                ]);
            }
        }
        for slot in &changes.group_types {
            let row = state.group_types().by_slot(*slot).map(|t| {
                vec![
                    Value::UInt(project),
                    Value::UTinyInt(t.slot),
                    Value::Text(t.name.clone()),
                    Value::Text(t.display_name.clone()),
                ]
            });
            write.group_types.push((*slot, row));
        }
        Ok(write)
    }

    /// Write `changes` (the ones these rows were built from) inside the caller's transaction.
    pub fn write(&self, conn: &Connection, changes: &Changes) -> duckdb::Result<()> {
        let project = self.project;
        // Clearing comes first: it concerns events committed before; this batch's events already
        // had the slot removed by the state.
        for slot in &changes.cleared_slots {
            conn.execute(&format!("UPDATE events SET group_{slot} = NULL WHERE project_id = ?"), [project])?;
        }
        if !changes.erased_distinct_ids.is_empty() {
            let ids: Vec<String> = changes.erased_distinct_ids.iter().cloned().collect();
            delete_keys(conn, "events", "distinct_id", project, &ids)?;
        }
        for anonymized in &changes.anonymized {
            anonymize_events(conn, project, anonymized)?;
        }
        if let Some(before) = changes.expired_before {
            conn.execute("DELETE FROM events WHERE project_id = ? AND ts < ?", params![project, ts(before)])?;
        }
        for (slot, key) in &changes.erased_group_events {
            conn.execute(
                &format!("DELETE FROM events WHERE project_id = ? AND list_contains(group_{slot}, ?)"),
                params![project, key],
            )?;
        }
        for (slot, key) in &changes.detached_groups {
            let column = format!("group_{slot}");
            conn.execute(
                &format!(
                    "UPDATE events SET {column} = CASE WHEN len(list_filter({column}, lambda x: x != ?)) = 0 THEN NULL \
                     ELSE list_filter({column}, lambda x: x != ?) END WHERE project_id = ? AND list_contains({column}, ?)"
                ),
                params![key, key, project, key],
            )?;
        }
        if changes.changes_stored_events() {
            // The project's columns' snapshot is out of step from this commit on.
            conn.execute("INSERT INTO event_rewrites (project_id) VALUES (?)", [project])?;
        }
        append_batches(conn, "events", &self.events)?;
        self.persons(conn)?;
        self.distinct_ids(conn)?;
        self.groups(conn)?;
        self.group_types(conn)?;
        charges(conn, project, &changes.charges)?;
        kept_out(conn, project, &changes.kept_out)?;
        retry_keys(conn, project, &changes.retry_keys)
    }

    fn persons(&self, conn: &Connection) -> duckdb::Result<()> {
        if self.person_ids.is_empty() {
            return Ok(());
        }
        delete_keys(conn, "persons", "id", self.project, &self.person_ids)?;
        delete_keys(conn, "memberships", "person_id", self.project, &self.person_ids)?;
        append_rows(conn, "persons", &self.persons)?;
        append_rows(conn, "memberships", &self.memberships)
    }

    fn distinct_ids(&self, conn: &Connection) -> duckdb::Result<()> {
        if self.distinct_ids.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = self.distinct_ids.iter().map(|(id, _)| id.clone()).collect();
        delete_keys(conn, "person_distinct_ids", "distinct_id", self.project, &ids)?;
        let mut appender = conn.appender("person_distinct_ids")?;
        for (distinct_id, person) in &self.distinct_ids {
            if let Some(person) = person {
                appender.append_row(params![self.project, distinct_id, person])?;
            }
        }
        appender.flush()
    }

    fn groups(&self, conn: &Connection) -> duckdb::Result<()> {
        for (slot, keys) in &self.group_keys {
            conn.execute(
                "DELETE FROM group_profiles WHERE project_id = ? AND slot = ? AND group_key IN (SELECT unnest(?::VARCHAR[]))",
                params![self.project, slot, text_list(keys)],
            )?;
        }
        append_rows(conn, "group_profiles", &self.groups)
    }

    fn group_types(&self, conn: &Connection) -> duckdb::Result<()> {
        for (slot, row) in &self.group_types {
            conn.execute("DELETE FROM group_types WHERE project_id = ? AND slot = ?", params![self.project, slot])?;
            if let Some(row) = row {
                conn.execute("INSERT INTO group_types VALUES (?, ?, ?, ?)", params_from_iter(row))?;
            }
        }
        Ok(())
    }
}

/// Append record batches of one schema to `table`, naming their columns (the table's others
/// default to NULL).
fn append_batches(conn: &Connection, table: &str, batches: &[RecordBatch]) -> duckdb::Result<()> {
    let Some(first) = batches.first() else { return Ok(()) };
    let mut appender = conn.appender(table)?;
    for field in first.schema().fields() {
        appender.add_column(field.name())?;
    }
    for batch in batches {
        appender.append_record_batch(batch.clone())?;
    }
    appender.flush()
}

fn append_rows(conn: &Connection, table: &str, rows: &[Row]) -> duckdb::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut appender = conn.appender(table)?;
    for row in rows {
        appender.append_row(duckdb::appender_params_from_iter(row))?;
    }
    appender.flush()
}

/// Rows per Arrow record batch of events: DuckDB's vector size. The appender converts a longer
/// batch a vector at a time, and for a list column (the group columns) each of those
/// conversions copies the child strings of the *whole* batch (duckdb 1.20000.1,
/// `list_like_array_to_vector` ignores the slice), so longer batches cost quadratic time.
const EVENTS_PER_RECORD_BATCH: usize = 2048;

/// Events as Arrow record batches with the names and types of the `events` table's columns:
/// appended by columns, DuckDB copies each column once instead of binding a value per cell.
/// Group columns no event has an id in are left out (they default to NULL), so the unused
/// slots of a project cost nothing; every batch has the same columns.
fn event_batches(project: u32, events: &[StoredEvent], first_seq: u64) -> Result<Vec<RecordBatch>, ArrowError> {
    let used_slots: Vec<Slot> =
        events.iter().flat_map(|e| e.groups.keys().copied()).collect::<BTreeSet<Slot>>().into_iter().collect();
    let untyped_used = events.iter().any(|e| !e.untyped_groups.is_empty());
    events
        .chunks(EVENTS_PER_RECORD_BATCH)
        .enumerate()
        .map(|(i, chunk)| {
            let seq = first_seq + (i * EVENTS_PER_RECORD_BATCH) as u64;
            event_batch(project, chunk, seq, &used_slots, untyped_used)
        })
        .collect()
}

fn event_batch(
    project: u32,
    events: &[StoredEvent],
    first_seq: u64,
    used_slots: &[Slot],
    untyped_used: bool,
) -> Result<RecordBatch, ArrowError> {
    let rows = events.len();
    let text_bytes = |f: fn(&StoredEvent) -> &str| events.iter().map(|e| f(e).len()).sum::<usize>();
    let mut uuid = StringBuilder::with_capacity(rows, text_bytes(|e| &e.uuid));
    let mut dedup_key = UInt64Builder::with_capacity(rows);
    let mut event = StringBuilder::with_capacity(rows, text_bytes(|e| &e.event));
    let mut distinct_id = StringBuilder::with_capacity(rows, text_bytes(|e| &e.distinct_id));
    let mut ts = TimestampMicrosecondBuilder::with_capacity(rows);
    let mut received_at = TimestampMicrosecondBuilder::with_capacity(rows);
    let mut properties = StringBuilder::with_capacity(rows, text_bytes(|e| &e.properties_json));
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
        ("seq".into(), Arc::new(UInt64Array::from_iter_values(first_seq..first_seq + rows as u64))),
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
fn delete_keys(conn: &Connection, table: &str, column: &str, project: u32, keys: &[String]) -> duckdb::Result<()> {
    let sql = format!("DELETE FROM {table} WHERE project_id = ? AND {column} IN (SELECT unnest(?::VARCHAR[]))");
    conn.execute(&sql, params![project, text_list(keys)])?;
    Ok(())
}

/// Give the stored events of an anonymized person's former ids its pseudonym, without the
/// personal fields: the changed properties go through a temporary table, so the update is one
/// join instead of a scan per event.
fn anonymize_events(conn: &Connection, project: u32, anonymized: &Anonymized) -> duckdb::Result<()> {
    if anonymized.former_ids.is_empty() {
        return Ok(());
    }
    let ids = text_list(&anonymized.former_ids);
    let mut select = conn.prepare(
        "SELECT uuid, properties FROM events WHERE project_id = ? AND distinct_id IN (SELECT unnest(?::VARCHAR[]))",
    )?;
    let rows =
        select.query_map(params![project, ids.clone()], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut scrubbed = Vec::new();
    for row in rows {
        let (uuid, properties) = row?;
        if let Some(properties) = anonymized.scrub_properties(&properties) {
            scrubbed.push((uuid, properties));
        }
    }
    conn.execute_batch("CREATE TEMP TABLE IF NOT EXISTS scrubbed_properties (uuid VARCHAR, properties VARCHAR); DELETE FROM scrubbed_properties")?;
    {
        let mut appender = conn.appender("scrubbed_properties")?;
        for (uuid, properties) in &scrubbed {
            appender.append_row(params![uuid, properties])?;
        }
        appender.flush()?;
    }
    conn.execute(
        "UPDATE events SET properties = s.properties FROM scrubbed_properties s \
         WHERE events.project_id = ? AND events.uuid = s.uuid AND events.distinct_id IN (SELECT unnest(?::VARCHAR[]))",
        params![project, ids.clone()],
    )?;
    conn.execute(
        "UPDATE events SET distinct_id = ? WHERE project_id = ? AND distinct_id IN (SELECT unnest(?::VARCHAR[]))",
        params![anonymized.pseudonym, project, ids],
    )?;
    conn.execute_batch("DELETE FROM scrubbed_properties")
}

fn kept_out(conn: &Connection, project: u32, keys: &[u64]) -> duckdb::Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    let mut appender = conn.appender("kept_out")?;
    for key in keys {
        appender.append_row(params![project, key])?;
    }
    appender.flush()
}

fn retry_keys(conn: &Connection, project: u32, records: &[RetryRecord]) -> duckdb::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    let mut appender = conn.appender("retry_keys")?;
    for r in records {
        appender.append_row(params![project, r.key, ts(r.seen_at), r.forever])?;
    }
    appender.flush()
}

/// Forget content keys that left the retry window (ids stay: a resend is dropped whenever).
pub fn prune_retry_keys(conn: &Connection, older_than: chrono::DateTime<chrono::Utc>) -> duckdb::Result<usize> {
    conn.execute("DELETE FROM retry_keys WHERE NOT forever AND seen_at < ?", params![ts(older_than)])
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
