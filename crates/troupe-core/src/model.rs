//! The entities the rules act on: persons, groups and charges.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::group_types::Slot;
use crate::Properties;

/// The isolation unit; nothing crosses projects.
pub type ProjectId = u32;

/// A person's internal id. Distinct ids map onto it; merges move them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonId(pub Uuid);

impl PersonId {
    pub fn new() -> Self {
        PersonId(Uuid::now_v7())
    }
}

impl Default for PersonId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for PersonId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Person {
    pub id: PersonId,
    /// Every distinct id of this person, in the order they were linked.
    pub distinct_ids: Vec<String>,
    pub properties: Properties,
    /// Set by `identify`; two identified persons are never merged.
    pub identified: bool,
    /// Group ids per group type slot. Types without groups are absent.
    pub memberships: BTreeMap<Slot, Vec<String>>,
    /// Per slot, when a `set_group` last replaced the set; absent for sets built by
    /// `add_group` and for types without groups. Decides a type on a merge
    /// ([`crate::membership::merge`]).
    pub replaced_at: BTreeMap<Slot, DateTime<Utc>>,
    /// Keys joined without a type (OpenPanel `setGroup`) while no group had them: each becomes a
    /// membership of the type of the first group created with it. Stored under
    /// [`crate::group_types::PENDING_SLOT`].
    pub pending_groups: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl Person {
    pub fn new(id: PersonId, at: DateTime<Utc>) -> Self {
        Person {
            id,
            distinct_ids: Vec::new(),
            properties: Properties::new(),
            identified: false,
            memberships: BTreeMap::new(),
            replaced_at: BTreeMap::new(),
            pending_groups: Vec::new(),
            created_at: at,
            updated_at: at,
        }
    }
}

impl Person {
    /// Drop a type's memberships (emptied, or its group type deleted): a type without groups
    /// has nothing to win a merge with.
    pub fn forget_type(&mut self, slot: Slot) {
        self.memberships.remove(&slot);
        self.replaced_at.remove(&slot);
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub slot: Slot,
    pub key: String,
    /// The display name: given explicitly (OpenPanel `upsertGroup`) or the `name` property.
    pub name: Option<String>,
    pub properties: Properties,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Charge {
    pub person_id: PersonId,
    pub amount: f64,
    pub properties: Properties,
    pub time: DateTime<Utc>,
}
