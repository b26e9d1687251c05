//! The read queries behind the read API. Each runs on a reader connection, which sees every
//! committed write.

use std::collections::{BTreeMap, HashMap};

use duckdb::types::Value;
use duckdb::{params, params_from_iter, Connection};
use troupe_store::{
    ChargeRow, EventQuery, EventRow, GroupProfile, GroupQuery, GroupRow, GroupSort, GroupTypeInfo, Page, PersonProfile,
    PersonQuery, PersonRow,
};

use crate::values::{from_micros, list_of_text, parse_json, text_list};

type Result<T> = duckdb::Result<T>;

/// Group type names by slot, for turning slot columns into named attribution.
type SlotNames = BTreeMap<u8, String>;

pub fn slot_names(conn: &Connection, project: u32) -> Result<SlotNames> {
    let mut stmt = conn.prepare_cached("SELECT slot, name FROM group_types WHERE project_id = ?")?;
    let rows = stmt.query_map([project], |r| Ok((r.get::<_, u8>(0)?, r.get::<_, String>(1)?)))?;
    rows.collect()
}

/// The type names in slot order.
pub fn group_type_names(conn: &Connection, project: u32) -> Result<Vec<String>> {
    Ok(slot_names(conn, project)?.into_values().collect())
}

fn slot_of(names: &SlotNames, group_type: &str) -> Option<u8> {
    names.iter().find(|(_, n)| n.as_str() == group_type).map(|(s, _)| *s)
}

pub fn group_types(conn: &Connection, project: u32) -> Result<Vec<GroupTypeInfo>> {
    let mut stmt = conn.prepare_cached(
        "SELECT t.slot, t.name, t.display_name,
                (SELECT count(*) FROM group_profiles g WHERE g.project_id = t.project_id AND g.slot = t.slot)
         FROM group_types t WHERE t.project_id = ? ORDER BY t.slot",
    )?;
    let rows = stmt.query_map([project], |r| {
        Ok(GroupTypeInfo {
            index: r.get(0)?,
            group_type: r.get(1)?,
            display_name: r.get(2)?,
            group_count: r.get::<_, i64>(3)?.max(0) as u64,
        })
    })?;
    rows.collect()
}

const GROUP_COLUMNS: &str = "group_key, name, properties, epoch_us(created_at), epoch_us(updated_at)";

fn group_row(group_type: &str, r: &duckdb::Row<'_>) -> Result<GroupRow> {
    Ok(GroupRow {
        group_type: group_type.to_string(),
        key: r.get(0)?,
        name: r.get(1)?,
        properties: parse_json(&r.get::<_, String>(2)?),
        created_at: from_micros(r.get(3)?),
        updated_at: from_micros(r.get(4)?),
    })
}

pub fn groups(conn: &Connection, project: u32, q: &GroupQuery) -> Result<Page<GroupRow>> {
    let names = slot_names(conn, project)?;
    let empty = Page { results: Vec::new(), total: 0, limit: q.limit, offset: q.offset };
    let Some(slot) = slot_of(&names, &q.group_type) else {
        return Ok(empty);
    };
    let mut filter = String::from("project_id = ? AND slot = ?");
    let mut args = vec![Value::UInt(project), Value::UTinyInt(slot)];
    if let Some(search) = q.search.as_deref().filter(|s| !s.trim().is_empty()) {
        filter.push_str(
            " AND (contains(lower(group_key), lower(?)) OR contains(lower(coalesce(name, '')), lower(?))
                   OR contains(lower(properties), lower(?)))",
        );
        args.extend(std::iter::repeat_n(Value::Text(search.trim().to_string()), 3));
    }
    let total: i64 = conn.query_row(
        &format!("SELECT count(*) FROM group_profiles WHERE {filter}"),
        params_from_iter(args.iter()),
        |r| r.get(0),
    )?;
    let order = match q.sort {
        GroupSort::UpdatedAt => "updated_at",
        GroupSort::CreatedAt => "created_at",
        GroupSort::Key => "group_key",
        GroupSort::Name => "lower(coalesce(name, group_key))",
    };
    let dir = if q.descending { "DESC" } else { "ASC" };
    let sql = format!(
        "SELECT {GROUP_COLUMNS} FROM group_profiles WHERE {filter}
         ORDER BY {order} {dir}, group_key {dir} LIMIT {} OFFSET {}",
        q.limit, q.offset
    );
    let mut stmt = conn.prepare(&sql)?;
    let results =
        stmt.query_map(params_from_iter(args.iter()), |r| group_row(&q.group_type, r))?.collect::<Result<_>>()?;
    Ok(Page { results, total: total.max(0) as u64, limit: q.limit, offset: q.offset })
}

