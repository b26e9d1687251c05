//! The live state of one project and the application of commands to it.
//!
//! A backend keeps one `ProjectState` per project, applies commands to it in arrival order on a
//! single writer, and persists what `take_changes` reports in the same transaction as the events.
//! Applying a command either succeeds completely or changes nothing.

use std::collections::{BTreeMap, BTreeSet};

// Seeded per process like std's, several times faster on the writer's hot path.
use foldhash::HashMap;

use chrono::{DateTime, Duration, Utc};

use crate::command::{Command, Outcome, Prepared, PreparedCommand};
use crate::dedupe::{Deduper, EventIdentity, RetryRecord};
use crate::error::CoreError;
use crate::event::{resolve_timestamp, StoredEvent, TrackEvent};
use crate::group_types::{GroupType, GroupTypes, Slot};
use crate::limits::Limits;
use crate::membership::{self, MembershipOp, TypeSet};
use crate::model::{Charge, Group, Person, PersonId, ProjectId};
use crate::profile::{self, ProfileOp};
use crate::working_set::{Held, Touched};
use crate::Properties;

/// A change to charges, kept in order because `clear` and `add` do not commute.
#[derive(Debug, Clone, PartialEq)]
pub enum ChargeChange {
    Add(Charge),
    Clear(PersonId),
    /// A merge moved `from`'s charges to `to`.
    Move {
        from: PersonId,
        to: PersonId,
    },
}

/// What applying commands changed since the last `take_changes`. Entity sets name what to
/// write: the backend reads each one's final state (present → upsert, absent → delete).
#[derive(Debug, Default)]
pub struct Changes {
    pub events: Vec<StoredEvent>,
    pub persons: BTreeSet<PersonId>,
    pub distinct_ids: BTreeSet<String>,
    pub groups: BTreeSet<(Slot, String)>,
    pub group_types: BTreeSet<Slot>,
    pub charges: Vec<ChargeChange>,
    /// Slots whose type was deleted: clear that column on events stored before this batch.
    pub cleared_slots: Vec<Slot>,
    /// Distinct ids of erased persons: delete every event stored under them before this batch
    /// (this batch's own were dropped by the state).
    pub erased_distinct_ids: BTreeSet<String>,
    /// Erased persons: a backend that keeps earlier versions of rows removes every version.
    pub erased_persons: BTreeSet<PersonId>,
    /// When the last erasure of the batch was applied: events received from then on under an
    /// erased id belong to a person started afresh.
    pub erased_at: Option<DateTime<Utc>>,
    /// Anonymized persons: rewrite the stored events of their former ids.
    pub anonymized: Vec<Anonymized>,
    /// Erased groups `(slot, key)`: remove the key from that slot of stored events.
    pub detached_groups: Vec<(Slot, String)>,
    /// Erased groups whose events go too: delete stored events holding the key in that slot.
    pub erased_group_events: Vec<(Slot, String)>,
    /// Event retention: delete stored events whose time is before this.
    pub expired_before: Option<DateTime<Utc>>,
    /// Hashes of ids kept out for good ([`kept_out_key`]): persist them.
    pub kept_out: Vec<u64>,
    /// Retry keys to persist so that a resend after a restart is still recognised.
    pub retry_keys: Vec<RetryRecord>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.persons.is_empty()
            && self.distinct_ids.is_empty()
            && self.groups.is_empty()
            && self.group_types.is_empty()
            && self.charges.is_empty()
            && self.cleared_slots.is_empty()
            && self.erased_distinct_ids.is_empty()
            && self.erased_persons.is_empty()
            && self.anonymized.is_empty()
            && self.detached_groups.is_empty()
            && self.erased_group_events.is_empty()
            && self.expired_before.is_none()
            && self.kept_out.is_empty()
            && self.retry_keys.is_empty()
    }

    /// Whether the changes delete or rewrite events stored before (erasures, anonymizations,
    /// erased groups, retention), beyond appending this batch's and clearing a deleted type's
    /// slot: a backend holding events elsewhere too (the embedded store's columns) reads them
    /// again.
    pub fn rewrites_stored_events(&self) -> bool {
        !self.erased_distinct_ids.is_empty()
            || !self.anonymized.is_empty()
            || !self.detached_groups.is_empty()
            || !self.erased_group_events.is_empty()
            || self.expired_before.is_some()
    }

    /// Whether stored events change at all: [`Changes::rewrites_stored_events`], or a deleted
    /// type's slot cleared on them. A copy of the stored events (a snapshot) is out of step.
    pub fn changes_stored_events(&self) -> bool {
        self.rewrites_stored_events() || !self.cleared_slots.is_empty()
    }
}

/// An anonymization to apply to events stored before the batch: every event of `former_ids`
/// gets `pseudonym` as its distinct id and loses the properties named in `personal_fields`.
/// A backend that keeps earlier versions of rows removes those of the former ids and of the
/// person (`person` keeps its id; only its latest row is its anonymous profile).
#[derive(Debug, Clone, PartialEq)]
pub struct Anonymized {
    pub person: PersonId,
    pub former_ids: Vec<String>,
    pub pseudonym: String,
    pub personal_fields: Vec<String>,
}

