//! Canonical commands: what every wire protocol is translated into, and what applying one
//! yields.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::TrackEvent;
use crate::membership::MembershipOp;
use crate::model::PersonId;
use crate::profile::ProfileOp;
use crate::Properties;

/// One write, protocol-independent. Serializable so a troupe process can hand writes to the
/// process that owns the project (the ClickHouse store with several servers).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Store an event, stamped with its person's groups.
    Track(TrackEvent),
    /// `anon_distinct_id` (the id used so far) is the same person as `distinct_id` (the known
    /// user id). Marks the person identified.
    Identify {
        anon_distinct_id: String,
        distinct_id: String,
    },
    /// `alias` is another id of `distinct_id`'s person.
    Alias {
        distinct_id: String,
        alias: String,
    },
    /// A write to a person's profile; creates the person. `Delete` deletes it.
    PersonProfile {
        distinct_id: String,
        op: ProfileOp,
    },
    /// Erase a person as if it never existed: its profile, every distinct id, memberships,
    /// charges and every event sent under any of its ids (DESIGN.md's privacy operations; unlike
    /// a profile `Delete`, which keeps the events). An id with no person still has its events
    /// erased, so a retry, or an erase after a profile delete, finishes the job.
    ErasePerson {
        distinct_id: String,
        /// Keep the person out for good: later writes naming any of its ids are dropped
        /// ([`Outcome::Dropped`]) instead of starting a new person.
        #[serde(default)]
        keep_out: bool,
    },
    /// Anonymize a person: its profile properties are removed, its distinct ids replaced by one
    /// stable pseudonym (on the person and on every event of its ids), and each event property
    /// named in `personal_fields` removed. Events, memberships and charges stay, so aggregate
    /// counts do not change.
    AnonymizePerson {
        distinct_id: String,
        personal_fields: Vec<String>,
    },
    /// A revenue line on a person (Mixpanel's `track_charge`).
    TrackCharge {
        distinct_id: String,
        amount: f64,
        properties: Properties,
        time: Option<DateTime<Utc>>,
    },
    ClearCharges {
        distinct_id: String,
    },
    /// Change which groups of one type a person belongs to.
    Membership {
        distinct_id: String,
        group_type: String,
        op: MembershipOp,
    },
    /// Join groups named without a type (OpenPanel `setGroup`): the person joins every existing
    /// group with that key, whatever its type. A key with no group yet joins nothing; events
    /// carrying it still count for it through untyped attribution.
    JoinUntypedGroups {
        distinct_id: String,
        group_keys: Vec<String>,
    },
    /// A write to a group's profile; never creates a person. `Delete` deletes the group.
    GroupProfile {
        group_type: String,
        group_key: String,
        name: Option<String>,
        op: ProfileOp,
    },
    /// Erase a group: its profile and every membership in it go, and stored events lose their
    /// attribution to it; with `with_events`, the events attributed to it are deleted instead.
    /// (A profile `Delete` keeps the events' attribution.)
    EraseGroup {
        group_type: String,
        group_key: String,
        with_events: bool,
    },
    RenameGroupType {
        from: String,
        to: String,
    },
    SetGroupTypeDisplayName {
        group_type: String,
        display_name: String,
    },
    /// Delete a group type and its groups, freeing its slot.
    DeleteGroupType {
        group_type: String,
    },
    /// Drop every event whose time is before `before`: a project's event retention
    /// (troupe's own sweep sends it; no wire protocol does).
    ExpireEvents {
        before: DateTime<Utc>,
    },
    /// `command`, applied at most once for `retry`: a client's resend of a write that was
    /// applied already is answered [`Outcome::Duplicate`] and changes nothing (DESIGN.md §10
    /// for more than events: an increment, an append, a charge).
    Once {
        retry: RetryKey,
        guarded: Box<Command>,
    },
}

/// How a resent write is recognised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum RetryKey {
    /// An id the client sent with the write (PostHog `uuid`, Segment `messageId`, Mixpanel
    /// `$insert_id`, troupe's own `request_id`): a resend is dropped whenever it arrives.
    Client(String),
    /// The client sent none: the write's content, with this text from the request that tells
    /// genuine repeats apart when the protocol has one (Mixpanel's `$time`), stands for it, for
    /// the retry window (as for events without an id).
    Content(String),
}

