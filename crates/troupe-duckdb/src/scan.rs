//! The insight scan: events of a time range with their person resolved through
//! `person_distinct_ids` (so merges count the merged person) and their group ids per requested
//! type, dictionary-encoded for the query layer.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;

use duckdb::arrow::array::{Array, AsArray, LargeStringArray, ListArray, StringArray, StringViewArray};
use duckdb::arrow::datatypes::{DataType, Int64Type};
use duckdb::types::Value;
use duckdb::{params_from_iter, Connection};
use troupe_store::{Actor, Dictionary, EventScan, GroupColumnBuilder, ScanRequest};

use crate::columns::{read, EventCache, ProjectColumns, SnapshotStamp};
use crate::read::slot_names;
use crate::values::{from_micros, list_of_text, parse_json, ts};

type Result<T> = duckdb::Result<T>;

/// A scan from the project's in-memory columns ([`crate::columns`]), or from the database when
/// it reads event properties (which the columns do not keep).
pub fn scan(
    conn: &Connection,
    project: u32,
    req: &ScanRequest,
    cache: &Arc<EventCache>,
    group_slots: usize,
) -> Result<EventScan> {
    let slots = slot_names(conn, project)?;
    let mut builders = Vec::new();
    for group_type in &req.group_types {
        let slot = slots.iter().find(|(_, name)| *name == group_type).map(|(s, _)| *s);
        builders.push(group_builder(conn, project, group_type, slot, req.group_details)?);
    }
    if req.events.as_ref().is_some_and(|e| e.is_empty()) {
        let groups = builders.into_iter().map(GroupColumnBuilder::finish).collect();
        return Ok(EventScan { groups, ..EventScan::default() });
    }
    if req.event_properties {
        return scan_database(conn, project, req, builders);
    }
    let columns = columns(conn, project, cache, group_slots)?;
    let started = std::time::Instant::now();
    let (mut out, person_keys) = read(&columns).scan(req, &mut builders);
    tracing::debug!(ms = started.elapsed().as_secs_f64() * 1e3, "columns scanned");
    out.persons = person_actors(conn, project, person_keys, req.person_details)?;
    out.groups = builders.into_iter().map(GroupColumnBuilder::finish).collect();
    Ok(out)
}

/// The project's columns, loaded the first time: from their snapshot and the events after it,
/// or from every event.
pub fn columns(
    conn: &Connection,
    project: u32,
    cache: &Arc<EventCache>,
    group_slots: usize,
) -> Result<Arc<std::sync::RwLock<ProjectColumns>>> {
    cache.get_or_load(project, || {
        let generation = crate::schema::rewrite_generation(conn, project)?;
        let snapshot = cache.read_snapshot(project, generation);
        conn.execute_batch(&format!("SET memory_limit = '{}'", crate::DUCKDB_LOAD_MEMORY_LIMIT))?;
        let loaded = load_columns(conn, project, group_slots, generation, snapshot);
        conn.execute_batch(&format!("SET memory_limit = '{}'", crate::DUCKDB_MEMORY_LIMIT))?;
        loaded
    })
}

