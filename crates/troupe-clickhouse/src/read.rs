//! The read queries behind the read API, on the latest row versions.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use serde_json::{Map, Value};
use troupe_store::{
    ChargeRow, EventQuery, EventRow, GroupProfile, GroupQuery, GroupRow, GroupSort, GroupTypeInfo, Page, PersonProfile,
    PersonQuery, PersonRow,
};

use crate::http::{quote, Http};
use crate::load::{self, from_micros, parse_json, person_columns, StoredGroup, StoredPerson};
use crate::rows::{GROUP_VALUES, PERSON_VALUES};
use crate::schema::latest;
use crate::ClickHouseError;

type Result<T> = std::result::Result<T, ClickHouseError>;

/// Group type names by slot.
pub type SlotNames = BTreeMap<u8, String>;

pub async fn slot_names(http: &Http, project: u32) -> Result<SlotNames> {
    Ok(load::group_types(http, project).await?.into_iter().map(|t| (t.slot, t.name)).collect())
}

pub fn slot_of(names: &SlotNames, group_type: &str) -> Option<u8> {
    names.iter().find(|(_, n)| n.as_str() == group_type).map(|(s, _)| *s)
}

#[derive(Deserialize)]
struct Count {
    n: u64,
}

async fn count(http: &Http, from: &str, filter: &str) -> Result<u64> {
    let rows: Vec<Count> = http.rows(&format!("SELECT count() AS n FROM {from} WHERE {filter}")).await?;
    Ok(rows.first().map_or(0, |r| r.n))
}

/// `haystack` contains `needle`, ignoring case.
fn contains(haystack: &str, needle: &str) -> String {
    format!("position(lowerUTF8({haystack}), lowerUTF8({})) > 0", quote(needle))
}

pub async fn group_types(http: &Http, project: u32) -> Result<Vec<GroupTypeInfo>> {
    #[derive(Deserialize)]
    struct PerSlot {
        slot: u8,
        n: u64,
    }
    let types = load::group_types(http, project).await?;
    let groups = latest("group_profiles", project, &["slot", "group_key"], &["name"], "");
    let counts: Vec<PerSlot> = http.rows(&format!("SELECT slot, count() AS n FROM {groups} GROUP BY slot")).await?;
    let counts: HashMap<u8, u64> = counts.into_iter().map(|c| (c.slot, c.n)).collect();
    Ok(types
        .into_iter()
        .map(|t| GroupTypeInfo {
            index: t.slot,
            group_count: counts.get(&t.slot).copied().unwrap_or(0),
            group_type: t.name,
            display_name: t.display_name,
        })
        .collect())
}

fn group_row(group_type: &str, g: StoredGroup) -> GroupRow {
    GroupRow {
        group_type: group_type.to_string(),
        key: g.group_key,
        name: g.name,
        properties: parse_json(&g.properties),
        created_at: from_micros(g.created_at),
        updated_at: from_micros(g.updated_at),
    }
}

const GROUP_SELECT: &str = "SELECT slot, group_key, name, properties, created_at, updated_at";

pub async fn groups(http: &Http, project: u32, q: &GroupQuery) -> Result<Page<GroupRow>> {
    let names = slot_names(http, project).await?;
    let empty = Page { results: Vec::new(), total: 0, limit: q.limit, offset: q.offset };
    let Some(slot) = slot_of(&names, &q.group_type) else {
        return Ok(empty);
    };
    let current = latest("group_profiles", project, &["slot", "group_key"], GROUP_VALUES, &format!("slot = {slot}"));
    let mut filter = format!("slot = {slot}");
    if let Some(search) = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        filter.push_str(&format!(
            " AND ({} OR {} OR {})",
            contains("group_key", search),
            contains("ifNull(name, '')", search),
            contains("properties", search)
        ));
    }
    let total = count(http, &current, &filter).await?;
    let order = match q.sort {
        GroupSort::UpdatedAt => "updated_at",
        GroupSort::CreatedAt => "created_at",
        GroupSort::Key => "group_key",
        GroupSort::Name => "lowerUTF8(ifNull(name, group_key))",
    };
    let dir = if q.descending { "DESC" } else { "ASC" };
    let sql = format!(
        "{GROUP_SELECT} FROM {current} WHERE {filter} ORDER BY {order} {dir}, group_key {dir} LIMIT {} OFFSET {}",
        q.limit, q.offset
    );
    let rows: Vec<StoredGroup> = http.rows(&sql).await?;
    let results = rows.into_iter().map(|g| group_row(&q.group_type, g)).collect();
    Ok(Page { results, total, limit: q.limit, offset: q.offset })
}

