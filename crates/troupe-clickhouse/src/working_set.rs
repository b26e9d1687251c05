//! Loading what a batch reads into the writer's state, which is a bounded cache over ClickHouse
//! (see `troupe_core::working_set`): the persons of its distinct ids, its groups, and whether its
//! client ids were stored before — at most four queries per project and batch, sent at once, only
//! for what the state does not hold.
//!
//! `unwritten` is what batches applied but not yet written changed: the state is the only place
//! that holds it (ClickHouse may still hold the old rows), so nothing of it is read back.
//!
//! Every lookup names its keys in a literal `IN (…)` list: 18.16's primary key analysis uses
//! those, and reads the whole table for `IN (subquery)` (an external table included).

use serde::Deserialize;
use troupe_core::working_set::{Needs, Touched};
use troupe_core::{ProjectState, PENDING_SLOT};

use crate::http::{quote, Http};
use crate::load::{person_columns, StoredGroup, StoredPerson};
use crate::rows::{GROUP_VALUES, PERSON_VALUES};
use crate::schema::latest;
use crate::ClickHouseError;

type Result<T> = std::result::Result<T, ClickHouseError>;

pub async fn load(http: &Http, state: &mut ProjectState, needs: &Needs, unwritten: &Touched) -> Result<()> {
    let ask = Ask::of(state, needs, unwritten);
    let project = state.project_id;
    let (persons, members, groups, keys) = tokio::try_join!(
        persons_of(http, project, &ask.distinct_ids),
        members(http, project, &ask.member_filters),
        groups(http, project, &ask.group_filters),
        stored_client_keys(http, project, &ask.client_keys),
    )?;
    hold_persons(state, persons.into_iter().chain(members), unwritten);
    // Groups this batch creates (named, neither held nor stored): persons waiting for their key
    // (joined without a type before any group had it) must be held to join them.
    let created: Vec<String> = ask
        .named_groups
        .iter()
        .filter(|(slot, key)| !slot.is_some_and(|slot| groups.iter().any(|g| g.slot == slot && g.group_key == *key)))
        .map(|(_, key)| key.clone())
        .collect();
    for row in groups {
        if !state.holds_group(row.slot, &row.group_key) && !unwritten.has_group(row.slot, &row.group_key) {
            state.restore_group(row.into_group());
        }
    }
    state.hold_client_keys(keys);
    if !created.is_empty() {
        let waiting = waiting_for(http, project, &created).await?;
        hold_persons(state, waiting.into_iter(), unwritten);
    }
    Ok(())
}

/// The persons who joined one of these keys without a type while no group had it. Any row
/// version that names one qualifies (a scan of three columns, no aggregation); their latest rows
/// are then read, and the state checks each still waits.
async fn waiting_for(http: &Http, project: u32, keys: &[String]) -> Result<Vec<StoredPerson>> {
    #[derive(Deserialize)]
    struct Id {
        id: String,
    }
    let quoted: Vec<String> = keys.iter().map(|k| quote(k)).collect();
    let sql = format!(
        "SELECT DISTINCT id FROM persons WHERE project_id = {project} AND has(membership_slots, {PENDING_SLOT}) \
         AND hasAny(arrayElement(membership_keys, indexOf(membership_slots, {PENDING_SLOT})), [{}])",
        quoted.join(", ")
    );
    let ids: Vec<String> = http.rows::<Id>(&sql).await?.into_iter().map(|r| r.id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let persons = latest("persons", project, &["id"], PERSON_VALUES, &in_list("id", &ids));
    http.rows(&format!("SELECT {} FROM {persons}", person_columns())).await
}

/// What to read: the batch's needs less what the state holds or an unwritten batch changed.
#[derive(Default)]
struct Ask {
    distinct_ids: Vec<String>,
    /// On the latest person row: the members of deleted groups and types.
    member_filters: Vec<String>,
    /// On `group_profiles`' keys.
    group_filters: Vec<String>,
    client_keys: Vec<u64>,
    /// Groups the batch names that the state neither holds nor changed (`None`: of a type not
    /// created yet): those not stored either are created by the batch.
    named_groups: Vec<(Option<u8>, String)>,
}

impl Ask {
    fn of(state: &ProjectState, needs: &Needs, unwritten: &Touched) -> Ask {
        let types = state.group_types();
        let distinct_ids = needs
            .distinct_ids
            .iter()
            .filter(|id| !state.holds_distinct_id(id) && !unwritten.has_distinct_id(id))
            .cloned()
            .collect();
        let mut keys: Vec<String> = Vec::new();
        let mut named_groups = Vec::new();
        for (group_type, key) in &needs.groups {
            // A type not created yet has no groups to read.
            match types.slot_of(group_type) {
                Some(slot) if !state.holds_group(slot, key) && !unwritten.has_group(slot, key) => {
                    keys.push(key.clone());
                    named_groups.push((Some(slot), key.clone()));
                }
                Some(_) => {}
                None => named_groups.push((None, key.clone())),
            }
        }
        for key in &needs.untyped_group_keys {
            if !types.all().iter().all(|t| state.holds_group(t.slot, key) || unwritten.has_group(t.slot, key)) {
                keys.push(key.clone());
            }
        }
        keys.sort_unstable();
        keys.dedup();
        let mut group_filters = Vec::new();
        if !keys.is_empty() {
            group_filters.push(in_list("group_key", &keys));
        }
        let mut member_filters = Vec::new();
        for (group_type, key) in &needs.deleted_groups {
            if let Some(slot) = types.slot_of(group_type) {
                member_filters.push(format!(
                    "has(arrayElement(membership_keys, indexOf(membership_slots, {slot})), {})",
                    quote(key)
                ));
            }
        }
        for group_type in &needs.deleted_types {
            if let Some(slot) = types.slot_of(group_type) {
                member_filters.push(format!("has(membership_slots, {slot})"));
                group_filters.push(format!("slot = {slot}"));
            }
        }
        let client_keys = needs
            .client_keys
            .iter()
            .copied()
            .filter(|k| !state.holds_client_key(*k) && !unwritten.client_keys.contains(k))
            .collect();
        Ask { distinct_ids, member_filters, group_filters, client_keys, named_groups }
    }
}

/// `column IN ('a', 'b', …)`.
fn in_list(column: &str, values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| quote(v)).collect();
    format!("{column} IN ({})", quoted.join(", "))
}

