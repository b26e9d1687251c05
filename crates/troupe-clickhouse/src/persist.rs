//! Writing one batch's changes: every touched entity gets a new row version (a deletion is a row
//! with `deleted = 1`), events are appended. The inserts of one batch run concurrently and the
//! batch is answered only when all of them succeeded.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use troupe_core::dedupe::RetryRecord;
use troupe_core::{Anonymized, Changes, ChargeChange, ProjectState, Properties, StoredEvent, PENDING_SLOT};
use troupe_store::value::PropertyIndex;

use crate::http::{quote, quote_list, Http};
use crate::load::parse_json;
use crate::rows::{ChargeRow, DistinctIdRow, GroupProfileRow, GroupTypeRow, PersonRow, Versions};
use crate::schema::{latest, physical_tables};
use crate::tsv::{Tsv, TsvRow};
use crate::ClickHouseError;

pub fn json(props: &Properties) -> String {
    serde_json::to_string(props).unwrap_or_else(|_| "{}".to_string())
}

/// One project's rows of a batch, built from the state when the batch is applied and owned, so
/// that they can be written while the writer applies the next batch.
pub struct ProjectRows {
    project: u32,
    cleared_slots: Vec<u8>,
    erased: Erased,
    anonymized: Vec<Anonymized>,
    detached_groups: Vec<(u8, String)>,
    erased_group_events: Vec<(u8, String)>,
    /// Event retention (microseconds): events before it go.
    expired_before: Option<i64>,
    kept_out: Vec<ClientKeyRow>,
    events: Vec<EventRow>,
    persons: Vec<PersonRow>,
    distinct_ids: Vec<DistinctIdRow>,
    groups: Vec<GroupProfileRow>,
    group_types: Vec<GroupTypeRow>,
    charges: Vec<ChargeChange>,
    retry_keys: Vec<RetryKeyRow>,
    client_keys: Vec<ClientKeyRow>,
    /// The events' column list (the group columns are the table's).
    event_columns: String,
}

/// The rows of one project's `changes`, read from its state right after they were applied.
pub fn rows(versions: &Versions, state: &ProjectState, changes: Changes, group_columns: &Arc<[String]>) -> ProjectRows {
    let project = state.project_id;
    // Guarded writes' client ids are kept forever beside the events' (`client_keys`, what the
    // writer looks ids up in); content keys only for the retry window.
    let (forever, window): (Vec<&RetryRecord>, Vec<&RetryRecord>) = changes.retry_keys.iter().partition(|r| r.forever);
    let client_keys = forever.iter().map(|r| ClientKeyRow { project_id: project, key: r.key }).collect();
    let retry_keys = window
        .iter()
        .map(|r| RetryKeyRow { project_id: project, key: r.key, seen_at: r.seen_at.timestamp_micros(), forever: 0 })
        .collect();
    ProjectRows {
        project,
        persons: person_rows(versions, state, &changes),
        distinct_ids: distinct_id_rows(versions, state, &changes),
        groups: group_rows(versions, state, &changes),
        group_types: group_type_rows(versions, state, &changes),
        retry_keys,
        client_keys,
        cleared_slots: changes.cleared_slots,
        erased: Erased {
            distinct_ids: changes.erased_distinct_ids.iter().cloned().collect(),
            persons: changes.erased_persons.iter().map(|p| p.to_string()).collect(),
            at: changes.erased_at.map_or(i64::MAX, |t| t.timestamp_micros()),
        },
        anonymized: changes.anonymized.clone(),
        detached_groups: changes.detached_groups.clone(),
        erased_group_events: changes.erased_group_events.clone(),
        expired_before: changes.expired_before.map(|t| t.timestamp_micros()),
        kept_out: changes.kept_out.iter().map(|&key| ClientKeyRow { project_id: project, key }).collect(),
        charges: changes.charges,
        events: event_rows(state, changes.events, group_columns),
        event_columns: event_columns(group_columns),
    }
}