pub async fn group(
    http: &Http,
    project: u32,
    group_type: &str,
    key: &str,
    recent: usize,
    slots: usize,
) -> Result<Option<GroupProfile>> {
    let names = slot_names(http, project).await?;
    let Some(slot) = slot_of(&names, group_type) else {
        return Ok(None);
    };
    let filter = format!("slot = {slot} AND group_key = {}", quote(key));
    let current = latest("group_profiles", project, &["slot", "group_key"], GROUP_VALUES, &filter);
    let rows: Vec<StoredGroup> = http.rows(&format!("{GROUP_SELECT} FROM {current}")).await?;
    let Some(group) = rows.into_iter().next().map(|g| group_row(group_type, g)) else {
        return Ok(None);
    };
    let member_filter = format!("has(membership_keys[indexOf(membership_slots, {slot})], {})", quote(key));
    let members = person_rows(http, project, &member_filter, "created_at, id", &names).await?;
    let query =
        EventQuery { limit: recent, group: Some((group_type.to_string(), key.to_string())), ..EventQuery::default() };
    let recent_events = events_of(http, project, &query, None, slots, &names).await?;
    Ok(Some(GroupProfile { group, members, recent_events }))
}

fn person_row(p: StoredPerson, names: &SlotNames) -> PersonRow {
    let group_memberships = p
        .membership_slots
        .iter()
        .zip(&p.membership_keys)
        .filter_map(|(slot, keys)| Some((names.get(slot)?.clone(), keys.clone())))
        .collect();
    let pending_groups = p
        .membership_slots
        .iter()
        .zip(&p.membership_keys)
        .find(|(slot, _)| **slot == troupe_core::PENDING_SLOT)
        .map(|(_, keys)| keys.clone())
        .unwrap_or_default();
    PersonRow {
        id: p.id,
        distinct_ids: p.distinct_ids,
        properties: parse_json(&p.properties),
        identified: p.identified != 0,
        group_memberships,
        pending_groups,
        created_at: from_micros(p.created_at),
        updated_at: from_micros(p.updated_at),
    }
}

/// Current persons matching `filter` (on the latest row), in `order`.
async fn person_rows(
    http: &Http,
    project: u32,
    filter: &str,
    order: &str,
    names: &SlotNames,
) -> Result<Vec<PersonRow>> {
    let current = latest("persons", project, &["id"], PERSON_VALUES, "");
    let sql = format!("SELECT {} FROM {current} WHERE {filter} ORDER BY {order}", person_columns());
    let rows: Vec<StoredPerson> = http.rows(&sql).await?;
    Ok(rows.into_iter().map(|p| person_row(p, names)).collect())
}

pub async fn persons(http: &Http, project: u32, q: &PersonQuery) -> Result<Page<PersonRow>> {
    let names = slot_names(http, project).await?;
    let mut filter = String::from("1");
    if let Some(search) = q.search.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        filter = format!(
            "({} OR {})",
            contains("arrayStringConcat(distinct_ids, ' ')", search),
            contains("properties", search)
        );
    }
    let current = latest("persons", project, &["id"], PERSON_VALUES, "");
    let total = count(http, &current, &filter).await?;
    let order = format!("updated_at DESC, id LIMIT {} OFFSET {}", q.limit, q.offset);
    let results = person_rows(http, project, &filter, &order, &names).await?;
    Ok(Page { results, total, limit: q.limit, offset: q.offset })
}

/// The person id of `id`, which may be a distinct id or a person id.
async fn resolve_person(http: &Http, project: u32, id: &str) -> Result<Option<String>> {
    #[derive(Deserialize)]
    struct Row {
        person_id: String,
    }
    let by_distinct = latest(
        "person_distinct_ids",
        project,
        &["distinct_id"],
        &["person_id"],
        &format!("distinct_id = {}", quote(id)),
    );
    let rows: Vec<Row> = http.rows(&format!("SELECT person_id FROM {by_distinct}")).await?;
    if let Some(row) = rows.into_iter().next() {
        return Ok(Some(row.person_id));
    }
    let persons = latest("persons", project, &["id"], &["identified"], &format!("id = {}", quote(id)));
    let rows: Vec<Row> = http.rows(&format!("SELECT id AS person_id FROM {persons}")).await?;
    Ok(rows.into_iter().next().map(|r| r.person_id))
}