/// `(a) OR (b) …`
fn any_of(filters: &[String]) -> String {
    filters.iter().map(|f| format!("({f})")).collect::<Vec<_>>().join(" OR ")
}

/// The persons of these distinct ids: their owners in `person_distinct_ids`, then their rows.
async fn persons_of(http: &Http, project: u32, distinct_ids: &[String]) -> Result<Vec<StoredPerson>> {
    #[derive(Deserialize)]
    struct Owner {
        person_id: String,
    }
    if distinct_ids.is_empty() {
        return Ok(Vec::new());
    }
    let owners =
        latest("person_distinct_ids", project, &["distinct_id"], &["person_id"], &in_list("distinct_id", distinct_ids));
    let owners: Vec<Owner> = http.rows(&format!("SELECT DISTINCT person_id FROM {owners}")).await?;
    if owners.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = owners.into_iter().map(|o| o.person_id).collect();
    let persons = latest("persons", project, &["id"], PERSON_VALUES, &in_list("id", &ids));
    http.rows(&format!("SELECT {} FROM {persons}", person_columns())).await
}

/// Every person whose latest row passes one of the filters (a scan of `persons`: deletions only).
async fn members(http: &Http, project: u32, filters: &[String]) -> Result<Vec<StoredPerson>> {
    if filters.is_empty() {
        return Ok(Vec::new());
    }
    let persons = latest("persons", project, &["id"], PERSON_VALUES, "");
    http.rows(&format!("SELECT {} FROM {persons} WHERE {}", person_columns(), any_of(filters))).await
}

async fn groups(http: &Http, project: u32, filters: &[String]) -> Result<Vec<StoredGroup>> {
    if filters.is_empty() {
        return Ok(Vec::new());
    }
    let groups = latest("group_profiles", project, &["slot", "group_key"], GROUP_VALUES, &any_of(filters));
    http.rows(&format!("SELECT slot, group_key, name, properties, created_at, updated_at FROM {groups}")).await
}

/// Which of these client id hashes were stored before: events' ids and guarded writes' ids, both
/// in `client_keys` (the events' filled with each insert of events).
async fn stored_client_keys(http: &Http, project: u32, keys: &[u64]) -> Result<Vec<u64>> {
    #[derive(Deserialize)]
    struct Key {
        key: u64,
    }
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let set = keys.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    let sql = format!("SELECT key FROM client_keys WHERE project_id = {project} AND key IN ({set})");
    let found: Vec<Key> = http.rows(&sql).await?;
    Ok(found.into_iter().map(|k| k.key).collect())
}

/// Hold the persons read, except those the state holds already (current) or an unwritten batch
/// changed (deleted or merged away: ClickHouse still has the old row).
fn hold_persons(state: &mut ProjectState, rows: impl Iterator<Item = StoredPerson>, unwritten: &Touched) {
    for row in rows {
        match row.into_person() {
            Some(person) if state.holds_person(person.id) || unwritten.persons.contains(&person.id) => {}
            Some(person) => state.restore_person(person),
            None => tracing::warn!("skipping a person row with an invalid id"),
        }
    }
}