/// The project's events into columns, with each distinct id's person: those after `snapshot`
/// (the columns saved at the project's rewrite `generation`) or, without one, every event.
pub fn load_columns(
    conn: &Connection,
    project: u32,
    group_slots: usize,
    generation: u64,
    snapshot: Option<ProjectColumns>,
) -> Result<ProjectColumns> {
    let after = snapshot.as_ref().map(|columns| columns.stamp().last_seq);
    let mut columns = snapshot.unwrap_or_default();
    // Events stored before they were numbered have no number: a snapshot holds them all.
    let (filter, args) = match after {
        Some(seq) => ("project_id = ? AND seq > ?", vec![Value::UInt(project), Value::UBigInt(seq)]),
        None => ("project_id = ?", vec![Value::UInt(project)]),
    };
    let events: i64 =
        conn.query_row(&format!("SELECT count(*) FROM events WHERE {filter}"), params_from_iter(&args), |r| r.get(0))?;
    columns.reserve(usize::try_from(events).unwrap_or(0));
    let mut last_seq = after.unwrap_or(0);
    let group_columns: String = (0..group_slots).map(|s| format!(", group_{s}")).collect();
    let sql = format!(
        "SELECT epoch_us(ts), event, distinct_id, coalesce(seq, 0)::BIGINT, groups_untyped{group_columns} \
         FROM events WHERE {filter}"
    );
    let mut stmt = conn.prepare(&sql)?;
    for batch in stmt.stream_arrow(params_from_iter(&args))? {
        let batch = batch?;
        let column = |i: usize| batch.column(i).as_ref();
        let stamps = column(0).as_primitive_opt::<Int64Type>().ok_or_else(|| unexpected("timestamps"))?;
        let names = Texts::of(column(1))?;
        let distinct_ids = Texts::of(column(2))?;
        let seqs = column(3).as_primitive_opt::<Int64Type>().ok_or_else(|| unexpected("sequence numbers"))?;
        let untyped = Lists::of(column(4))?;
        let group_lists: Vec<Lists<'_>> = (0..group_slots).map(|s| Lists::of(column(5 + s))).collect::<Result<_>>()?;
        for row in 0..batch.num_rows() {
            let event = columns.push_event(
                stamps.value(row),
                names.get(row).unwrap_or_default(),
                distinct_ids.get(row).unwrap_or_default(),
            );
            columns.push_untyped(event, untyped.row(row));
            for (slot, lists) in group_lists.iter().enumerate() {
                columns.push_slot(event, slot, lists.row(row));
            }
        }
        last_seq = last_seq.max(seqs.values().iter().copied().max().unwrap_or(0) as u64);
    }
    columns.set_stamp(SnapshotStamp { project, generation, last_seq });
    let mut stmt = conn.prepare("SELECT distinct_id, person_id FROM person_distinct_ids WHERE project_id = ?")?;
    let mut rows = stmt.query([project])?;
    while let Some(r) = rows.next()? {
        let (distinct_id, person): (String, String) = (r.get(0)?, r.get(1)?);
        columns.set_person(&distinct_id, Some(&person));
    }
    Ok(columns)
}

/// The scan read from the events table: for questions that read event properties.
fn scan_database(
    conn: &Connection,
    project: u32,
    req: &ScanRequest,
    mut builders: Vec<GroupColumnBuilder>,
) -> Result<EventScan> {
    let mut out = EventScan::default();

    let mut filter = String::from("e.project_id = ?");
    let mut args = vec![Value::UInt(project)];
    if let Some(from) = req.from {
        filter.push_str(" AND e.ts >= ?");
        args.push(ts(from));
    }
    if let Some(to) = req.to {
        filter.push_str(" AND e.ts < ?");
        args.push(ts(to));
    }
    if let Some(events) = &req.events {
        filter.push_str(&format!(" AND e.event IN ({})", vec!["?"; events.len()].join(", ")));
        args.extend(events.iter().map(|e| Value::Text(e.clone())));
    }
    // The person join only when someone needs persons: most group questions do not.
    let (person, join) = if req.persons {
        (
            "coalesce(p.person_id, e.distinct_id)",
            "LEFT JOIN person_distinct_ids p ON p.project_id = e.project_id AND p.distinct_id = e.distinct_id",
        )
    } else {
        ("NULL::VARCHAR", "")
    };
    let properties = if req.event_properties { "e.properties" } else { "NULL::VARCHAR" };
    let group_columns: String =
        builders.iter().map(|b| b.slot.map_or(", NULL::VARCHAR[]".to_string(), |s| format!(", e.group_{s}"))).collect();
    // No ORDER BY: the query layer orders what needs ordering (one actor's events), which is
    // far cheaper than sorting the whole scan.
    let sql = format!(
        "SELECT epoch_us(e.ts), e.event, {person}, {properties}, e.groups_untyped{group_columns}
         FROM events e {join} WHERE {filter}"
    );
    let mut names = Dictionary::default();
    let mut persons = Dictionary::default();
    let mut stmt = conn.prepare(&sql)?;
    for batch in stmt.stream_arrow(params_from_iter(args.iter()))? {
        let batch = batch?;
        let column = |i: usize| batch.column(i).as_ref();
        let stamps = column(0).as_primitive_opt::<Int64Type>().ok_or_else(|| unexpected("timestamps"))?;
        let event_names = Texts::of(column(1))?;
        let person_ids = Texts::of(column(2))?;
        let props = Texts::of(column(3))?;
        let untyped = Lists::of(column(4))?;
        let group_lists: Vec<Lists<'_>> =
            (0..builders.len()).map(|i| Lists::of(column(5 + i))).collect::<Result<_>>()?;
        for row in 0..batch.num_rows() {
            out.ts.push(stamps.value(row));
            out.name.push(names.intern_str(event_names.get(row).unwrap_or_default()));
            if req.persons {
                out.person.push(persons.intern_str(person_ids.get(row).unwrap_or_default()));
            }
            if req.event_properties {
                out.properties.push(parse_json(props.get(row).unwrap_or("{}")));
            }
            for (b, lists) in builders.iter_mut().zip(&group_lists) {
                b.push_event(lists.row(row), untyped.row(row));
            }
        }
    }
    out.names = names.keys;
    out.persons = person_actors(conn, project, persons.keys, req.person_details)?;
    out.groups = builders.into_iter().map(GroupColumnBuilder::finish).collect();
    Ok(out)
}