pub async fn person(http: &Http, project: u32, id: &str, recent: usize, slots: usize) -> Result<Option<PersonProfile>> {
    let names = slot_names(http, project).await?;
    let Some(person_id) = resolve_person(http, project, id).await? else {
        return Ok(None);
    };
    let filter = format!("id = {}", quote(&person_id));
    let Some(person) = person_rows(http, project, &filter, "id", &names).await?.pop() else {
        return Ok(None);
    };
    let charges = crate::persist::stored_charges(http, project, &person_id)
        .await?
        .into_iter()
        .map(|c| ChargeRow { amount: c.amount, properties: parse_json(&c.properties), time: from_micros(c.time) })
        .collect();
    let query = EventQuery { limit: recent, ..EventQuery::default() };
    let recent_events = events_of(http, project, &query, Some(&person_id), slots, &names).await?;
    Ok(Some(PersonProfile { person, charges, recent_events }))
}

pub async fn events(http: &Http, project: u32, q: &EventQuery, slots: usize) -> Result<Vec<EventRow>> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    let names = slot_names(http, project).await?;
    let person_id = match &q.person {
        Some(person) => match resolve_person(http, project, person).await? {
            Some(id) => Some(id),
            None => return Ok(Vec::new()),
        },
        None => None,
    };
    events_of(http, project, q, person_id.as_deref(), slots, &names).await
}

/// Events matching `q`, with its person already resolved to `person_id` (`q.person` is not
/// read) and the slot names already known: profiles have both at hand.
async fn events_of(
    http: &Http,
    project: u32,
    q: &EventQuery,
    person_id: Option<&str>,
    slots: usize,
    names: &SlotNames,
) -> Result<Vec<EventRow>> {
    if q.limit == 0 {
        return Ok(Vec::new());
    }
    let mut filter = format!("project_id = {project}{}", http.erasing().filter(http, project).await?);
    if let Some(event) = &q.event {
        filter.push_str(&format!(" AND event = {}", quote(event)));
    }
    if let Some(person_id) = person_id {
        // Which person an id belongs to is a value, not the key: it is compared on the latest rows.
        let ids = latest("person_distinct_ids", project, &["distinct_id"], &["person_id"], "");
        filter.push_str(&format!(
            " AND distinct_id GLOBAL IN (SELECT distinct_id FROM {ids} WHERE person_id = {})",
            quote(person_id)
        ));
    }
    if let Some((group_type, key)) = &q.group {
        let Some(slot) = slot_of(names, group_type) else {
            return Ok(Vec::new());
        };
        filter.push_str(&format!(" AND (has(group_{slot}, {k}) OR has(groups_untyped, {k}))", k = quote(key)));
    }
    if let Some(before) = q.before {
        filter.push_str(&format!(" AND ts < {}", before.timestamp_micros()));
    }
    let group_columns: String = (0..slots).map(|s| format!(", group_{s}")).collect();
    let sql = format!(
        "SELECT uuid, event, distinct_id, ts, received_at, properties, groups_untyped{group_columns}
         FROM events WHERE {filter} ORDER BY ts DESC, received_at DESC, uuid DESC LIMIT {}",
        q.limit
    );
    let rows: Vec<Map<String, Value>> = http.rows(&sql).await?;
    Ok(rows.into_iter().map(|row| event_row(row, names, slots)).collect())
}

fn event_row(mut row: Map<String, Value>, names: &SlotNames, slots: usize) -> EventRow {
    let mut text = |k: &str| match row.remove(k) {
        Some(Value::String(s)) => s,
        _ => String::new(),
    };
    let (uuid, event, distinct_id, properties) = (text("uuid"), text("event"), text("distinct_id"), text("properties"));
    let micros = |v: Option<&Value>| from_micros(v.and_then(Value::as_i64).unwrap_or(0));
    let list = |v: Option<&Value>| -> Vec<String> {
        v.and_then(Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(String::from)).collect())
            .unwrap_or_default()
    };
    let mut groups = BTreeMap::new();
    for slot in 0..slots {
        let ids = list(row.get(&format!("group_{slot}")));
        let name = u8::try_from(slot).ok().and_then(|s| names.get(&s));
        if let (false, Some(name)) = (ids.is_empty(), name) {
            groups.insert(name.clone(), ids);
        }
    }
    EventRow {
        uuid,
        event,
        distinct_id,
        timestamp: micros(row.get("ts")),
        received_at: micros(row.get("received_at")),
        properties: parse_json(&properties),
        untyped_groups: list(row.get("groups_untyped")),
        groups,
    }
}