impl Command {
    /// Whether applying the command twice leaves what applying it once does. Increments,
    /// appends and charges do not; everything else (sets, unions, removes, memberships,
    /// identify, deletes) does, so a resend of those needs no guard.
    pub fn is_idempotent(&self) -> bool {
        match self {
            Command::PersonProfile { op, .. } | Command::GroupProfile { op, .. } => {
                !matches!(op, ProfileOp::Increment(_) | ProfileOp::Append(_))
            }
            Command::TrackCharge { .. } | Command::Track(_) => false,
            _ => true,
        }
    }

    /// The command without its resend guard, if it has one.
    pub fn into_unguarded(self) -> Command {
        match self {
            Command::Once { guarded, .. } => guarded.into_unguarded(),
            other => other,
        }
    }

    /// This command guarded against resends when applying it twice would count twice: by the
    /// client's id for the write when it sent one, else by its content and `nonce`. Events are
    /// guarded by their own id; idempotent commands need no guard (a resend changes nothing).
    pub fn once(self, client_id: Option<&str>, nonce: &str) -> Command {
        // A guarded command counts as idempotent: it is never guarded twice.
        if matches!(self, Command::Track(_)) || self.is_idempotent() {
            return self;
        }
        let retry = match client_id {
            Some(id) => RetryKey::Client(id.to_string()),
            None => RetryKey::Content(nonce.to_string()),
        };
        Command::Once { retry, guarded: Box::new(self) }
    }

    /// Every distinct id the command names (identify and alias name two).
    pub fn distinct_ids(&self) -> Vec<&str> {
        match self {
            Command::Identify { anon_distinct_id, distinct_id } => vec![anon_distinct_id, distinct_id],
            Command::Alias { distinct_id, alias } => vec![distinct_id, alias],
            other => other.distinct_id().into_iter().collect(),
        }
    }

    /// The distinct id the command writes for, if it writes for a person (rate limits are kept
    /// per distinct id).
    pub fn distinct_id(&self) -> Option<&str> {
        match self {
            Command::Track(event) => Some(&event.distinct_id),
            Command::Identify { distinct_id, .. }
            | Command::Alias { distinct_id, .. }
            | Command::PersonProfile { distinct_id, .. }
            | Command::TrackCharge { distinct_id, .. }
            | Command::ClearCharges { distinct_id }
            | Command::ErasePerson { distinct_id, .. }
            | Command::AnonymizePerson { distinct_id, .. }
            | Command::Membership { distinct_id, .. }
            | Command::JoinUntypedGroups { distinct_id, .. } => Some(distinct_id),
            Command::Once { guarded, .. } => guarded.distinct_id(),
            Command::GroupProfile { .. }
            | Command::EraseGroup { .. }
            | Command::ExpireEvents { .. }
            | Command::RenameGroupType { .. }
            | Command::SetGroupTypeDisplayName { .. }
            | Command::DeleteGroupType { .. } => None,
        }
    }
}

/// What applying one command did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// A new event was stored.
    Stored { uuid: String },
    /// The event was seen before (a client retry) and dropped.
    Duplicate,
    /// The write names an id of a person erased for good (its project does not let erased
    /// persons start again): nothing was stored. Answered as a success, so clients drop it.
    Dropped,
    /// A profile, membership or identity write took effect (or was already in effect).
    Applied,
    /// The result of `Identify`: who the person is now and the groups it belongs to, so a
    /// browser on a new device can hydrate its group state.
    Identified {
        distinct_id: String,
        person_id: PersonId,
        /// False when the two ids belonged to two identified persons, which are never merged.
        merged: bool,
        group_memberships: BTreeMap<String, Vec<String>>,
    },
}

/// A command made ready for the single writer on the caller's thread: a tracked event's
/// properties are serialized there, once, and their map freed there, so the writer does only
/// what must be done in order. Other commands pass through unchanged.
#[derive(Debug, Clone, PartialEq)]
pub struct PreparedCommand(pub(crate) Prepared);

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Prepared {
    /// The event, its properties map left empty, and those properties as JSON text.
    Track(TrackEvent, String),
    Other(Command),
}

