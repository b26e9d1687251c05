//! Writing one batch's changes: every touched entity gets a new row version (a deletion is a row
//! with `deleted = 1`), events are appended. The inserts of one batch run concurrently and the
//! batch is answered only when all of them succeeded.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::{Map, Value};
use troupe_core::{Changes, ChargeChange, ProjectState, Properties};
use troupe_store::value::PropertyIndex;

use crate::http::{float_literal, quote, Http};
use crate::load::parse_json;
use crate::rows::{ChargeRow, DistinctIdRow, GroupProfileRow, GroupTypeRow, PersonRow, Versions};
use crate::schema::{latest, physical_tables};
use crate::ClickHouseError;

pub fn json(props: &Properties) -> String {
    serde_json::to_string(props).unwrap_or_else(|_| "{}".to_string())
}

pub async fn changes(
    http: &Http,
    versions: &mut Versions,
    state: &ProjectState,
    changes: &Changes,
    group_slots: usize,
) -> Result<(), ClickHouseError> {
    let project = state.project_id;
    // Clearing concerns events stored before this batch; this batch's events already lost the
    // slot in the state.
    for slot in &changes.cleared_slots {
        clear_slot(http, project, *slot).await?;
    }
    let events = event_rows(state, changes, group_slots);
    let persons = person_rows(versions, state, changes);
    let distinct_ids = distinct_id_rows(versions, state, changes);
    let groups = group_rows(versions, state, changes);
    let group_types = group_type_rows(versions, state, changes);
    let retry_keys: Vec<RetryKeyRow> = changes
        .retry_keys
        .iter()
        .map(|r| RetryKeyRow {
            project_id: project,
            key: r.key,
            seen_at: r.seen_at.timestamp_micros(),
            forever: u8::from(r.forever),
        })
        .collect();
    // Profiles first (versioned rows: writing them again on a retry is harmless), charges,
    // then what marks the batch as seen (events with their ids, retry keys): a write that fails
    // part-way leaves no mark, so the client's retry applies the batch again instead of being
    // taken for a duplicate of something half stored.
    tokio::try_join!(
        http.insert("persons", &persons),
        http.insert("person_distinct_ids", &distinct_ids),
        http.insert("group_profiles", &groups),
        http.insert("group_types", &group_types),
    )?;
    charges(http, versions, project, &changes.charges).await?;
    tokio::try_join!(http.insert("events", &events), http.insert("retry_keys", &retry_keys))?;
    Ok(())
}

/// A row of `retry_keys`.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct RetryKeyRow {
    pub project_id: u32,
    pub key: u64,
    pub seen_at: i64,
    pub forever: u8,
}

fn event_rows(state: &ProjectState, changes: &Changes, group_slots: usize) -> Vec<Map<String, Value>> {
    changes
        .events
        .iter()
        .map(|e| {
            let person = state.person_by_distinct_id(&e.distinct_id).map(|p| p.id.to_string()).unwrap_or_default();
            let ts = e.timestamp.timestamp_micros();
            let mut row = Map::new();
            row.insert("project_id".into(), state.project_id.into());
            row.insert("uuid".into(), e.uuid.clone().into());
            row.insert("dedup_key".into(), e.dedup_key.unwrap_or(0).into());
            row.insert("event".into(), e.event.clone().into());
            row.insert("distinct_id".into(), e.distinct_id.clone().into());
            row.insert("person_id".into(), person.into());
            row.insert("ts".into(), ts.into());
            // DateTime holds 1970..2106 in seconds; the exact time is `ts`.
            row.insert("time".into(), ts.div_euclid(1_000_000).clamp(0, i64::from(u32::MAX)).into());
            row.insert("received_at".into(), e.received_at.timestamp_micros().into());
            row.insert("properties".into(), e.properties_json.clone().into());
            let index = PropertyIndex::new(&parse_json(&e.properties_json));
            row.insert("prop_keys".into(), index.keys.into());
            row.insert("prop_texts".into(), index.texts.into());
            row.insert("prop_lowers".into(), index.lowers.into());
            let numbers: Vec<Value> = index.numbers.iter().map(|n| float_value(*n)).collect();
            row.insert("prop_numbers".into(), numbers.into());
            row.insert("prop_kinds".into(), index.kinds.into());
            row.insert("props_indexed".into(), 1.into());
            row.insert("groups_untyped".into(), e.untyped_groups.clone().into());
            for slot in 0..group_slots {
                let ids = u8::try_from(slot).ok().and_then(|s| e.groups.get(&s)).cloned().unwrap_or_default();
                row.insert(format!("group_{slot}"), ids.into());
            }
            row
        })
        .collect()
}

/// A Float64 for JSONEachRow: JSON has no NaN or infinities, which ClickHouse reads from strings.
fn float_value(n: f64) -> Value {
    if n.is_finite() {
        n.into()
    } else {
        float_literal(n).into()
    }
}

fn person_rows(versions: &mut Versions, state: &ProjectState, changes: &Changes) -> Vec<PersonRow> {
    changes
        .persons
        .iter()
        .map(|id| {
            let version = versions.next();
            match state.person(*id) {
                Some(p) => PersonRow {
                    project_id: state.project_id,
                    id: id.to_string(),
                    distinct_ids: p.distinct_ids.clone(),
                    properties: json(&p.properties),
                    identified: u8::from(p.identified),
                    created_at: p.created_at.timestamp_micros(),
                    updated_at: p.updated_at.timestamp_micros(),
                    membership_slots: p.memberships.keys().copied().collect(),
                    membership_keys: p.memberships.values().cloned().collect(),
                    version,
                    deleted: 0,
                },
                None => PersonRow {
                    project_id: state.project_id,
                    id: id.to_string(),
                    distinct_ids: Vec::new(),
                    properties: "{}".into(),
                    identified: 0,
                    created_at: 0,
                    updated_at: 0,
                    membership_slots: Vec::new(),
                    membership_keys: Vec::new(),
                    version,
                    deleted: 1,
                },
            }
        })
        .collect()
}

