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

/// The ids of one group type on each event, as offsets into `ids` (CSR layout: the event `i` has
/// `ids[offsets[i]..offsets[i + 1]]`), each an index into `actors`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupColumn {
    pub group_type: String,
    pub offsets: Vec<u32>,
    pub ids: Vec<u32>,
    /// Every group of the type that exists, plus ids seen on events without a profile.
    pub actors: Vec<Actor>,
}

impl GroupColumn {
    pub fn of(&self, event: usize) -> &[u32] {
        match (self.offsets.get(event), self.offsets.get(event + 1)) {
            (Some(&a), Some(&b)) => self.ids.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
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
}

impl GroupColumnBuilder {
    pub fn new(group_type: &str, slot: Option<u8>) -> Self {
        let column = GroupColumn { group_type: group_type.to_string(), offsets: vec![0], ..GroupColumn::default() };
        GroupColumnBuilder { slot, dictionary: Dictionary::default(), profiles: Vec::new(), column }
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
        let start = self.column.ids.len();
        for key in typed {
            let id = self.typed_id(key);
            push_unique(&mut self.column.ids, start, id);
        }
        for key in untyped {
            if let Some(id) = self.untyped_id(key) {
                push_unique(&mut self.column.ids, start, id);
            }
        }
        self.column.offsets.push(self.column.ids.len() as u32);
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
        let start = self.column.ids.len();
        for id in ids {
            push_unique(&mut self.column.ids, start, id);
        }
        self.column.offsets.push(self.column.ids.len() as u32);
    }

    pub fn finish(mut self) -> GroupColumn {
        let known = self.profiles.len();
        self.profiles.extend(self.dictionary.keys.into_iter().skip(known).map(|key| Actor { key, ..Actor::default() }));
        self.column.actors = self.profiles;
        self.column
    }
}

fn push_unique(ids: &mut Vec<u32>, start: usize, id: u32) {
    if !ids[start..].contains(&id) {
        ids.push(id);
    }
}