fn unexpected(what: &str) -> duckdb::Error {
    duckdb::Error::InvalidParameterName(format!("the scan returned {what} in an unexpected Arrow type"))
}

/// A text column of an Arrow batch, whichever string layout DuckDB chose.
enum Texts<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
    Null,
}

impl<'a> Texts<'a> {
    fn of(array: &'a dyn Array) -> Result<Self> {
        if array.data_type() == &DataType::Null {
            return Ok(Texts::Null);
        }
        if let Some(a) = array.as_string_opt::<i32>() {
            return Ok(Texts::Utf8(a));
        }
        if let Some(a) = array.as_string_opt::<i64>() {
            return Ok(Texts::Large(a));
        }
        array.as_string_view_opt().map(Texts::View).ok_or_else(|| unexpected("text"))
    }

    fn get(&self, row: usize) -> Option<&'a str> {
        match self {
            Texts::Utf8(a) => (!a.is_null(row)).then(|| a.value(row)),
            Texts::Large(a) => (!a.is_null(row)).then(|| a.value(row)),
            Texts::View(a) => (!a.is_null(row)).then(|| a.value(row)),
            Texts::Null => None,
        }
    }
}

/// A list-of-text column (group ids).
struct Lists<'a> {
    list: Option<&'a ListArray>,
    values: Texts<'a>,
}

impl<'a> Lists<'a> {
    fn of(array: &'a dyn Array) -> Result<Self> {
        if array.data_type() == &DataType::Null {
            return Ok(Lists { list: None, values: Texts::Null });
        }
        let list = array.as_list_opt::<i32>().ok_or_else(|| unexpected("a list"))?;
        Ok(Lists { list: Some(list), values: Texts::of(list.values().as_ref())? })
    }

    fn row(&self, row: usize) -> impl Iterator<Item = &'a str> + '_ {
        let range = match self.list {
            Some(list) if !list.is_null(row) => {
                let offsets = list.value_offsets();
                offsets[row] as usize..offsets[row + 1] as usize
            }
            _ => 0..0,
        };
        range.filter_map(|i| self.values.get(i))
    }
}

/// Every group of the type with its profile; ids seen only on events are added while scanning.
/// Their properties only with `details` (parsing every group's JSON was ~3% of a funnel by
/// companies that never reads it).
fn group_builder(
    conn: &Connection,
    project: u32,
    group_type: &str,
    slot: Option<u8>,
    details: bool,
) -> Result<GroupColumnBuilder> {
    let mut builder = GroupColumnBuilder::new(group_type, slot);
    if let Some(slot) = slot {
        let properties = if details { "properties" } else { "NULL::VARCHAR" };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT group_key, name, {properties}, epoch_us(created_at) FROM group_profiles
             WHERE project_id = ? AND slot = ? ORDER BY group_key"
        ))?;
        let mut rows = stmt.query(duckdb::params![project, slot])?;
        while let Some(r) = rows.next()? {
            let key: String = r.get(0)?;
            let properties = r.get::<_, Option<String>>(2)?.map(|p| parse_json(&p)).unwrap_or_default();
            builder.add_profile(Actor {
                key,
                distinct_ids: Vec::new(),
                name: r.get(1)?,
                properties,
                created_at: Some(from_micros(r.get(3)?)),
            });
        }
    }
    Ok(builder)
}

fn person_actors(conn: &Connection, project: u32, keys: Vec<String>, details: bool) -> Result<Vec<Actor>> {
    let mut actors: Vec<Actor> = keys.into_iter().map(|key| Actor { key, ..Actor::default() }).collect();
    if !details || actors.is_empty() {
        return Ok(actors);
    }
    let position: HashMap<String, usize> = actors.iter().enumerate().map(|(i, a)| (a.key.clone(), i)).collect();
    let mut stmt = conn.prepare_cached(
        "SELECT id, distinct_ids, properties, epoch_us(created_at) FROM persons WHERE project_id = ?",
    )?;
    let mut rows = stmt.query([project])?;
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        if let Some(&i) = position.get(&id) {
            let actor = &mut actors[i];
            actor.distinct_ids = list_of_text(r.get::<_, Value>(1)?);
            actor.properties = parse_json(&r.get::<_, String>(2)?);
            actor.created_at = Some(from_micros(r.get(3)?));
        }
    }
    Ok(actors)
}
