//! The part of a project's state a batch of commands reads, for a backend that keeps its state as
//! a bounded cache over the database instead of whole in memory (the ClickHouse writer).
//!
//! Such a backend, before applying a batch, asks [`Needs::of`] what the batch reads, loads from
//! the database what its [`ProjectState`] does not hold yet (a state holds a person with every
//! one of its distinct ids, so whatever it holds is current), applies the batch, and trims the
//! state with [`ProjectState::evict_except`] when it grows past its bound — keeping what a batch
//! not yet written changed ([`Touched`]), since the database does not hold that yet.

use std::collections::BTreeSet;

use crate::command::{Command, Prepared, PreparedCommand};
use crate::dedupe::EventIdentity;
use crate::group_types::Slot;
use crate::model::PersonId;
use crate::profile::ProfileOp;
use crate::state::Changes;

/// What a batch of commands reads from a project's state, besides its group types (always held
/// whole: a project has at most a handful).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Needs {
    /// Every distinct id a command names: each one's person, with all of its ids.
    pub distinct_ids: BTreeSet<String>,
    /// `(group type, key)` of every group a command names.
    pub groups: BTreeSet<(String, String)>,
    /// Keys joined without a type (`JoinUntypedGroups`): each is looked up under every type.
    pub untyped_group_keys: BTreeSet<String>,
    /// Hashes of client ids (events' and guarded writes'): were they stored before?
    pub client_keys: BTreeSet<u64>,
    /// `(group type, key)` of deleted groups: every person who is a member must be held.
    pub deleted_groups: Vec<(String, String)>,
    /// Deleted group types: every group of the type and every person with a membership in it.
    pub deleted_types: Vec<String>,
}

impl Needs {
    pub fn of<'a>(commands: impl IntoIterator<Item = &'a PreparedCommand>) -> Needs {
        let mut needs = Needs::default();
        for command in commands {
            needs.add(command);
        }
        needs
    }

    pub fn is_empty(&self) -> bool {
        self.distinct_ids.is_empty()
            && self.groups.is_empty()
            && self.untyped_group_keys.is_empty()
            && self.client_keys.is_empty()
            && self.deleted_groups.is_empty()
            && self.deleted_types.is_empty()
    }

    pub fn add(&mut self, command: &PreparedCommand) {
        match &command.0 {
            Prepared::Track(event, properties_json) => {
                self.distinct_ids.insert(event.distinct_id.clone());
                for (group_type, ids) in &event.groups {
                    self.groups.extend(ids.iter().map(|id| (group_type.clone(), id.clone())));
                }
                // An event's untyped ids are stored as they came: no group is read for them.
                if let EventIdentity::Client(key) = EventIdentity::of(event, properties_json) {
                    self.client_keys.insert(key);
                }
            }
            Prepared::Other(command) => self.add_command(command),
        }
    }

    fn add_command(&mut self, command: &Command) {
        match command {
            Command::Track(event) => {
                let prepared = PreparedCommand::from(Command::Track(event.clone()));
                self.add(&prepared);
            }
            Command::Identify { anon_distinct_id: a, distinct_id: b } | Command::Alias { distinct_id: a, alias: b } => {
                self.distinct_ids.insert(a.clone());
                self.distinct_ids.insert(b.clone());
            }
            Command::PersonProfile { distinct_id, .. }
            | Command::TrackCharge { distinct_id, .. }
            | Command::ClearCharges { distinct_id } => {
                self.distinct_ids.insert(distinct_id.clone());
            }
            Command::Membership { distinct_id, group_type, op } => {
                self.distinct_ids.insert(distinct_id.clone());
                self.groups.extend(op.joined_ids().iter().map(|id| (group_type.clone(), id.clone())));
            }
            Command::JoinUntypedGroups { distinct_id, group_keys } => {
                self.distinct_ids.insert(distinct_id.clone());
                self.untyped_group_keys.extend(group_keys.iter().cloned());
            }
            Command::GroupProfile { group_type, group_key, op, .. } => {
                self.groups.insert((group_type.clone(), group_key.clone()));
                if *op == ProfileOp::Delete {
                    self.deleted_groups.push((group_type.clone(), group_key.clone()));
                }
            }
            Command::RenameGroupType { .. } | Command::SetGroupTypeDisplayName { .. } => {}
            Command::DeleteGroupType { group_type } => self.deleted_types.push(group_type.clone()),
            Command::Once { retry, guarded } => {
                if let EventIdentity::Client(key) = EventIdentity::of_command(retry, guarded) {
                    self.client_keys.insert(key);
                }
                self.add_command(guarded);
            }
        }
    }
}

/// What a batch changed, taken from its [`Changes`] before they are written: while the write is
/// on its way the state is the only place that holds it, so it must stay held.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Touched {
    pub persons: BTreeSet<PersonId>,
    pub distinct_ids: BTreeSet<String>,
    pub groups: BTreeSet<(Slot, String)>,
    pub client_keys: BTreeSet<u64>,
}

impl Touched {
    pub fn of(changes: &Changes) -> Touched {
        Touched {
            persons: changes.persons.clone(),
            distinct_ids: changes.distinct_ids.clone(),
            groups: changes.groups.clone(),
            client_keys: changes
                .events
                .iter()
                .filter_map(|e| e.dedup_key)
                .chain(changes.retry_keys.iter().filter(|r| r.forever).map(|r| r.key))
                .collect(),
        }
    }

    /// Add what a later batch touched (two batches may be unwritten at once).
    pub fn extend(&mut self, other: Touched) {
        self.persons.extend(other.persons);
        self.distinct_ids.extend(other.distinct_ids);
        self.groups.extend(other.groups);
        self.client_keys.extend(other.client_keys);
    }

    pub fn has_distinct_id(&self, id: &str) -> bool {
        self.distinct_ids.contains(id)
    }

    pub fn has_group(&self, slot: Slot, key: &str) -> bool {
        self.groups.contains(&(slot, key.to_string()))
    }
}

/// How much of a project a state holds.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Held {
    pub persons: usize,
    pub groups: usize,
    pub client_keys: usize,
}

impl Held {
    pub fn total(&self) -> usize {
        self.persons + self.groups + self.client_keys
    }
}