impl Anonymized {
    /// Event properties (JSON text of an object) without the personal fields; the text as it is
    /// when it names none of them (or is not an object).
    pub fn scrub_properties(&self, properties_json: &str) -> Option<String> {
        scrub_properties(properties_json, &self.personal_fields)
    }
}

/// `properties_json` without the top-level keys in `fields`; `None` when nothing changes.
pub fn scrub_properties(properties_json: &str, fields: &[String]) -> Option<String> {
    if !fields.iter().any(|f| properties_json.contains(f.as_str())) {
        return None;
    }
    let mut properties: Properties = serde_json::from_str(properties_json).ok()?;
    let before = properties.len();
    properties.retain(|key, _| !fields.contains(key));
    (properties.len() != before).then(|| crate::command::properties_json(&properties))
}

/// The hash an id kept out for good is stored as (the id itself is not kept).
pub fn kept_out_key(distinct_id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64_with_seed(distinct_id.as_bytes(), 0x6b65_7074_6f75_7421)
}

/// The pseudonym an anonymized person's ids become: stable for the person (anonymizing twice
/// gives the same one) and telling nothing about the former ids.
pub fn pseudonym(person: PersonId) -> String {
    format!("anonymized-{:016x}", xxhash_rust::xxh3::xxh3_64(person.to_string().as_bytes()))
}

pub struct ProjectState {
    pub project_id: ProjectId,
    pub limits: Limits,
    group_types: GroupTypes,
    persons: HashMap<PersonId, Person>,
    distinct_ids: HashMap<String, PersonId>,
    /// Per slot, so a lookup by key needs no owned copy of it.
    groups: HashMap<Slot, HashMap<String, Group>>,
    /// Per pending untyped key, the held persons who joined it ([`Person::pending_groups`]);
    /// entries may be stale (the person merged, erased or joined since), each is checked on use.
    pending_members: HashMap<String, Vec<PersonId>>,
    dedupe: Deduper,
    /// Hashes of the ids of persons erased for good: writes naming one are dropped.
    kept_out: std::collections::HashSet<u64>,
    changes: Changes,
}

impl ProjectState {
    pub fn new(project_id: ProjectId, limits: Limits, dedupe_window: Duration) -> Self {
        ProjectState {
            project_id,
            limits,
            group_types: GroupTypes::default(),
            persons: HashMap::default(),
            distinct_ids: HashMap::default(),
            groups: HashMap::default(),
            pending_members: HashMap::default(),
            dedupe: Deduper::new(dedupe_window),
            kept_out: std::collections::HashSet::new(),
            changes: Changes::default(),
        }
    }

    // ---- loading persisted state (no changes recorded) ----

    pub fn restore_group_types(&mut self, types: Vec<GroupType>) {
        self.group_types = GroupTypes::from_types(types);
    }

    pub fn restore_person(&mut self, person: Person) {
        for id in &person.distinct_ids {
            self.distinct_ids.insert(id.clone(), person.id);
        }
        self.index_pending(&person);
        self.persons.insert(person.id, person);
    }

    fn index_pending(&mut self, person: &Person) {
        for key in &person.pending_groups {
            self.pending_members.entry(key.clone()).or_default().push(person.id);
        }
    }

    pub fn restore_group(&mut self, group: Group) {
        self.groups.entry(group.slot).or_default().insert(group.key.clone(), group);
    }

    /// Ids kept out for good, as persisted ([`Changes::kept_out`]).
    pub fn restore_kept_out(&mut self, keys: impl IntoIterator<Item = u64>) {
        self.kept_out.extend(keys);
    }

    pub fn restore_dedup_keys(&mut self, keys: Vec<u64>) {
        self.dedupe.load(keys);
    }

    /// Persisted retry records ([`Changes::retry_keys`]), as of `now`.
    pub fn restore_retry_keys(&mut self, records: Vec<RetryRecord>, now: DateTime<Utc>) {
        self.dedupe.load_records(records, now);
    }

    // ---- reads ----

    pub fn group_types(&self) -> &GroupTypes {
        &self.group_types
    }

    pub fn person(&self, id: PersonId) -> Option<&Person> {
        self.persons.get(&id)
    }

    pub fn person_by_distinct_id(&self, distinct_id: &str) -> Option<&Person> {
        self.distinct_ids.get(distinct_id).and_then(|id| self.persons.get(id))
    }

    pub fn group(&self, slot: Slot, key: &str) -> Option<&Group> {
        self.groups.get(&slot).and_then(|groups| groups.get(key))
    }

    /// A person's memberships keyed by group type name.
    pub fn memberships_by_type(&self, person: &Person) -> BTreeMap<String, Vec<String>> {
        person
            .memberships
            .iter()
            .filter_map(|(slot, ids)| {
                let t = self.group_types.by_slot(*slot)?;
                Some((t.name.clone(), ids.clone()))
            })
            .collect()
    }

    // ---- a state held as a cache (see `working_set`) ----

    /// Whether the state holds this distinct id's person (or knows the id is gone).
    pub fn holds_distinct_id(&self, distinct_id: &str) -> bool {
        self.distinct_ids.contains_key(distinct_id)
    }

    pub fn holds_person(&self, id: PersonId) -> bool {
        self.persons.contains_key(&id)
    }

    pub fn holds_group(&self, slot: Slot, key: &str) -> bool {
        self.group(slot, key).is_some()
    }