fn distinct_id_rows(versions: &mut Versions, state: &ProjectState, changes: &Changes) -> Vec<DistinctIdRow> {
    changes
        .distinct_ids
        .iter()
        .map(|distinct_id| {
            let person = state.person_by_distinct_id(distinct_id).map(|p| p.id.to_string());
            DistinctIdRow {
                project_id: state.project_id,
                distinct_id: distinct_id.clone(),
                deleted: u8::from(person.is_none()),
                person_id: person.unwrap_or_default(),
                version: versions.next(),
            }
        })
        .collect()
}

fn group_rows(versions: &mut Versions, state: &ProjectState, changes: &Changes) -> Vec<GroupProfileRow> {
    changes
        .groups
        .iter()
        .map(|(slot, key)| {
            let version = versions.next();
            match state.group(*slot, key) {
                Some(g) => GroupProfileRow {
                    project_id: state.project_id,
                    slot: *slot,
                    group_key: key.clone(),
                    name: g.name.clone(),
                    properties: json(&g.properties),
                    created_at: g.created_at.timestamp_micros(),
                    updated_at: g.updated_at.timestamp_micros(),
                    version,
                    deleted: 0,
                },
                None => GroupProfileRow {
                    project_id: state.project_id,
                    slot: *slot,
                    group_key: key.clone(),
                    name: None,
                    properties: "{}".into(),
                    created_at: 0,
                    updated_at: 0,
                    version,
                    deleted: 1,
                },
            }
        })
        .collect()
}

fn group_type_rows(versions: &mut Versions, state: &ProjectState, changes: &Changes) -> Vec<GroupTypeRow> {
    changes
        .group_types
        .iter()
        .map(|slot| {
            let current = state.group_types().by_slot(*slot);
            GroupTypeRow {
                project_id: state.project_id,
                slot: *slot,
                name: current.map(|t| t.name.clone()).unwrap_or_default(),
                display_name: current.map(|t| t.display_name.clone()).unwrap_or_default(),
                version: versions.next(),
                deleted: u8::from(current.is_none()),
            }
        })
        .collect()
}

/// Charges in order: `clear` and `move` act on what was stored before them, so pending adds are
/// written first.
async fn charges(
    http: &Http,
    versions: &mut Versions,
    project: u32,
    changes: &[ChargeChange],
) -> Result<(), ClickHouseError> {
    let mut pending = Vec::new();
    for change in changes {
        match change {
            ChargeChange::Add(c) => pending.push(ChargeRow {
                project_id: project,
                id: uuid::Uuid::now_v7().to_string(),
                person_id: c.person_id.to_string(),
                amount: c.amount,
                properties: json(&c.properties),
                time: c.time.timestamp_micros(),
                version: versions.next(),
                deleted: 0,
            }),
            ChargeChange::Clear(person) => {
                http.insert("charges", &std::mem::take(&mut pending)).await?;
                let rows = stored_charges(http, project, &person.to_string()).await?;
                let cleared: Vec<ChargeRow> =
                    rows.into_iter().map(|r| ChargeRow { version: versions.next(), deleted: 1, ..r }).collect();
                http.insert("charges", &cleared).await?;
            }
            ChargeChange::Move { from, to } => {
                http.insert("charges", &std::mem::take(&mut pending)).await?;
                let rows = stored_charges(http, project, &from.to_string()).await?;
                let moved: Vec<ChargeRow> = rows
                    .into_iter()
                    .map(|r| ChargeRow { person_id: to.to_string(), version: versions.next(), ..r })
                    .collect();
                http.insert("charges", &moved).await?;
            }
        }
    }
    http.insert("charges", &pending).await
}

pub async fn stored_charges(http: &Http, project: u32, person: &str) -> Result<Vec<ChargeRow>, ClickHouseError> {
    // The person is a value (a merge moves charges): compared on the latest rows, not before.
    let current = latest("charges", project, &["id"], &["person_id", "amount", "properties", "time"], "");
    let sql = format!(
        "SELECT {project} AS project_id, id, person_id, amount, properties, time, toUInt64(0) AS version, \
         toUInt8(0) AS deleted FROM {current} WHERE person_id = {} ORDER BY time, id",
        quote(person)
    );
    http.rows(&sql).await
}

/// Empty one group column on every stored event of a project (its group type was deleted), and
/// wait for ClickHouse to finish: the slot may be reused right after.
async fn clear_slot(http: &Http, project: u32, slot: u8) -> Result<(), ClickHouseError> {
    let local = physical_tables(http, "events").remove(0);
    let db = http.config().database.clone();
    for node in http.config().nodes.clone() {
        let sql = format!("ALTER TABLE {local} UPDATE group_{slot} = emptyArrayString() WHERE project_id = {project}");
        http.execute_on(&node, &sql, true).await?;
        let started = Instant::now();
        loop {
            #[derive(Deserialize)]
            struct Pending {
                n: u64,
            }
            let rows: Vec<Pending> = http
                .rows_on(
                    &node,
                    &format!(
                        "SELECT count() AS n FROM system.mutations WHERE database = {} AND table = {} AND is_done = 0",
                        quote(&db),
                        quote(&local)
                    ),
                )
                .await?;
            if rows.first().map_or(0, |r| r.n) == 0 {
                break;
            }
            if started.elapsed() > Duration::from_secs(120) {
                return Err(ClickHouseError::Schema(format!(
                    "clearing group column {slot} on {node} did not finish within 120 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}
