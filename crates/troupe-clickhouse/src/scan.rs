//! The event scan for the query layer's generic path: events of a range with their person resolved
//! through the latest distinct-id rows (so merges count the merged person) and their group ids per
//! requested type, dictionary-encoded.

use serde::Deserialize;
use troupe_store::{Actor, Dictionary, EventScan, GroupColumnBuilder, ScanRequest};

use crate::http::{quote_list, Http};
use crate::load::{from_micros, parse_json, StoredGroup};
use crate::read::slot_names;
use crate::rows::{GROUP_VALUES, PERSON_VALUES};
use crate::schema::latest;
use crate::ClickHouseError;

type Result<T> = std::result::Result<T, ClickHouseError>;

#[derive(Deserialize)]
struct ScanRow {
    ts: i64,
    event: String,
    person: String,
    props: String,
    untyped: Vec<String>,
    groups: Vec<Vec<String>>,
}

pub async fn scan(http: &Http, project: u32, req: &ScanRequest) -> Result<EventScan> {
    let slots = slot_names(http, project).await?;
    let mut builders = Vec::new();
    for group_type in &req.group_types {
        let slot = slots.iter().find(|(_, name)| *name == group_type).map(|(s, _)| *s);
        builders.push(group_builder(http, project, group_type, slot).await?);
    }
    let mut out = EventScan::default();
    if req.events.as_ref().is_some_and(|e| e.is_empty()) {
        out.groups = builders.into_iter().map(GroupColumnBuilder::finish).collect();
        return Ok(out);
    }
    // Unqualified names: a Distributed table on the left of a GLOBAL JOIN keeps no alias.
    let mut filter = format!("project_id = {project}{}", http.erasing().filter(http, project).await?);
    if let Some(from) = req.from {
        filter.push_str(&format!(" AND ts >= {}", from.timestamp_micros()));
    }
    if let Some(to) = req.to {
        filter.push_str(&format!(" AND ts < {}", to.timestamp_micros()));
    }
    if req.from.is_some() || req.to.is_some() {
        let (from, to) = (req.from.map(|t| t.timestamp_micros()), req.to.map(|t| t.timestamp_micros()));
        filter.push_str(&format!(" AND {}", time_bounds(from, to)));
    }
    if let Some(events) = &req.events {
        filter.push_str(&format!(" AND event IN ({})", quote_list(events)));
    }
    let (person, join) = if req.persons { person_join(project) } else { ("''", String::new()) };
    let properties = if req.event_properties { "properties" } else { "''" };
    let groups: Vec<String> =
        builders.iter().map(|b| b.slot.map_or("emptyArrayString()".to_string(), |s| format!("group_{s}"))).collect();
    let groups = if groups.is_empty() {
        "arrayFilter(x -> 0, [emptyArrayString()])".to_string()
    } else {
        format!("[{}]", groups.join(", "))
    };
    let sql = format!(
        "SELECT ts, event, {person} AS person, {properties} AS props, groups_untyped AS untyped, \
         {groups} AS groups FROM events {join} WHERE {filter}"
    );
    let rows: Vec<ScanRow> = http.rows(&sql).await?;
    let mut names = Dictionary::default();
    let mut persons = Dictionary::default();
    for row in rows {
        out.ts.push(row.ts);
        out.name.push(names.intern_str(&row.event));
        if req.persons {
            out.person.push(persons.intern_str(&row.person));
        }
        if req.event_properties {
            out.properties.push(parse_json(&row.props));
        }
        for (b, keys) in builders.iter_mut().zip(&row.groups) {
            b.push_event(keys.iter().map(String::as_str), row.untyped.iter().map(String::as_str));
        }
    }
    out.names = names.keys;
    out.persons = person_actors(http, project, persons.keys, req.person_details).await?;
    out.groups = builders.into_iter().map(GroupColumnBuilder::finish).collect();
    Ok(out)
}