    /// Client id hashes a backend found stored before.
    pub fn hold_client_keys(&mut self, keys: impl IntoIterator<Item = u64>) {
        self.dedupe.hold_client_keys(keys);
    }

    pub fn holds_client_key(&self, key: u64) -> bool {
        self.dedupe.holds_client_key(key)
    }

    pub fn held(&self) -> Held {
        Held {
            persons: self.persons.len(),
            groups: self.groups.values().map(HashMap::len).sum(),
            client_keys: self.dedupe.client_keys_held(),
        }
    }

    /// Forget every person, group and client id hash except what `keep` names (and the persons
    /// its distinct ids belong to, each with all of its ids). Group types, pending changes and
    /// the retry window's content keys stay.
    pub fn evict_except(&mut self, keep: &Touched) {
        let mut persons: BTreeSet<PersonId> = keep.persons.clone();
        persons.extend(keep.distinct_ids.iter().filter_map(|id| self.distinct_ids.get(id).copied()));
        let mut kept_persons = HashMap::default();
        let mut kept_ids = HashMap::default();
        for id in persons {
            if let Some(person) = self.persons.remove(&id) {
                for distinct_id in &person.distinct_ids {
                    kept_ids.insert(distinct_id.clone(), id);
                }
                kept_persons.insert(id, person);
            }
        }
        self.persons = kept_persons;
        self.distinct_ids = kept_ids;
        self.pending_members.clear();
        for person in self.persons.values() {
            for key in &person.pending_groups {
                self.pending_members.entry(key.clone()).or_default().push(person.id);
            }
        }
        let mut kept_groups: HashMap<Slot, HashMap<String, Group>> = HashMap::default();
        for (slot, key) in &keep.groups {
            if let Some(group) = self.groups.get_mut(slot).and_then(|groups| groups.remove(key)) {
                kept_groups.entry(*slot).or_default().insert(key.clone(), group);
            }
        }
        self.groups = kept_groups;
        self.dedupe.retain_client_keys(keep.client_keys.iter().copied());
    }

