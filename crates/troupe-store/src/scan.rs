//! The event scan insights are computed from, and saved documents (cohorts, insights,
//! dashboards).
//!
//! A scan is columnar: one vector per field, indexed by event, with persons and groups
//! dictionary-encoded, so the query layer works on integers and never on JSON text.

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use troupe_core::Properties;

/// What to read. Times are UTC; `from` is inclusive and `to` exclusive.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScanRequest {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Event names to read; `None` reads every event.
    pub events: Option<Vec<String>>,
    /// Group types whose ids to return per event (typed ids plus untyped ids that name a group of
    /// the type).
    pub group_types: Vec<String>,
    /// Return each event's properties.
    pub event_properties: bool,
    /// Resolve each event's person (else `EventScan::person` is empty).
    pub persons: bool,
    /// Return persons' properties, distinct ids and creation times (else only their ids).
    pub person_details: bool,
    /// Return the properties of the requested types' groups (else their keys, names and
    /// creation times; a backend may return the properties anyway).
    pub group_details: bool,
}

/// Events of the range, in no particular order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventScan {
    /// Event names, indexed by `name`.
    pub names: Vec<String>,
    pub name: Vec<u32>,
    /// Microseconds since the epoch, UTC.
    pub ts: Vec<i64>,
    /// Index into `persons`: the person the event's distinct id resolves to now (after merges);
    /// empty unless requested.
    pub person: Vec<u32>,
    pub persons: Vec<Actor>,
    /// One per requested group type, in request order.
    pub groups: Vec<GroupColumn>,
    /// Per event, when requested; empty otherwise.
    pub properties: Vec<Properties>,
}

impl EventScan {
    pub fn len(&self) -> usize {
        self.ts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ts.is_empty()
    }
}

/// The ids of one group type on each event, each an index into `actors`. While no event has
/// more than one id, `ids` holds one entry per event ([`NO_ID`]: none) and `offsets` is empty —
/// the common case, at 4 bytes per event; otherwise it is CSR (the event `i` has
/// `ids[offsets[i]..offsets[i + 1]]`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupColumn {
    pub group_type: String,
    offsets: Vec<u32>,
    ids: Vec<u32>,
    /// Every group of the type that exists, plus ids seen on events without a profile.
    pub actors: Vec<Actor>,
}

/// No id on an event, in a [`GroupColumn`] of one id per event.
const NO_ID: u32 = u32::MAX;

impl GroupColumn {
    /// The event's ids. Inlined across crates: the query layer calls it per event.
    #[inline]
    pub fn of(&self, event: usize) -> &[u32] {
        if self.offsets.is_empty() {
            return match self.ids.get(event) {
                Some(id) if *id != NO_ID => std::slice::from_ref(id),
                _ => &[],
            };
        }
        match (self.offsets.get(event), self.offsets.get(event + 1)) {
            (Some(&a), Some(&b)) => self.ids.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// Per event its one id ([`GroupColumn::NO_ID`]: none), while no event has several: a tight
    /// loop reads this instead of calling [`Self::of`] per event.
    pub fn single_ids(&self) -> Option<&[u32]> {
        self.offsets.is_empty().then_some(self.ids.as_slice())
    }

    /// "No id" in [`Self::single_ids`].
    pub const NO_ID: u32 = NO_ID;

    /// The next event's distinct ids.
    fn push(&mut self, ids: &[u32]) {
        match ids {
            [] => self.push_one(None),
            [id] => self.push_one(Some(*id)),
            _ => {
                if self.offsets.is_empty() {
                    self.switch_to_lists();
                }
                self.ids.extend_from_slice(ids);
                self.offsets.push(self.ids.len() as u32);
            }
        }
    }

    /// The next event's id, when it has at most one (most events).
    fn push_one(&mut self, id: Option<u32>) {
        if self.offsets.is_empty() {
            self.ids.push(id.unwrap_or(NO_ID));
        } else {
            self.ids.extend(id);
            self.offsets.push(self.ids.len() as u32);
        }
    }

    /// From one id per event to CSR, at the first event with several.
    fn switch_to_lists(&mut self) {
        let single = std::mem::take(&mut self.ids);
        self.offsets = Vec::with_capacity(single.len() + 1);
        self.offsets.push(0);
        for id in single {
            if id != NO_ID {
                self.ids.push(id);
            }
            self.offsets.push(self.ids.len() as u32);
        }
    }
}

/// A person or a group as an insight sees it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    /// Person id, or group key.
    pub key: String,
    /// Persons: every distinct id. Groups: empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub distinct_ids: Vec<String>,
    /// Group name, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Current properties (empty when not requested or when the actor has no profile).
    pub properties: Properties,
    pub created_at: Option<DateTime<Utc>>,
}

/// The project id of instance-wide documents (dashboard users and sessions): project ids start
/// at 1, so 0 belongs to no project.
pub const INSTANCE: troupe_core::ProjectId = 0;

/// A saved object of the query layer and the dashboard, stored as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Document {
    /// `cohort`, `insight`, `dashboard`.
    pub kind: String,
    pub id: String,
    pub body: Value,
    pub updated_at: DateTime<Utc>,
}