/// Write one project's rows of a batch.
pub async fn write(http: &Http, versions: &Versions, rows: ProjectRows) -> Result<(), ClickHouseError> {
    let ProjectRows {
        project,
        cleared_slots,
        erased,
        anonymized,
        detached_groups,
        erased_group_events,
        expired_before,
        kept_out,
        events,
        persons,
        distinct_ids,
        groups,
        group_types,
        charges,
        retry_keys,
        client_keys,
        event_columns,
    } = rows;
    // Clearing concerns events stored before this batch; this batch's events already lost the
    // slot in the state.
    for slot in cleared_slots {
        let change = format!("UPDATE group_{slot} = emptyArrayString() WHERE project_id = {project}");
        mutate(http, "events", &change, &format!("clearing group column {slot}")).await?;
    }
    erase(http, project, &erased).await?;
    if let Some(before) = expired_before {
        expire(http, project, before).await?;
    }
    // An erased group's earlier profile versions go too (the batch writes its deletion row).
    for (slot, key) in detached_groups.iter().chain(&erased_group_events) {
        let change = format!("DELETE WHERE project_id = {project} AND slot = {slot} AND group_key = {}", quote(key));
        mutate(http, "group_profiles", &change, "erasing a group's profile").await?;
    }
    for (slot, key) in erased_group_events {
        let change = format!("DELETE WHERE project_id = {project} AND has(group_{slot}, {})", quote(&key));
        mutate(http, "events", &change, "erasing a group's events").await?;
    }
    for (slot, key) in detached_groups {
        let key = quote(&key);
        let change = format!(
            "UPDATE group_{slot} = arrayFilter(x -> x != {key}, group_{slot}) WHERE project_id = {project} AND has(group_{slot}, {key})"
        );
        mutate(http, "events", &change, "taking an erased group off events").await?;
    }
    // Profiles first (versioned rows: writing them again on a retry is harmless), charges,
    // then what marks the batch as seen (events with their ids, retry keys): a write that fails
    // part-way leaves no mark, so the client's retry applies the batch again instead of being
    // taken for a duplicate of something half stored.
    tokio::try_join!(
        http.insert("persons", &persons),
        http.insert("person_distinct_ids", &distinct_ids),
        http.insert("group_profiles", &groups),
        http.insert("group_types", &group_types),
        http.insert_tsv("kept_out", CLIENT_KEY_COLUMNS, &kept_out, None),
    )?;
    for anonymized in &anonymized {
        anonymize(http, project, anonymized).await?;
    }
    write_charges(http, versions, project, &charges).await?;
    let token = events_token(project, &events);
    tokio::try_join!(
        http.insert_tsv("events", &event_columns, &events, token.as_deref()),
        http.insert_tsv("retry_keys", RETRY_KEY_COLUMNS, &retry_keys, None),
        http.insert_tsv("client_keys", CLIENT_KEY_COLUMNS, &client_keys, None),
    )?;
    Ok(())
}

/// The deduplication token of an insert of events: its project and the ids of its events. A
/// batch written again after a failed write (the client's retry, applied anew) holds the same
/// events with the same ids, so ClickHouse stores only one of the two inserts, whichever lands
/// first — even when the first lands after troupe read its state back (a reply lost, an insert
/// delayed on the way).
fn events_token(project: u32, events: &[EventRow]) -> Option<String> {
    if events.is_empty() {
        return None;
    }
    let mut ids: Vec<&str> = events.iter().map(|e| e.event.uuid.as_str()).collect();
    ids.sort_unstable();
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    for id in ids {
        hasher.update(id.as_bytes());
        hasher.update(&[0]);
    }
    Some(format!("troupe-{project}-events-{:032x}", hasher.digest128()))
}

/// Delete the content keys (id-less writes) seen before `before` (microseconds): past the retry
/// window they are never read again. A ClickHouse mutation: it returns at once and runs in the
/// background; keys with a client id are kept forever.
pub async fn prune_retry_keys(http: &Http, before: i64) -> Result<(), ClickHouseError> {
    let local = physical_tables(http, "retry_keys").remove(0);
    for node in http.config().nodes.clone() {
        let sql = format!("ALTER TABLE {local} DELETE WHERE forever = 0 AND seen_at < {before}");
        http.execute_on(&node, &sql, true).await?;
    }
    Ok(())
}