pub fn group(
    conn: &Connection,
    project: u32,
    group_type: &str,
    key: &str,
    recent: usize,
    slots: usize,
) -> Result<Option<GroupProfile>> {
    let names = slot_names(conn, project)?;
    let Some(slot) = slot_of(&names, group_type) else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {GROUP_COLUMNS} FROM group_profiles WHERE project_id = ? AND slot = ? AND group_key = ?"
    ))?;
    let mut rows = stmt.query_map(params![project, slot, key], |r| group_row(group_type, r))?;
    let Some(group) = rows.next().transpose()? else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT person_id FROM memberships WHERE project_id = ? AND slot = ? AND list_contains(group_keys, ?)",
    )?;
    let member_ids =
        stmt.query_map(params![project, slot, key], |r| r.get::<_, String>(0))?.collect::<Result<Vec<_>>>()?;
    let members = person_rows(conn, project, &member_ids, &names)?;
    let query =
        EventQuery { limit: recent, group: Some((group_type.to_string(), key.to_string())), ..EventQuery::default() };
    let recent_events = events(conn, project, &query, slots)?;
    Ok(Some(GroupProfile { group, members, recent_events }))
}

const PERSON_COLUMNS: &str = "id, distinct_ids, properties, identified, epoch_us(created_at), epoch_us(updated_at)";

fn person_row(r: &duckdb::Row<'_>) -> Result<PersonRow> {
    Ok(PersonRow {
        id: r.get(0)?,
        distinct_ids: list_of_text(r.get::<_, Value>(1)?),
        properties: parse_json(&r.get::<_, String>(2)?),
        identified: r.get(3)?,
        group_memberships: BTreeMap::new(),
        pending_groups: Vec::new(),
        created_at: from_micros(r.get(4)?),
        updated_at: from_micros(r.get(5)?),
    })
}

/// Attach current memberships (by type name) to person rows.
fn with_memberships(
    conn: &Connection,
    project: u32,
    mut persons: Vec<PersonRow>,
    names: &SlotNames,
) -> Result<Vec<PersonRow>> {
    if persons.is_empty() {
        return Ok(persons);
    }
    let ids: Vec<String> = persons.iter().map(|p| p.id.clone()).collect();
    let mut stmt = conn.prepare_cached(
        "SELECT person_id, slot, group_keys FROM memberships
         WHERE project_id = ? AND person_id IN (SELECT unnest(?::VARCHAR[])) ORDER BY slot",
    )?;
    let mut by_person: HashMap<String, BTreeMap<String, Vec<String>>> = HashMap::new();
    let mut pending: HashMap<String, Vec<String>> = HashMap::new();
    let rows = stmt.query_map(params![project, text_list(&ids)], |r| {
        Ok((r.get::<_, String>(0)?, r.get::<_, u8>(1)?, list_of_text(r.get::<_, Value>(2)?)))
    })?;
    for row in rows {
        let (person, slot, keys) = row?;
        if slot == troupe_core::PENDING_SLOT {
            pending.insert(person, keys);
        } else if let Some(name) = names.get(&slot) {
            by_person.entry(person).or_default().insert(name.clone(), keys);
        }
    }
    for p in &mut persons {
        p.group_memberships = by_person.remove(&p.id).unwrap_or_default();
        p.pending_groups = pending.remove(&p.id).unwrap_or_default();
    }
    Ok(persons)
}

fn person_rows(conn: &Connection, project: u32, ids: &[String], names: &SlotNames) -> Result<Vec<PersonRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {PERSON_COLUMNS} FROM persons WHERE project_id = ? AND id IN (SELECT unnest(?::VARCHAR[]))
         ORDER BY created_at, id"
    ))?;
    let rows = stmt.query_map(params![project, text_list(ids)], person_row)?.collect::<Result<Vec<_>>>()?;
    with_memberships(conn, project, rows, names)
}

pub fn persons(conn: &Connection, project: u32, q: &PersonQuery) -> Result<Page<PersonRow>> {
    let names = slot_names(conn, project)?;
    let mut filter = String::from("project_id = ?");
    let mut args = vec![Value::UInt(project)];
    if let Some(search) = q.search.as_deref().filter(|s| !s.trim().is_empty()) {
        filter.push_str(
            " AND (contains(lower(array_to_string(distinct_ids, ' ')), lower(?)) OR contains(lower(properties), lower(?)))",
        );
        args.extend(std::iter::repeat_n(Value::Text(search.trim().to_string()), 2));
    }
    let total: i64 =
        conn.query_row(&format!("SELECT count(*) FROM persons WHERE {filter}"), params_from_iter(args.iter()), |r| {
            r.get(0)
        })?;
    let sql = format!(
        "SELECT {PERSON_COLUMNS} FROM persons WHERE {filter} ORDER BY updated_at DESC, id LIMIT {} OFFSET {}",
        q.limit, q.offset
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), person_row)?.collect::<Result<Vec<_>>>()?;
    let results = with_memberships(conn, project, rows, &names)?;
    Ok(Page { results, total: total.max(0) as u64, limit: q.limit, offset: q.offset })
}