/// Strings to dense indexes in first-seen order, for building a scan (event names, persons,
/// group keys).
#[derive(Debug, Default)]
pub struct Dictionary {
    pub index: HashMap<String, u32>,
    pub keys: Vec<String>,
}

impl Dictionary {
    pub fn intern(&mut self, key: String) -> u32 {
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        let i = self.keys.len() as u32;
        self.index.insert(key.clone(), i);
        self.keys.push(key);
        i
    }

    /// Without allocating when the key is known (the common case).
    pub fn intern_str(&mut self, key: &str) -> u32 {
        match self.index.get(key) {
            Some(&i) => i,
            None => self.intern(key.to_string()),
        }
    }
}

/// Builds one requested group type's column of a scan, the same way in every backend: the type's
/// groups with a profile first (in the order given), then ids seen only on events. Untyped ids
/// count for the type only when they name a group of it that has a profile.
#[derive(Debug)]
pub struct GroupColumnBuilder {
    /// The type's slot, `None` when the project has no such type (its column stays empty).
    pub slot: Option<u8>,
    dictionary: Dictionary,
    profiles: Vec<Actor>,
    column: GroupColumn,
    /// The current event's ids (kept to avoid allocating per event).
    event_ids: Vec<u32>,
}

impl GroupColumnBuilder {
    pub fn new(group_type: &str, slot: Option<u8>) -> Self {
        let column = GroupColumn { group_type: group_type.to_string(), ..GroupColumn::default() };
        GroupColumnBuilder {
            slot,
            dictionary: Dictionary::default(),
            profiles: Vec::new(),
            column,
            event_ids: Vec::new(),
        }
    }

    /// A group of the type with its profile (before any event is pushed).
    pub fn add_profile(&mut self, actor: Actor) {
        self.dictionary.intern(actor.key.clone());
        self.profiles.push(actor);
    }

    /// The next event's ids: those stamped for the type, and its untyped ids.
    pub fn push_event<'a>(
        &mut self,
        typed: impl IntoIterator<Item = &'a str>,
        untyped: impl IntoIterator<Item = &'a str>,
    ) {
        self.event_ids.clear();
        for key in typed {
            let id = self.typed_id(key);
            push_distinct(&mut self.event_ids, id);
        }
        for key in untyped {
            if let Some(id) = self.untyped_id(key) {
                push_distinct(&mut self.event_ids, id);
            }
        }
        self.column.push(&self.event_ids);
    }

    /// The id of a key stamped for the type (ids seen only on events are added).
    pub fn typed_id(&mut self, key: &str) -> u32 {
        self.dictionary.intern_str(key)
    }

    /// The id of an untyped key when it names a group of the type with a profile.
    pub fn untyped_id(&self, key: &str) -> Option<u32> {
        self.dictionary.index.get(key).copied().filter(|&id| (id as usize) < self.profiles.len())
    }

    /// The next event's ids (from [`Self::typed_id`] and [`Self::untyped_id`]); repeats count once.
    pub fn push_ids(&mut self, ids: impl IntoIterator<Item = u32>) {
        self.event_ids.clear();
        for id in ids {
            push_distinct(&mut self.event_ids, id);
        }
        self.column.push(&self.event_ids);
    }

    /// Room for `events` more events' ids, taken once: a column grown by doubling holds its
    /// old and new buffers at once, and the allocator may keep the old one.
    pub fn reserve(&mut self, events: usize) {
        self.column.ids.reserve_exact(events);
    }

    /// The next event's id when it has at most one (from [`Self::typed_id`] or
    /// [`Self::untyped_id`]).
    pub fn push_one(&mut self, id: Option<u32>) {
        self.column.push_one(id);
    }

    pub fn finish(mut self) -> GroupColumn {
        let known = self.profiles.len();
        self.profiles.extend(self.dictionary.keys.into_iter().skip(known).map(|key| Actor { key, ..Actor::default() }));
        self.column.actors = self.profiles;
        self.column
    }
}

fn push_distinct(ids: &mut Vec<u32>, id: u32) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_column_turns_into_lists_at_the_first_event_with_several_ids() {
        let mut b = GroupColumnBuilder::new("company", Some(0));
        b.add_profile(Actor { key: "acme".into(), ..Actor::default() });
        b.push_event(["acme"], []);
        b.push_event([], ["nobody"]);
        b.push_event(["acme", "acme"], ["acme"]);
        let single = b.column.clone();
        assert!(single.offsets.is_empty(), "one id per event so far");
        b.push_event(["beta"], ["acme"]);
        b.push_event(["beta", "gamma"], ["acme"]);
        b.push_event([], []);
        let column = b.finish();
        assert!(!column.offsets.is_empty());
        let keys =
            |i: usize| column.of(i).iter().map(|&id| column.actors[id as usize].key.as_str()).collect::<Vec<_>>();
        let expected: [&[&str]; 6] = [&["acme"], &[], &["acme"], &["beta", "acme"], &["beta", "gamma", "acme"], &[]];
        for (i, want) in expected.iter().enumerate() {
            assert_eq!(keys(i), *want, "event {i}");
        }
        assert_eq!(single.of(1), &[] as &[u32]);
        assert_eq!(column.of(6), &[] as &[u32], "past the last event");
    }
}