/// A row of `retry_keys`.
#[derive(serde::Deserialize)]
pub struct RetryKeyRow {
    pub project_id: u32,
    pub key: u64,
    pub seen_at: i64,
    pub forever: u8,
}

const RETRY_KEY_COLUMNS: &str = "project_id, key, seen_at, forever";

/// A guarded write's client id in `client_keys` (schema 8; before, `retry_keys` with
/// `forever = 1`, which held every content key too, so a lookup read them all).
struct ClientKeyRow {
    project_id: u32,
    key: u64,
}

const CLIENT_KEY_COLUMNS: &str = "project_id, key";

impl TsvRow for ClientKeyRow {
    fn write(&self, row: &mut Tsv) {
        row.number(self.project_id);
        row.number(self.key);
    }
}

impl TsvRow for RetryKeyRow {
    fn write(&self, row: &mut Tsv) {
        row.number(self.project_id);
        row.number(self.key);
        row.number(self.seen_at);
        row.number(self.forever);
    }
}

fn event_rows(state: &ProjectState, events: Vec<StoredEvent>, group_columns: &Arc<[String]>) -> Vec<EventRow> {
    events
        .into_iter()
        .map(|e| EventRow {
            project_id: state.project_id,
            person_id: state.person_by_distinct_id(&e.distinct_id).map(|p| p.id.to_string()).unwrap_or_default(),
            index: PropertyIndex::new(&parse_json(&e.properties_json)),
            event: e,
            group_columns: group_columns.clone(),
        })
        .collect()
}

/// One row of `events`, written as `TabSeparated` straight from the event (see [`crate::tsv`]):
/// the writer's ingestion rate depends on it.
struct EventRow {
    project_id: u32,
    event: StoredEvent,
    person_id: String,
    index: PropertyIndex,
    /// `group_<slot>` for every slot the table has.
    group_columns: Arc<[String]>,
}

/// The columns [`EventRow::write`] fills, in its order, then the group columns.
const EVENT_COLUMNS: &str = "project_id, uuid, dedup_key, event, distinct_id, person_id, ts, time, received_at, \
                             properties, prop_keys, prop_texts, prop_lowers, prop_numbers, prop_kinds, \
                             props_indexed, groups_untyped";

fn event_columns(group_columns: &[String]) -> String {
    std::iter::once(EVENT_COLUMNS.to_string()).chain(group_columns.iter().cloned()).collect::<Vec<_>>().join(", ")
}

impl TsvRow for EventRow {
    fn write(&self, row: &mut Tsv) {
        let e = &self.event;
        let ts = e.timestamp.timestamp_micros();
        row.number(self.project_id);
        row.string(&e.uuid);
        row.number(e.dedup_key.unwrap_or(0));
        row.string(&e.event);
        row.string(&e.distinct_id);
        row.string(&self.person_id);
        row.number(ts);
        // DateTime holds 1970..2106 in seconds (read as a Unix time whatever the server's time
        // zone); the exact time is `ts`.
        row.number(ts.div_euclid(1_000_000).clamp(0, i64::from(u32::MAX)));
        row.number(e.received_at.timestamp_micros());
        row.string(&e.properties_json);
        row.strings(&self.index.keys);
        row.strings(&self.index.texts);
        row.strings(&self.index.lowers);
        row.floats(&self.index.numbers);
        row.small_numbers(&self.index.kinds);
        row.number(1u8);
        row.strings(&e.untyped_groups);
        for slot in 0..self.group_columns.len() {
            let ids = u8::try_from(slot).ok().and_then(|s| e.groups.get(&s)).map_or(&[][..], Vec::as_slice);
            row.strings(ids);
        }
    }
}