/// The person id of `id`, which may be a distinct id or a person id.
fn resolve_person(conn: &Connection, project: u32, id: &str) -> Result<Option<String>> {
    let mut stmt = conn.prepare_cached(
        "SELECT person_id FROM person_distinct_ids WHERE project_id = ? AND distinct_id = ?
         UNION ALL SELECT id FROM persons WHERE project_id = ? AND id = ? LIMIT 1",
    )?;
    let mut rows = stmt.query_map(params![project, id, project, id], |r| r.get::<_, String>(0))?;
    rows.next().transpose()
}

pub fn person(conn: &Connection, project: u32, id: &str, recent: usize, slots: usize) -> Result<Option<PersonProfile>> {
    let names = slot_names(conn, project)?;
    let Some(person_id) = resolve_person(conn, project, id)? else {
        return Ok(None);
    };
    let Some(person) = person_rows(conn, project, std::slice::from_ref(&person_id), &names)?.pop() else {
        return Ok(None);
    };
    let mut stmt = conn.prepare_cached(
        "SELECT amount, properties, epoch_us(time) FROM charges WHERE project_id = ? AND person_id = ? ORDER BY time",
    )?;
    let charges = stmt
        .query_map(params![project, person_id], |r| {
            Ok(ChargeRow {
                amount: r.get(0)?,
                properties: parse_json(&r.get::<_, String>(1)?),
                time: from_micros(r.get(2)?),
            })
        })?
        .collect::<Result<Vec<_>>>()?;
    let query = EventQuery { limit: recent, person: Some(person_id), ..EventQuery::default() };
    let recent_events = events(conn, project, &query, slots)?;
    Ok(Some(PersonProfile { person, charges, recent_events }))
}

pub fn events(conn: &Connection, project: u32, q: &EventQuery, slots: usize) -> Result<Vec<EventRow>> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    let names = slot_names(conn, project)?;
    let mut filter = String::from("project_id = ?");
    let mut args = vec![Value::UInt(project)];
    if let Some(event) = &q.event {
        filter.push_str(" AND event = ?");
        args.push(Value::Text(event.clone()));
    }
    if let Some(person) = &q.person {
        let Some(person_id) = resolve_person(conn, project, person)? else {
            return Ok(Vec::new());
        };
        filter.push_str(
            " AND distinct_id IN (SELECT distinct_id FROM person_distinct_ids WHERE project_id = ? AND person_id = ?)",
        );
        args.extend([Value::UInt(project), Value::Text(person_id)]);
    }
    if let Some((group_type, key)) = &q.group {
        let Some(slot) = slot_of(&names, group_type) else {
            return Ok(Vec::new());
        };
        filter.push_str(&format!(" AND (list_contains(group_{slot}, ?) OR list_contains(groups_untyped, ?))"));
        args.extend([Value::Text(key.clone()), Value::Text(key.clone())]);
    }
    if let Some(before) = q.before {
        filter.push_str(" AND ts < ?");
        args.push(crate::values::ts(before));
    }
    let group_columns: String = (0..slots).map(|s| format!(", group_{s}")).collect();
    let sql = format!(
        "SELECT uuid, event, distinct_id, epoch_us(ts), epoch_us(received_at), properties, groups_untyped{group_columns}
         FROM events WHERE {filter} ORDER BY ts DESC, received_at DESC, rowid DESC LIMIT {}",
        q.limit
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map(params_from_iter(args.iter()), |r| {
        let mut groups = BTreeMap::new();
        for slot in 0..slots {
            let ids = list_of_text(r.get::<_, Value>(7 + slot)?);
            let name = u8::try_from(slot).ok().and_then(|s| names.get(&s));
            if let (false, Some(name)) = (ids.is_empty(), name) {
                groups.insert(name.clone(), ids);
            }
        }
        Ok(EventRow {
            uuid: r.get(0)?,
            event: r.get(1)?,
            distinct_id: r.get(2)?,
            timestamp: from_micros(r.get(3)?),
            received_at: from_micros(r.get(4)?),
            properties: parse_json(&r.get::<_, String>(5)?),
            untyped_groups: list_of_text(r.get::<_, Value>(6)?),
            groups,
        })
    })?;
    rows.collect()
}
