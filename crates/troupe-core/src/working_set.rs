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

    pub fn add(&mut self, command: &PreparedCommand) {
        match &command.0 {
            Prepared::Track(event, properties_json) => {
                self.distinct_ids.insert(event.distinct_id.clone());
                for (group_type, ids) in &event.groups {
                    self.groups.extend(ids.iter().map(|id| (group_type.clone(), id.clone())));
                }
                // An event's untyped ids are stored as they came: no group is read for them.
                // Only a client id is looked up: an event without one is recognised by its content,
                // whose hash (of all its properties) the window holds whole; it is not computed here.
                if event.id.is_some() {
                    if let EventIdentity::Client(key) = EventIdentity::of(event, properties_json) {
                        self.client_keys.insert(key);
                    }
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
            | Command::ClearCharges { distinct_id }
            | Command::ErasePerson { distinct_id, .. }
            | Command::AnonymizePerson { distinct_id, .. } => {
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
            Command::EraseGroup { group_type, group_key, .. } => {
                self.groups.insert((group_type.clone(), group_key.clone()));
                self.deleted_groups.push((group_type.clone(), group_key.clone()));
            }
            Command::RenameGroupType { .. }
            | Command::SetGroupTypeDisplayName { .. }
            | Command::ExpireEvents { .. } => {}
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

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone, Utc};

    use super::*;
    use crate::{Limits, MembershipOp, Outcome, ProjectState, RetryKey, TrackEvent};

    fn now() -> chrono::DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).single().unwrap_or_default()
    }

    fn event(who: &str, id: Option<&str>) -> Command {
        Command::Track(TrackEvent {
            event: "Viewed".into(),
            distinct_id: who.into(),
            id: id.map(String::from),
            groups: [("company".to_string(), vec!["acme".to_string()])].into_iter().collect(),
            untyped_groups: vec!["loose".into()],
            ..TrackEvent::default()
        })
    }

    #[test]
    fn needs_name_what_each_command_reads() {
        let commands: Vec<PreparedCommand> = vec![
            event("u1", Some("e1")).into(),
            event("u2", None).into(),
            Command::Identify { anon_distinct_id: "anon".into(), distinct_id: "u3".into() }.into(),
            Command::Membership {
                distinct_id: "u4".into(),
                group_type: "team".into(),
                op: MembershipOp::Add("t1".into()),
            }
            .into(),
            Command::JoinUntypedGroups { distinct_id: "u5".into(), group_keys: vec!["k".into()] }.into(),
            Command::GroupProfile {
                group_type: "company".into(),
                group_key: "gone".into(),
                name: None,
                op: ProfileOp::Delete,
            }
            .into(),
            Command::DeleteGroupType { group_type: "team".into() }.into(),
            Command::Once {
                retry: RetryKey::Client("r1".into()),
                guarded: Box::new(Command::ClearCharges { distinct_id: "u6".into() }),
            }
            .into(),
        ];
        let needs = Needs::of(&commands);
        let ids: Vec<&str> = needs.distinct_ids.iter().map(String::as_str).collect();
        assert_eq!(ids, ["anon", "u1", "u2", "u3", "u4", "u5", "u6"]);
        let groups: Vec<(&str, &str)> = needs.groups.iter().map(|(t, k)| (t.as_str(), k.as_str())).collect();
        assert_eq!(groups, [("company", "acme"), ("company", "gone"), ("team", "t1")]);
        // An event's untyped ids are stored as sent; only joining them reads groups.
        assert_eq!(needs.untyped_group_keys.iter().collect::<Vec<_>>(), ["k"]);
        // The event with an id and the guarded write with one: two client keys; the event
        // without an id is recognised by its content (the window, held whole).
        assert_eq!(needs.client_keys.len(), 2);
        assert_eq!(needs.deleted_groups, [("company".to_string(), "gone".to_string())]);
        assert_eq!(needs.deleted_types, ["team"]);
    }

    #[test]
    fn eviction_keeps_what_an_unwritten_batch_changed_with_every_id_of_its_persons() {
        let mut state = ProjectState::new(1, Limits::default(), Duration::seconds(30));
        for who in ["u1", "u2", "u3"] {
            state.apply(event(who, Some(&format!("id-{who}"))), now()).expect("stored");
        }
        state
            .apply(Command::Identify { anon_distinct_id: "anon".into(), distinct_id: "u1".into() }, now())
            .expect("ok");
        state.take_changes();
        // The next batch changes u2 only (the event of u1 changes no person).
        state.apply(event("u1", Some("id-1b")), now()).expect("stored");
        let plan = [("plan".to_string(), serde_json::json!("pro"))].into_iter().collect();
        state.apply(Command::PersonProfile { distinct_id: "u2".into(), op: ProfileOp::Set(plan) }, now()).expect("ok");
        let touched = Touched::of(&state.take_changes());
        assert!(state.held().total() > 0);

        state.evict_except(&touched);
        assert!(state.holds_distinct_id("u2"));
        assert!(!state.holds_distinct_id("u1") && !state.holds_distinct_id("anon") && !state.holds_distinct_id("u3"));
        assert!(state.holds_client_key(touched.client_keys.iter().copied().next().unwrap_or_default()));
        assert_eq!(state.held().client_keys, 1, "only the unwritten batch's id");
        assert_eq!(state.held().persons, 1);
        let company = state.group_types().slot_of("company").unwrap_or_default();
        assert!(!state.holds_group(company, "acme"), "the batch only read acme");
        assert!(state.invariant_violations().is_empty(), "{:?}", state.invariant_violations());

        // Evicting everything keeps group types and the retry window: an id-less resend within
        // the window is still a duplicate.
        state.apply(event("u9", None), now()).expect("stored");
        state.take_changes();
        state.evict_except(&Touched::default());
        assert_eq!(state.held(), Held::default());
        assert!(state.group_types().slot_of("company").is_some());
        assert_eq!(state.apply(event("u9", None), now()).ok(), Some(Outcome::Duplicate));
    }
}
