//! Loading what a batch reads into the writer's state, which is a bounded cache over ClickHouse
//! (see `troupe_core::working_set`): the persons of its distinct ids, its groups, and whether its
//! client ids were stored before — a few batched queries per batch, only for what the state does
//! not hold.
//!
//! `unwritten` is what batches applied but not yet written changed: the state is the only place
//! that holds it (ClickHouse may still hold the old rows), so nothing of it is read back.

use serde::Deserialize;
use troupe_core::working_set::{Needs, Touched};
use troupe_core::ProjectState;

use crate::http::Http;
use crate::load::{person_columns, StoredGroup, StoredPerson};
use crate::rows::{GROUP_VALUES, PERSON_VALUES};
use crate::schema::latest;
use crate::ClickHouseError;

pub async fn load(
    http: &Http,
    state: &mut ProjectState,
    needs: &Needs,
    unwritten: &Touched,
) -> Result<(), ClickHouseError> {
    persons_of_distinct_ids(http, state, needs, unwritten).await?;
    groups(http, state, needs, unwritten).await?;
    client_keys(http, state, needs, unwritten).await?;
    for (group_type, key) in &needs.deleted_groups {
        if let Some(slot) = state.group_types().slot_of(group_type) {
            let filter =
                format!("has(arrayElement(membership_keys, indexOf(membership_slots, {slot})), {})", crate::quote(key));
            members(http, state, &filter, unwritten).await?;
        }
    }
    for group_type in &needs.deleted_types {
        if let Some(slot) = state.group_types().slot_of(group_type) {
            members(http, state, &format!("has(membership_slots, {slot})"), unwritten).await?;
            let groups = latest(
                "group_profiles",
                state.project_id,
                &["slot", "group_key"],
                GROUP_VALUES,
                &format!("slot = {slot}"),
            );
            restore_groups(http, state, &groups, unwritten).await?;
        }
    }
    Ok(())
}

async fn persons_of_distinct_ids(
    http: &Http,
    state: &mut ProjectState,
    needs: &Needs,
    unwritten: &Touched,
) -> Result<(), ClickHouseError> {
    let ids: Vec<String> = needs
        .distinct_ids
        .iter()
        .filter(|id| !state.holds_distinct_id(id) && !unwritten.has_distinct_id(id))
        .cloned()
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    #[derive(Deserialize)]
    struct Owner {
        person_id: String,
    }
    let project = state.project_id;
    let owners =
        latest("person_distinct_ids", project, &["distinct_id"], &["person_id"], &in_list("distinct_id", &ids));
    let owners: Vec<Owner> = http.rows(&format!("SELECT DISTINCT person_id FROM {owners}")).await?;
    if owners.is_empty() {
        return Ok(());
    }
    let persons: Vec<String> = owners.into_iter().map(|o| o.person_id).collect();
    restore_persons(http, state, &in_list("id", &persons), unwritten).await
}

/// `column IN ('a', 'b', …)`: a literal list, which every release's primary key analysis uses (18.16
/// reads the whole table for `IN (subquery)`, an external table included).
fn in_list(column: &str, values: &[String]) -> String {
    let quoted: Vec<String> = values.iter().map(|v| crate::quote(v)).collect();
    format!("{column} IN ({})", quoted.join(", "))
}

/// Every person with a membership the filter (on the latest row) names.
async fn members(
    http: &Http,
    state: &mut ProjectState,
    filter: &str,
    unwritten: &Touched,
) -> Result<(), ClickHouseError> {
    let persons = latest("persons", state.project_id, &["id"], PERSON_VALUES, "");
    let sql = format!("SELECT {} FROM {persons} WHERE {filter}", person_columns());
    let rows: Vec<StoredPerson> = http.rows(&sql).await?;
    hold_persons(state, rows, unwritten);
    Ok(())
}

async fn restore_persons(
    http: &Http,
    state: &mut ProjectState,
    key_filter: &str,
    unwritten: &Touched,
) -> Result<(), ClickHouseError> {
    let persons = latest("persons", state.project_id, &["id"], PERSON_VALUES, key_filter);
    let sql = format!("SELECT {} FROM {persons}", person_columns());
    let rows: Vec<StoredPerson> = http.rows(&sql).await?;
    hold_persons(state, rows, unwritten);
    Ok(())
}

/// Hold the persons read, except those the state holds already (current) or an unwritten batch
/// changed (deleted or merged away: ClickHouse still has the old row).
fn hold_persons(state: &mut ProjectState, rows: Vec<StoredPerson>, unwritten: &Touched) {
    for row in rows {
        match row.into_person() {
            Some(person) if state.holds_person(person.id) || unwritten.persons.contains(&person.id) => {}
            Some(person) => state.restore_person(person),
            None => tracing::warn!("skipping a person row with an invalid id"),
        }
    }
}

async fn groups(
    http: &Http,
    state: &mut ProjectState,
    needs: &Needs,
    unwritten: &Touched,
) -> Result<(), ClickHouseError> {
    let types = state.group_types();
    let mut keys: Vec<String> = Vec::new();
    for (group_type, key) in &needs.groups {
        // A type not created yet has no groups to read.
        if let Some(slot) = types.slot_of(group_type) {
            if !state.holds_group(slot, key) && !unwritten.has_group(slot, key) {
                keys.push(key.clone());
            }
        }
    }
    for key in &needs.untyped_group_keys {
        let all_held = types.all().iter().all(|t| state.holds_group(t.slot, key) || unwritten.has_group(t.slot, key));
        if !all_held {
            keys.push(key.clone());
        }
    }
    if keys.is_empty() {
        return Ok(());
    }
    keys.sort_unstable();
    keys.dedup();
    let groups =
        latest("group_profiles", state.project_id, &["slot", "group_key"], GROUP_VALUES, &in_list("group_key", &keys));
    restore_groups(http, state, &groups, unwritten).await
}

async fn restore_groups(
    http: &Http,
    state: &mut ProjectState,
    groups: &str,
    unwritten: &Touched,
) -> Result<(), ClickHouseError> {
    let sql = format!("SELECT slot, group_key, name, properties, created_at, updated_at FROM {groups}");
    let rows: Vec<StoredGroup> = http.rows(&sql).await?;
    for row in rows {
        if !state.holds_group(row.slot, &row.group_key) && !unwritten.has_group(row.slot, &row.group_key) {
            state.restore_group(row.into_group());
        }
    }
    Ok(())
}

/// Which of the batch's client id hashes were stored before: events' ids (`client_keys`, filled
/// with each insert of events) and guarded writes' ids (`retry_keys`, kept forever).
async fn client_keys(
    http: &Http,
    state: &mut ProjectState,
    needs: &Needs,
    unwritten: &Touched,
) -> Result<(), ClickHouseError> {
    let keys: Vec<String> = needs
        .client_keys
        .iter()
        .filter(|k| !state.holds_client_key(**k) && !unwritten.client_keys.contains(k))
        .map(u64::to_string)
        .collect();
    // Numbers need no quoting.
    let set = format!("({})", keys.join(", "));
    if keys.is_empty() {
        return Ok(());
    }
    #[derive(Deserialize)]
    struct Key {
        key: u64,
    }
    let project = state.project_id;
    let sql = format!(
        "SELECT key FROM client_keys WHERE project_id = {project} AND key IN {set} \
         UNION ALL SELECT key FROM retry_keys WHERE project_id = {project} AND forever = 1 AND key IN {set}"
    );
    let found: Vec<Key> = http.rows(&sql).await?;
    state.hold_client_keys(found.into_iter().map(|k| k.key));
    Ok(())
}