/// The same range as `ts` microseconds `[from, to)`, on the `time` column (seconds): the
/// partition key (`toYYYYMM(time)`) and the sort key (`toDate(time)`) are functions of it, so
/// ClickHouse skips the partitions and granules outside the range (the `ts` condition alone
/// read the project's whole history). `time` is a `DateTime` (UInt32 seconds): bounds are
/// clamped to it.
pub fn time_bounds(from: Option<i64>, to: Option<i64>) -> String {
    let seconds = |us: i64, round_up: bool| {
        let s = if round_up {
            us.div_euclid(1_000_000) + i64::from(us.rem_euclid(1_000_000) != 0)
        } else {
            us.div_euclid(1_000_000)
        };
        s.clamp(0, i64::from(u32::MAX))
    };
    let mut parts = Vec::new();
    if let Some(from) = from {
        parts.push(format!("time >= toDateTime({})", seconds(from, false)));
    }
    if let Some(to) = to {
        parts.push(format!("time <= toDateTime({})", seconds(to, true)));
    }
    if parts.is_empty() {
        return "1".into();
    }
    parts.join(" AND ")
}

/// An event's person as it resolves now (the latest distinct-id rows, so merges count the merged
/// person; an unknown distinct id is its own person), and the join it needs.
pub fn person_join(project: u32) -> (&'static str, String) {
    let ids = latest("person_distinct_ids", project, &["distinct_id"], &["person_id"], "");
    (
        "if(resolved_person = '', distinct_id, resolved_person)",
        // The alias: current ClickHouse refuses a joined subquery without one (ALIAS_REQUIRED,
        // code 206); 18.16 accepts both.
        format!(
            "GLOBAL ANY LEFT JOIN (SELECT distinct_id, person_id AS resolved_person FROM {ids}) AS resolved_ids \
             USING distinct_id"
        ),
    )
}

/// Every group of the type with its profile; ids seen only on events are added while scanning.
async fn group_builder(http: &Http, project: u32, group_type: &str, slot: Option<u8>) -> Result<GroupColumnBuilder> {
    let mut builder = GroupColumnBuilder::new(group_type, slot);
    if let Some(slot) = slot {
        for actor in group_profiles(http, project, slot).await? {
            builder.add_profile(actor);
        }
    }
    Ok(builder)
}

/// The groups of one type slot that have a profile, by key.
pub async fn group_profiles(http: &Http, project: u32, slot: u8) -> Result<Vec<Actor>> {
    let current = latest("group_profiles", project, &["slot", "group_key"], GROUP_VALUES, &format!("slot = {slot}"));
    let rows: Vec<StoredGroup> = http
        .rows(&format!(
            "SELECT slot, group_key, name, properties, created_at, updated_at FROM {current} ORDER BY group_key"
        ))
        .await?;
    Ok(rows
        .into_iter()
        .map(|g| Actor {
            key: g.group_key,
            distinct_ids: Vec::new(),
            name: g.name,
            properties: parse_json(&g.properties),
            created_at: Some(from_micros(g.created_at)),
        })
        .collect())
}

async fn person_actors(http: &Http, project: u32, keys: Vec<String>, details: bool) -> Result<Vec<Actor>> {
    let mut actors: Vec<Actor> = keys.into_iter().map(|key| Actor { key, ..Actor::default() }).collect();
    if !details || actors.is_empty() {
        return Ok(actors);
    }
    let position: rustc_hash::FxHashMap<String, usize> =
        actors.iter().enumerate().map(|(i, a)| (a.key.clone(), i)).collect();
    for profile in person_profiles(http, project).await? {
        if let Some(&i) = position.get(&profile.key) {
            actors[i] = profile;
        }
    }
    Ok(actors)
}

/// Every person of the project with their distinct ids and properties.
pub async fn person_profiles(http: &Http, project: u32) -> Result<Vec<Actor>> {
    #[derive(Deserialize)]
    struct Row {
        id: String,
        distinct_ids: Vec<String>,
        properties: String,
        created_at: i64,
    }
    let current = latest("persons", project, &["id"], PERSON_VALUES, "");
    let rows: Vec<Row> = http.rows(&format!("SELECT id, distinct_ids, properties, created_at FROM {current}")).await?;
    Ok(rows
        .into_iter()
        .map(|r| Actor {
            key: r.id,
            distinct_ids: r.distinct_ids,
            name: None,
            properties: parse_json(&r.properties),
            created_at: Some(from_micros(r.created_at)),
        })
        .collect())
}