impl From<Command> for PreparedCommand {
    fn from(command: Command) -> Self {
        PreparedCommand(match command {
            Command::Track(mut event) => {
                let properties = std::mem::take(&mut event.properties);
                Prepared::Track(event, properties_json(&properties))
            }
            other => Prepared::Other(other),
        })
    }
}

impl PreparedCommand {
    /// A tracked event whose properties arrive as JSON text already (a reader that kept them
    /// as raw JSON instead of parsing them into a map). `properties_json` must be a JSON object;
    /// the event's own `properties` map is ignored.
    pub fn track(mut event: TrackEvent, properties_json: String) -> Self {
        event.properties = Properties::new();
        PreparedCommand(Prepared::Track(event, properties_json))
    }

    /// The command as it was given (a tracked event's properties parsed back from their text),
    /// for a writer in another process.
    pub fn into_command(self) -> Command {
        match self.0 {
            Prepared::Track(mut event, properties_json) => {
                event.properties = serde_json::from_str(&properties_json).unwrap_or_default();
                Command::Track(event)
            }
            Prepared::Other(command) => command,
        }
    }
}

/// Properties as the JSON text they are stored as.
pub fn properties_json(properties: &Properties) -> String {
    // Serializing a map of JSON values cannot fail.
    serde_json::to_string(properties).unwrap_or_else(|_| "{}".to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::{CoreError, TrackEvent};

    /// Commands and their results cross process boundaries (a ClickHouse deployment's writer):
    /// every variant comes back equal.
    #[test]
    fn commands_and_results_survive_json() {
        let props = json!({"plan": "pro"}).as_object().cloned().unwrap_or_default();
        let commands = vec![
            Command::Track(TrackEvent {
                event: "Signed In".into(),
                distinct_id: "ann".into(),
                id: Some("e1".into()),
                timestamp: Some(chrono::Utc::now()),
                groups: vec![("company".into(), vec!["acme".into()])],
                untyped_groups: vec!["org_1".into()],
                properties: props.clone(),
                ..TrackEvent::default()
            }),
            Command::Identify { anon_distinct_id: "anon".into(), distinct_id: "ann".into() },
            Command::PersonProfile {
                distinct_id: "ann".into(),
                op: ProfileOp::Increment(vec![("logins".into(), serde_json::Number::from(2))]),
            },
            Command::PersonProfile { distinct_id: "ann".into(), op: ProfileOp::Delete },
            Command::PersonProfile {
                distinct_id: "ann".into(),
                op: ProfileOp::Increment(vec![("logins".into(), serde_json::Number::from(1))]),
            }
            .once(Some("req-1"), ""),
            Command::TrackCharge { distinct_id: "ann".into(), amount: 9.5, properties: props.clone(), time: None }
                .once(None, "nonce"),
            Command::Membership {
                distinct_id: "ann".into(),
                group_type: "team".into(),
                op: MembershipOp::Add("t1".into()),
            },
            Command::GroupProfile {
                group_type: "company".into(),
                group_key: "acme".into(),
                name: Some("Acme".into()),
                op: ProfileOp::Union(vec![("tags".into(), vec![json!("b2b")])]),
            },
            Command::TrackCharge { distinct_id: "ann".into(), amount: 9.5, properties: props, time: None },
            Command::DeleteGroupType { group_type: "team".into() },
            Command::ErasePerson { distinct_id: "ann".into(), keep_out: true },
            Command::AnonymizePerson { distinct_id: "ann".into(), personal_fields: vec!["email".into()] },
            Command::EraseGroup { group_type: "company".into(), group_key: "acme".into(), with_events: true },
            Command::ExpireEvents { before: chrono::Utc::now() },
        ];
        let text = serde_json::to_string(&commands).expect("serializes");
        let back: Vec<Command> = serde_json::from_str(&text).expect("deserializes");
        assert_eq!(back, commands);

        let results: Vec<Result<Outcome, CoreError>> = vec![
            Ok(Outcome::Stored { uuid: "e1".into() }),
            Ok(Outcome::Duplicate),
            Err(CoreError::NotAList { property: "tags".into(), found: "a string".into(), op: "remove".into() }),
        ];
        let text = serde_json::to_string(&results).expect("serializes");
        let back: Vec<Result<Outcome, CoreError>> = serde_json::from_str(&text).expect("deserializes");
        assert_eq!(back, results);
    }
}