    /// Every way the state breaks its own rules, described; empty when it holds them all. The
    /// property tests run random command sequences and check this after each command:
    /// - every distinct id belongs to a person that lists it, and every listed id maps back;
    /// - memberships name existing group types, hold no id twice, and are never empty lists;
    /// - groups sit under their own type's slot and key, and that type exists;
    /// - pending events name existing group types in their attribution.
    pub fn invariant_violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (id, person_id) in &self.distinct_ids {
            match self.persons.get(person_id) {
                None => out.push(format!("distinct id {id:?} maps to missing person {person_id}")),
                Some(p) if !p.distinct_ids.contains(id) => {
                    out.push(format!("person {person_id} does not list its distinct id {id:?}"))
                }
                Some(_) => {}
            }
        }
        for (person_id, person) in &self.persons {
            if person.id != *person_id {
                out.push(format!("person {} is stored under {person_id}", person.id));
            }
            for id in &person.distinct_ids {
                if self.distinct_ids.get(id) != Some(person_id) {
                    out.push(format!("person {person_id} lists {id:?}, which maps elsewhere"));
                }
            }
            for (slot, ids) in &person.memberships {
                if self.group_types.by_slot(*slot).is_none() {
                    out.push(format!("person {person_id} is a member in missing slot {slot}"));
                }
                if ids.is_empty() {
                    out.push(format!("person {person_id} has an empty membership list in slot {slot}"));
                }
                if ids.iter().enumerate().any(|(i, id)| ids[..i].contains(id)) {
                    out.push(format!("person {person_id} lists a group twice in slot {slot}: {ids:?}"));
                }
            }
            for slot in person.replaced_at.keys() {
                if !person.memberships.contains_key(slot) {
                    out.push(format!("person {person_id} has a set_group time for slot {slot} without groups"));
                }
            }
        }
        for (slot, groups) in &self.groups {
            if !groups.is_empty() && self.group_types.by_slot(*slot).is_none() {
                out.push(format!("groups under missing slot {slot}"));
            }
            for (key, group) in groups {
                if group.slot != *slot || group.key != *key {
                    out.push(format!("group ({}, {:?}) stored under ({slot}, {key:?})", group.slot, group.key));
                }
            }
        }
        for event in &self.changes.events {
            for slot in event.groups.keys() {
                if self.group_types.by_slot(*slot).is_none() && !self.changes.cleared_slots.contains(slot) {
                    out.push(format!("event {} is attributed in missing slot {slot}", event.uuid));
                }
            }
        }
        out
    }

    /// Room for `n` more events in the pending changes, reserved at once: growing the list by
    /// doubling moved every event again (a twelfth of the writer's time in a bulk import).
    pub fn reserve_events(&mut self, n: usize) {
        self.changes.events.reserve(n);
    }

    /// Hand the accumulated changes to the backend.
    pub fn take_changes(&mut self) -> Changes {
        std::mem::take(&mut self.changes)
    }

    // ---- writes ----

    /// Apply one command at server time `now`.
    pub fn apply(&mut self, command: impl Into<PreparedCommand>, now: DateTime<Utc>) -> Result<Outcome, CoreError> {
        let command = match command.into().0 {
            Prepared::Track(event, properties_json) => {
                if self.is_kept_out(&event.distinct_id) {
                    return Ok(Outcome::Dropped);
                }
                return self.track(event, properties_json, now);
            }
            Prepared::Other(command) => command,
        };
        // An erasure itself goes through (it may be repeated); any other write naming an id kept
        // out is dropped.
        if !matches!(command, Command::ErasePerson { .. })
            && command.distinct_ids().iter().any(|id| self.is_kept_out(id))
        {
            return Ok(Outcome::Dropped);
        }
        match command {
            // `From<Command>` always prepares a track; this arm only keeps the match whole.
            track @ Command::Track(_) => self.apply(track, now),
            Command::Identify { anon_distinct_id, distinct_id } => {
                self.check_id("distinct_id", &distinct_id)?;
                self.check_id("anon_distinct_id", &anon_distinct_id)?;
                Ok(self.link(&distinct_id, &anon_distinct_id, true, now))
            }
            Command::Alias { distinct_id, alias } => {
                self.check_id("distinct_id", &distinct_id)?;
                self.check_id("alias", &alias)?;
                self.link(&distinct_id, &alias, false, now);
                Ok(Outcome::Applied)
            }
            Command::PersonProfile { distinct_id, op } => self.person_profile(&distinct_id, &op, now),
            Command::TrackCharge { distinct_id, amount, properties, time } => {
                self.check_id("distinct_id", &distinct_id)?;
                self.limits.check_properties("properties", &properties)?;
                if !amount.is_finite() {
                    return Err(CoreError::invalid("amount", "must be a finite number"));
                }
                if time.is_some_and(|t| !crate::event::in_time_range(t)) {
                    return Err(CoreError::invalid("time", format!("is out of range: {}", crate::event::TIME_RANGE)));
                }
                let person_id = self.ensure_person(&distinct_id, now, now);
                let time = time.unwrap_or(now);
                self.changes.charges.push(ChargeChange::Add(Charge { person_id, amount, properties, time }));
                Ok(Outcome::Applied)
            }
            Command::ErasePerson { distinct_id, keep_out } => {
                self.check_id("distinct_id", &distinct_id)?;
                let ids = self.erase_person(&distinct_id);
                self.changes.erased_at = Some(now);
                if keep_out {
                    for id in ids {
                        let key = kept_out_key(&id);
                        if self.kept_out.insert(key) {
                            self.changes.kept_out.push(key);
                        }
                    }
                }
                Ok(Outcome::Applied)
            }
            Command::AnonymizePerson { distinct_id, personal_fields } => {
                self.check_id("distinct_id", &distinct_id)?;
                for field in &personal_fields {
                    self.check_id("personal_fields", field)?;
                }
                self.anonymize_person(&distinct_id, personal_fields, now);
                Ok(Outcome::Applied)
            }
            Command::ClearCharges { distinct_id } => {
                if let Some(person_id) = self.distinct_ids.get(&distinct_id).copied() {
                    self.changes.charges.push(ChargeChange::Clear(person_id));
                }
                Ok(Outcome::Applied)
            }
            Command::Membership { distinct_id, group_type, op } => self.membership(&distinct_id, &group_type, &op, now),
            Command::JoinUntypedGroups { distinct_id, group_keys } => self.join_untyped(&distinct_id, &group_keys, now),
            Command::GroupProfile { group_type, group_key, name, op } => {
                self.group_profile(&group_type, &group_key, name, &op, now)
            }
            Command::EraseGroup { group_type, group_key, with_events } => {
                self.check_id("group_type", &group_type)?;
                self.check_id("group_key", &group_key)?;
                if let Some(slot) = self.group_types.slot_of(&group_type) {
                    self.erase_group(slot, &group_key, with_events);
                }
                Ok(Outcome::Applied)
            }
            Command::ExpireEvents { before } => {
                self.changes.events.retain(|e| e.timestamp >= before);
                self.changes.expired_before = self.changes.expired_before.max(Some(before));
                Ok(Outcome::Applied)
            }
            Command::RenameGroupType { from, to } => {
                self.check_id("name", &to)?;
                let slot = self.group_types.rename(&from, &to)?;
                self.changes.group_types.insert(slot);
                Ok(Outcome::Applied)
            }
            Command::SetGroupTypeDisplayName { group_type, display_name } => {
                self.check_id("display_name", &display_name)?;
                let slot = self.group_types.set_display_name(&group_type, &display_name)?;
                self.changes.group_types.insert(slot);
                Ok(Outcome::Applied)
            }
            Command::DeleteGroupType { group_type } => self.delete_group_type(&group_type),
            Command::Once { retry, guarded } => {
                let identity = EventIdentity::of_command(&retry, &guarded);
                if self.dedupe.is_duplicate(identity, now) {
                    return Ok(Outcome::Duplicate);
                }
                let outcome = self.apply(*guarded, now)?;
                self.dedupe.record(identity, now);
                self.changes.retry_keys.push(identity.record(now));
                Ok(outcome)
            }
        }
    }

    fn check_id(&self, field: &str, id: &str) -> Result<(), CoreError> {
        self.limits.check_id(field, id)
    }

    /// Store an event whose properties come as JSON text (its map is not read).
    fn track(&mut self, event: TrackEvent, properties_json: String, now: DateTime<Utc>) -> Result<Outcome, CoreError> {
        self.limits.check_event_name("event", &event.event)?;
        self.check_id("distinct_id", &event.distinct_id)?;
        if let Some(id) = &event.id {
            self.check_id("uuid", id)?;
        }
        self.limits.check_json_len("properties", properties_json.len())?;
        let identity = EventIdentity::of(&event, &properties_json);
        if self.dedupe.is_duplicate(identity, now) {
            return Ok(Outcome::Duplicate);
        }

        // New group types are created on a copy so a limit error leaves no new type behind; the
        // copy is made only when the event names a type not seen before.
        let mut new_types: Option<GroupTypes> = None;
        let mut slots = Vec::with_capacity(event.groups.len());
        for (group_type, ids) in &event.groups {
            self.check_id("group_type", group_type)?;
            for id in ids {
                self.check_id("group_key", id)?;
            }
            let known = new_types.as_ref().unwrap_or(&self.group_types).slot_of(group_type);
            slots.push(match known {
                Some(slot) => slot,
                None => {
                    new_types
                        .get_or_insert_with(|| self.group_types.clone())
                        .resolve_or_create("group_type", group_type, self.limits.max_group_types)?
                        .0
                }
            });
        }
        for id in &event.untyped_groups {
            self.check_id("groups", id)?;
        }
        if let Some(types) = new_types {
            self.commit_group_types(types);
        }

        // Checked: from here the event is stored, and its parts are moved, not copied.
        let TrackEvent { event: name, distinct_id, id, timestamp, sent_at, groups: named, untyped_groups, .. } = event;
        let timestamp = resolve_timestamp(timestamp, sent_at, now);
        let person_id = self.ensure_person(&distinct_id, timestamp, now);
        let mut untyped_groups = untyped_groups;
        let mut groups = match self.persons.get(&person_id) {
            Some(person) => {
                // Keys joined without a type and no group yet are attributed untyped, like the
                // OpenPanel SDK's own `groups`: a group created later still gets the event.
                for key in &person.pending_groups {
                    if !untyped_groups.contains(key) {
                        untyped_groups.push(key.clone());
                    }
                }
                person.memberships.clone()
            }
            None => Default::default(),
        };
        // Ids named on the event replace the membership of their type; a type named twice
        // gets the ids of both, each once, in order.
        let mut named_slots: Vec<Slot> = Vec::with_capacity(slots.len());
        for (slot, (_, mut ids)) in slots.into_iter().zip(named) {
            if named_slots.contains(&slot) {
                let merged = groups.entry(slot).or_default();
                for id in ids {
                    if !merged.contains(&id) {
                        merged.push(id);
                    }
                }
            } else {
                named_slots.push(slot);
                let mut i = 0;
                while i < ids.len() {
                    if ids[..i].contains(&ids[i]) {
                        ids.remove(i);
                    } else {
                        i += 1;
                    }
                }
                groups.insert(slot, ids);
            }
        }
        for slot in named_slots {
            for id in groups.get(&slot).map(Vec::as_slice).unwrap_or_default() {
                self.ensure_group(slot, id, now);
            }
        }
        groups.retain(|_, ids| !ids.is_empty());

        let uuid = id.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
        self.dedupe.record(identity, now);
        if identity.persisted_key().is_none() {
            self.changes.retry_keys.push(identity.record(now));
        }
        self.changes.events.push(StoredEvent {
            uuid: uuid.clone(),
            dedup_key: identity.persisted_key(),
            event: name,
            distinct_id,
            timestamp,
            received_at: now,
            properties_json,
            groups,
            untyped_groups,
        });
        Ok(Outcome::Stored { uuid })
    }

    fn person_profile(&mut self, distinct_id: &str, op: &ProfileOp, now: DateTime<Utc>) -> Result<Outcome, CoreError> {
        self.check_id("distinct_id", distinct_id)?;
        if *op == ProfileOp::Delete {
            self.delete_person(distinct_id);
            return Ok(Outcome::Applied);
        }
        self.limits.check_json_size("properties", &op.payload())?;
        // Compute on a copy first: a failing op must not even create the person.
        let mut props = self.person_by_distinct_id(distinct_id).map(|p| p.properties.clone()).unwrap_or_default();
        let changed = profile::apply(&mut props, op)?;
        let person_id = self.ensure_person(distinct_id, now, now);
        if changed {
            if let Some(person) = self.persons.get_mut(&person_id) {
                person.properties = props;
                person.updated_at = now;
            }
            self.changes.persons.insert(person_id);
        }
        Ok(Outcome::Applied)
    }

    fn delete_person(&mut self, distinct_id: &str) {
        let Some(person_id) = self.distinct_ids.get(distinct_id).copied() else {
            return;
        };
        if let Some(person) = self.persons.remove(&person_id) {
            for id in person.distinct_ids {
                self.distinct_ids.remove(&id);
                self.changes.distinct_ids.insert(id);
            }
        }
        self.changes.persons.insert(person_id);
        self.changes.charges.push(ChargeChange::Clear(person_id));
    }

    /// Delete the person (as a profile delete does) and mark every one of its ids' events for
    /// erasure, dropping those still pending in this batch.
    fn erase_person(&mut self, distinct_id: &str) -> Vec<String> {
        let ids = match self.person_by_distinct_id(distinct_id) {
            Some(person) => {
                let (id, ids) = (person.id, person.distinct_ids.clone());
                self.changes.erased_persons.insert(id);
                ids
            }
            None => vec![distinct_id.to_string()],
        };
        self.delete_person(distinct_id);
        self.changes.events.retain(|e| !ids.contains(&e.distinct_id));
        self.changes.erased_distinct_ids.extend(ids.iter().cloned());
        ids
    }

    fn is_kept_out(&self, distinct_id: &str) -> bool {
        !self.kept_out.is_empty() && self.kept_out.contains(&kept_out_key(distinct_id))
    }

    /// Replace a person's ids by its pseudonym and empty its profile; pending events of its ids
    /// are rewritten here, stored ones by the backend ([`Changes::anonymized`]). An unknown id
    /// changes nothing (there is nobody to anonymize).
    fn anonymize_person(&mut self, distinct_id: &str, personal_fields: Vec<String>, now: DateTime<Utc>) {
        let Some(person_id) = self.distinct_ids.get(distinct_id).copied() else {
            return;
        };
        let pseudonym = pseudonym(person_id);
        let Some(person) = self.persons.get_mut(&person_id) else {
            return;
        };
        let former_ids: Vec<String> = person.distinct_ids.iter().filter(|id| **id != pseudonym).cloned().collect();
        person.distinct_ids = vec![pseudonym.clone()];
        person.properties = Properties::new();
        person.updated_at = now;
        for id in &former_ids {
            self.distinct_ids.remove(id);
            self.changes.distinct_ids.insert(id.clone());
        }
        self.distinct_ids.insert(pseudonym.clone(), person_id);
        self.changes.distinct_ids.insert(pseudonym.clone());
        self.changes.persons.insert(person_id);
        for event in self.changes.events.iter_mut().filter(|e| former_ids.contains(&e.distinct_id)) {
            event.distinct_id = pseudonym.clone();
            if let Some(scrubbed) = scrub_properties(&event.properties_json, &personal_fields) {
                event.properties_json = scrubbed;
            }
        }
        self.changes.anonymized.push(Anonymized { person: person_id, former_ids, pseudonym, personal_fields });
    }

    fn membership(
        &mut self,
        distinct_id: &str,
        group_type: &str,
        op: &MembershipOp,
        now: DateTime<Utc>,
    ) -> Result<Outcome, CoreError> {
        self.check_id("distinct_id", distinct_id)?;
        self.check_id("group_type", group_type)?;
        for id in op.joined_ids() {
            self.check_id("group_key", id)?;
        }
        if let MembershipOp::Remove(id) = op {
            self.check_id("group_key", id)?;
        }
        let mut types = self.group_types.clone();
        let (slot, _) = types.resolve_or_create("group_type", group_type, self.limits.max_group_types)?;
        self.commit_group_types(types);

        let person_id = self.ensure_person(distinct_id, now, now);
        for id in op.joined_ids() {
            self.ensure_group(slot, id, now);
        }
        if let Some(person) = self.persons.get_mut(&person_id) {
            let ids = person.memberships.entry(slot).or_default();
            let mut changed = membership::apply(ids, op);
            if ids.is_empty() {
                person.forget_type(slot);
            } else if matches!(op, MembershipOp::Set(_)) && (changed || !person.replaced_at.contains_key(&slot)) {
                // When a set_group last changed the set (or first stated it whole): a repeated
                // identical set_group (Segment's `group` on every page) writes nothing.
                person.replaced_at.insert(slot, now);
                changed = true;
            }
            if changed {
                person.updated_at = now;
                self.changes.persons.insert(person_id);
            }
        }
        Ok(Outcome::Applied)
    }

    fn join_untyped(&mut self, distinct_id: &str, keys: &[String], now: DateTime<Utc>) -> Result<Outcome, CoreError> {
        self.check_id("distinct_id", distinct_id)?;
        for key in keys {
            self.check_id("group_key", key)?;
        }
        let person_id = self.ensure_person(distinct_id, now, now);
        let targets: Vec<(Slot, String)> = keys
            .iter()
            .flat_map(|key| {
                let slots: Vec<Slot> = self.group_types.all().iter().map(|t| t.slot).collect();
                slots.into_iter().filter(|slot| self.group(*slot, key).is_some()).map(|slot| (slot, key.clone()))
            })
            .collect();
        // A key no group has yet waits for the first group created with it (DESIGN.md §4).
        let pending: Vec<&String> =
            keys.iter().filter(|key| !targets.iter().any(|(_, joined)| joined == *key)).collect();
        if let Some(person) = self.persons.get_mut(&person_id) {
            for (slot, key) in targets {
                if membership::apply(person.memberships.entry(slot).or_default(), &MembershipOp::Add(key)) {
                    person.updated_at = now;
                    self.changes.persons.insert(person_id);
                }
            }
            for key in pending {
                if !person.pending_groups.contains(key) {
                    person.pending_groups.push(key.clone());
                    person.updated_at = now;
                    self.changes.persons.insert(person_id);
                    self.pending_members.entry(key.clone()).or_default().push(person_id);
                }
            }
        }
        Ok(Outcome::Applied)
    }

    fn group_profile(
        &mut self,
        group_type: &str,
        group_key: &str,
        name: Option<String>,
        op: &ProfileOp,
        now: DateTime<Utc>,
    ) -> Result<Outcome, CoreError> {
        self.check_id("group_type", group_type)?;
        self.check_id("group_key", group_key)?;
        if *op == ProfileOp::Delete {
            if let Some(slot) = self.group_types.slot_of(group_type) {
                self.delete_group(slot, group_key);
            }
            return Ok(Outcome::Applied);
        }
        self.limits.check_json_size("properties", &op.payload())?;
        if let Some(name) = &name {
            self.check_id("name", name)?;
        }
        let existing = self.group_types.slot_of(group_type).and_then(|slot| self.group(slot, group_key));
        let mut props = existing.map(|g| g.properties.clone()).unwrap_or_default();
        let changed = profile::apply(&mut props, op)?;

        let mut types = self.group_types.clone();
        let (slot, _) = types.resolve_or_create("group_type", group_type, self.limits.max_group_types)?;
        self.commit_group_types(types);
        self.ensure_group(slot, group_key, now);
        if let Some(group) = self.groups.get_mut(&slot).and_then(|groups| groups.get_mut(group_key)) {
            let name_from_props = props.get("name").and_then(|v| v.as_str()).map(String::from);
            let new_name = name.or(name_from_props).or_else(|| group.name.clone());
            if changed || new_name != group.name {
                group.properties = props;
                group.name = new_name;
                group.updated_at = now;
                self.changes.groups.insert((slot, group_key.to_string()));
            }
        }
        Ok(Outcome::Applied)
    }

    /// Remove a group's profile and every membership in it; events keep their stamped ids.
    fn delete_group(&mut self, slot: Slot, key: &str) {
        if self.groups.get_mut(&slot).and_then(|groups| groups.remove(key)).is_some() {
            self.changes.groups.insert((slot, key.to_string()));
        }
        for person in self.persons.values_mut() {
            if let Some(ids) = person.memberships.get_mut(&slot) {
                if membership::apply(ids, &MembershipOp::Remove(key.to_string())) {
                    if ids.is_empty() {
                        person.forget_type(slot);
                    }
                    self.changes.persons.insert(person.id);
                }
            }
        }
    }

    /// Delete the group (profile, memberships) and take it off events: pending ones here, stored
    /// ones by the backend ([`Changes::detached_groups`] or [`Changes::erased_group_events`]).
    fn erase_group(&mut self, slot: Slot, key: &str, with_events: bool) {
        self.delete_group(slot, key);
        let holds = |e: &StoredEvent| e.groups.get(&slot).is_some_and(|ids| ids.iter().any(|id| id == key));
        if with_events {
            self.changes.events.retain(|e| !holds(e));
            self.changes.erased_group_events.push((slot, key.to_string()));
        } else {
            for event in self.changes.events.iter_mut() {
                if let Some(ids) = event.groups.get_mut(&slot) {
                    ids.retain(|id| id != key);
                    if ids.is_empty() {
                        event.groups.remove(&slot);
                    }
                }
            }
            self.changes.detached_groups.push((slot, key.to_string()));
        }
    }

    fn delete_group_type(&mut self, group_type: &str) -> Result<Outcome, CoreError> {
        let Some(removed) = self.group_types.remove(group_type) else {
            return Err(CoreError::invalid("group_type", format!("no group type '{group_type}'")));
        };
        let slot = removed.slot;
        let keys: Vec<String> =
            self.groups.get(&slot).map(|groups| groups.keys().cloned().collect()).unwrap_or_default();
        for key in keys {
            self.delete_group(slot, &key);
        }
        for person in self.persons.values_mut() {
            if person.memberships.contains_key(&slot) {
                person.forget_type(slot);
                self.changes.persons.insert(person.id);
            }
        }
        // Events still pending in this batch lose the slot too, so a type created later in the
        // same slot never inherits them.
        for event in &mut self.changes.events {
            event.groups.remove(&slot);
        }
        self.changes.cleared_slots.push(slot);
        self.changes.group_types.insert(slot);
        Ok(Outcome::Applied)
    }

    /// Link two distinct ids as one person (identify when `identify` is set, else alias).
    /// `primary` is the id that survives as the person's main id.
    fn link(&mut self, primary: &str, other: &str, identify: bool, now: DateTime<Utc>) -> Outcome {
        let primary_person = self.distinct_ids.get(primary).copied();
        let other_person = self.distinct_ids.get(other).copied();
        let other_identified = other_person.and_then(|id| self.persons.get(&id)).is_some_and(|p| p.identified);
        let (person_id, merged) = match (primary_person, other_person) {
            (None, None) => {
                let id = self.ensure_person(primary, now, now);
                self.attach(id, other);
                (id, true)
            }
            (Some(p), None) => {
                self.attach(p, other);
                (p, true)
            }
            // The other id's person is someone already identified: the primary id is a
            // different user (a second account on the same device) and gets its own person.
            (None, Some(_)) if identify && other_identified && primary != other => {
                (self.ensure_person(primary, now, now), false)
            }
            (None, Some(o)) => {
                self.attach(o, primary);
                (o, true)
            }
            (Some(p), Some(o)) if p == o => (p, true),
            (Some(p), Some(_)) if other_identified => (p, false),
            (Some(p), Some(o)) => {
                self.merge(o, p, now);
                (p, true)
            }
        };
        if identify {
            if let Some(person) = self.persons.get_mut(&person_id) {
                if !person.identified {
                    person.identified = true;
                    self.changes.persons.insert(person_id);
                }
            }
        }
        let group_memberships = self.persons.get(&person_id).map(|p| self.memberships_by_type(p)).unwrap_or_default();
        Outcome::Identified { distinct_id: primary.to_string(), person_id, merged, group_memberships }
    }

    fn attach(&mut self, person_id: PersonId, distinct_id: &str) {
        if let Some(person) = self.persons.get_mut(&person_id) {
            if !person.distinct_ids.iter().any(|d| d == distinct_id) {
                person.distinct_ids.push(distinct_id.to_string());
            }
        }
        self.distinct_ids.insert(distinct_id.to_string(), person_id);
        self.changes.distinct_ids.insert(distinct_id.to_string());
        self.changes.persons.insert(person_id);
    }

    /// Merge person `from` into `into`: ids move, `into`'s properties win and `from` fills what
    /// `into` lacks, memberships merge per type ([`membership::merge`]), charges follow.
    fn merge(&mut self, from: PersonId, into: PersonId, now: DateTime<Utc>) {
        let Some(source) = self.persons.remove(&from) else {
            return;
        };
        self.changes.persons.insert(from);
        for id in &source.distinct_ids {
            self.distinct_ids.insert(id.clone(), into);
            self.changes.distinct_ids.insert(id.clone());
        }
        if let Some(target) = self.persons.get_mut(&into) {
            for id in source.distinct_ids {
                if !target.distinct_ids.contains(&id) {
                    target.distinct_ids.push(id);
                }
            }
            for (key, value) in source.properties {
                target.properties.entry(key).or_insert(value);
            }
            for (slot, ids) in source.memberships {
                let merged = TypeSet { ids, replaced_at: source.replaced_at.get(&slot).copied() };
                let kept = TypeSet {
                    ids: target.memberships.remove(&slot).unwrap_or_default(),
                    replaced_at: target.replaced_at.get(&slot).copied(),
                };
                let result = membership::merge(kept, merged);
                target.memberships.insert(slot, result.ids);
                match result.replaced_at {
                    Some(at) => target.replaced_at.insert(slot, at),
                    None => target.replaced_at.remove(&slot),
                };
            }
            for key in source.pending_groups {
                if !target.pending_groups.contains(&key) {
                    target.pending_groups.push(key.clone());
                    self.pending_members.entry(key).or_default().push(into);
                }
            }
            target.identified |= source.identified;
            target.created_at = target.created_at.min(source.created_at);
            target.updated_at = now;
        }
        self.changes.persons.insert(into);
        self.changes.charges.push(ChargeChange::Move { from, to: into });
    }

    /// The person of `distinct_id`, created when unknown (first seen at `seen_at`).
    fn ensure_person(&mut self, distinct_id: &str, seen_at: DateTime<Utc>, now: DateTime<Utc>) -> PersonId {
        if let Some(id) = self.distinct_ids.get(distinct_id) {
            let id = *id;
            // A historical event earlier than the person's creation moves "first seen" back.
            if let Some(person) = self.persons.get_mut(&id) {
                if seen_at < person.created_at {
                    person.created_at = seen_at;
                    self.changes.persons.insert(id);
                }
            }
            return id;
        }
        let id = PersonId::new();
        let mut person = Person::new(id, seen_at.min(now));
        person.updated_at = now;
        person.distinct_ids.push(distinct_id.to_string());
        self.persons.insert(id, person);
        self.distinct_ids.insert(distinct_id.to_string(), id);
        self.changes.persons.insert(id);
        self.changes.distinct_ids.insert(distinct_id.to_string());
        id
    }

    fn ensure_group(&mut self, slot: Slot, key: &str, now: DateTime<Utc>) {
        let groups = self.groups.entry(slot).or_default();
        if !groups.contains_key(key) {
            groups.insert(
                key.to_string(),
                Group {
                    slot,
                    key: key.to_string(),
                    name: None,
                    properties: Properties::new(),
                    created_at: now,
                    updated_at: now,
                },
            );
            self.changes.groups.insert((slot, key.to_string()));
            self.join_pending(slot, key, now);
        }
    }

    /// The persons waiting for a group with `key` (joined without a type) join this new group.
    fn join_pending(&mut self, slot: Slot, key: &str, now: DateTime<Utc>) {
        let Some(waiting) = self.pending_members.remove(key) else {
            return;
        };
        for person_id in waiting {
            let Some(person) = self.persons.get_mut(&person_id) else {
                continue;
            };
            let Some(at) = person.pending_groups.iter().position(|k| k == key) else {
                continue;
            };
            person.pending_groups.remove(at);
            membership::apply(person.memberships.entry(slot).or_default(), &MembershipOp::Add(key.to_string()));
            person.updated_at = now;
            self.changes.persons.insert(person_id);
        }
    }

    fn commit_group_types(&mut self, types: GroupTypes) {
        for t in types.all() {
            if self.group_types.by_slot(t.slot) != Some(t) {
                self.changes.group_types.insert(t.slot);
            }
        }
        self.group_types = types;
    }
}