fn person_rows(versions: &Versions, state: &ProjectState, changes: &Changes) -> Vec<PersonRow> {
    changes
        .persons
        .iter()
        // An erased person's rows are removed whole (see `erase`): no deletion row names it.
        .filter(|id| state.person(**id).is_some() || !changes.erased_persons.contains(id))
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
                    membership_slots: membership_slots(p),
                    membership_keys: p
                        .memberships
                        .values()
                        .cloned()
                        .chain(Some(p.pending_groups.clone()).filter(|keys| !keys.is_empty()))
                        .collect(),
                    membership_replaced_at: membership_slots(p)
                        .iter()
                        .map(|slot| p.replaced_at.get(slot).map_or(0, |at| at.timestamp_micros()))
                        .collect(),
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
                    membership_replaced_at: Vec::new(),
                    version,
                    deleted: 1,
                },
            }
        })
        .collect()
}

/// A person's membership slots as stored: its types', then [`PENDING_SLOT`] for its pending
/// untyped keys, if any.
fn membership_slots(person: &troupe_core::Person) -> Vec<u8> {
    let pending = Some(PENDING_SLOT).filter(|_| !person.pending_groups.is_empty());
    person.memberships.keys().copied().chain(pending).collect()
}

fn distinct_id_rows(versions: &Versions, state: &ProjectState, changes: &Changes) -> Vec<DistinctIdRow> {
    changes
        .distinct_ids
        .iter()
        // An erased or anonymized person's former ids are removed whole (`erase`, `anonymize`).
        .filter(|id| {
            state.person_by_distinct_id(id).is_some()
                || !(changes.erased_distinct_ids.contains(*id)
                    || changes.anonymized.iter().any(|a| a.former_ids.contains(*id)))
        })
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

fn group_rows(versions: &Versions, state: &ProjectState, changes: &Changes) -> Vec<GroupProfileRow> {
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

fn group_type_rows(versions: &Versions, state: &ProjectState, changes: &Changes) -> Vec<GroupTypeRow> {
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
async fn write_charges(
    http: &Http,
    versions: &Versions,
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

/// Drop a project's events before `before` (microseconds). Monthly partitions holding nothing
/// but this project's events from before it are dropped whole (`DROP PARTITION`, at once and
/// without rewriting anything); what is left, a mutation deletes (only when there is something:
/// the sweep runs every hour).
async fn expire(http: &Http, project: u32, before: i64) -> Result<(), ClickHouseError> {
    #[derive(Deserialize)]
    struct Month {
        month: u32,
        projects: u64,
        last: i64,
        expired: u64,
    }
    let seconds = before.div_euclid(1_000_000);
    let sql = format!(
        "SELECT toYYYYMM(time) AS month, uniqExact(project_id) AS projects, max(ts) AS last, \
         countIf(project_id = {project} AND ts < {before}) AS expired FROM events \
         WHERE toYYYYMM(time) <= toYYYYMM(toDateTime({seconds})) GROUP BY month"
    );
    let months: Vec<Month> = http.rows(&sql).await?;
    let local = physical_tables(http, "events").remove(0);
    let mut left = 0;
    for month in months.iter().filter(|m| m.expired > 0) {
        if month.projects == 1 && month.last < before {
            for node in http.config().nodes.clone() {
                http.execute_on(&node, &format!("ALTER TABLE {local} DROP PARTITION {}", month.month), true).await?;
            }
        } else {
            left += month.expired;
        }
    }
    if left > 0 {
        let change = format!("DELETE WHERE project_id = {project} AND ts < {before}");
        mutate(http, "events", &change, "dropping events past the retention").await?;
    }
    Ok(())
}

/// Erased persons' ids and distinct ids (see [`erase`]).
struct Erased {
    distinct_ids: Vec<String>,
    persons: Vec<String>,
    /// Microseconds: events of the ids received before it are the erased person's.
    at: i64,
}

/// Remove every row of erased persons, every version of it: events under their distinct ids
/// first (until those are gone, questions still find the person and count it once), then the
/// person rows (also the earlier versions of persons merged into them, which list their ids),
/// the ids' rows and the charges. Runs before the batch's own rows are inserted, so that an id
/// used again later in the batch keeps its new rows; an erased person needs no deletion row.
async fn erase(http: &Http, project: u32, erased: &Erased) -> Result<(), ClickHouseError> {
    if erased.distinct_ids.is_empty() {
        return Ok(());
    }
    // From here until the mutations end, reads leave the ids' events out already.
    let keys = crate::erasing::start(http, project, &erased.distinct_ids, erased.at).await?;
    let ids = quote_list(&erased.distinct_ids);
    let at = format!("DELETE WHERE project_id = {project} AND");
    mutate(http, "events", &format!("{at} distinct_id IN ({ids})"), "erasing a person's events").await?;
    if !erased.persons.is_empty() {
        let persons = quote_list(&erased.persons);
        let person_rows = format!("{at} (id IN ({persons}) OR hasAny(distinct_ids, [{ids}]))");
        mutate(http, "persons", &person_rows, "erasing a person").await?;
        mutate(http, "charges", &format!("{at} person_id IN ({persons})"), "erasing a person's charges").await?;
    }
    mutate(http, "person_distinct_ids", &format!("{at} distinct_id IN ({ids})"), "erasing a person's ids").await?;
    crate::erasing::finish(http, project, &keys).await
}

/// Rewrite the stored events of an anonymized person's former ids (its pseudonym, without the
/// personal fields, in the text and in the property index), then remove every row naming a
/// former id: the ids' rows and the person's earlier versions. Runs after the batch's profile
/// rows are in, so that at each step every event still finds the person.
async fn anonymize(http: &Http, project: u32, anonymized: &Anonymized) -> Result<(), ClickHouseError> {
    if anonymized.former_ids.is_empty() {
        return Ok(());
    }
    #[derive(Deserialize)]
    struct Stored {
        uuid: String,
        properties: String,
    }
    let former = quote_list(&anonymized.former_ids);
    let of_former = format!("project_id = {project} AND distinct_id IN ({former})");
    let stored: Vec<Stored> = http.rows(&format!("SELECT uuid, properties FROM events WHERE {of_former}")).await?;
    let (mut uuids, mut texts) = (Vec::new(), Vec::new());
    for event in &stored {
        if let Some(text) = anonymized.scrub_properties(&event.properties) {
            uuids.push(quote(&event.uuid));
            texts.push(quote(&text));
        }
    }
    let mut change = format!("UPDATE distinct_id = {}", quote(&anonymized.pseudonym));
    if !uuids.is_empty() {
        let fields = quote_list(&anonymized.personal_fields);
        let kept = format!("NOT has([{fields}], k)");
        change.push_str(&format!(
            ", properties = transform(uuid, [{}], [{}], properties), prop_keys = arrayFilter(k -> {kept}, prop_keys)",
            uuids.join(", "),
            texts.join(", ")
        ));
        for column in ["prop_texts", "prop_lowers", "prop_numbers", "prop_kinds"] {
            change.push_str(&format!(", {column} = arrayFilter((v, k) -> {kept}, {column}, prop_keys)"));
        }
    }
    mutate(http, "events", &format!("{change} WHERE {of_former}"), "anonymizing a person's events").await?;
    let ids = format!("DELETE WHERE project_id = {project} AND distinct_id IN ({former})");
    mutate(http, "person_distinct_ids", &ids, "removing an anonymized person's ids").await?;
    let earlier = format!(
        "DELETE WHERE project_id = {project} AND id = {} AND hasAny(distinct_ids, [{former}])",
        quote(&anonymized.person.to_string())
    );
    mutate(http, "persons", &earlier, "removing an anonymized person's earlier profiles").await
}

/// Change a table's stored rows with a mutation (`ALTER TABLE … <change>`) on every node, and
/// wait for ClickHouse to finish it: a deleted type's slot may be reused right after, and an
/// erased person's rows must be gone when the erasure is answered.
async fn mutate(http: &Http, table: &str, change: &str, what: &str) -> Result<(), ClickHouseError> {
    let local = physical_tables(http, table).remove(0);
    let db = http.config().database.clone();
    for node in http.config().nodes.clone() {
        http.execute_on(&node, &format!("ALTER TABLE {local} {change}"), true).await?;
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
                return Err(ClickHouseError::Schema(format!("{what} on {node} did not finish within 120 s")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}
