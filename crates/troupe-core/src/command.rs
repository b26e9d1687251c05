//! Canonical commands: what every wire protocol is translated into, and what applying one
//! yields.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::event::TrackEvent;
use crate::membership::MembershipOp;
use crate::model::PersonId;
use crate::profile::ProfileOp;
use crate::Properties;

/// One write, protocol-independent.
#[derive(Debug, Clone, PartialEq)]
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
}

/// What applying one command did.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum Outcome {
    /// A new event was stored.
    Stored { uuid: String },
    /// The event was seen before (a client retry) and dropped.
    Duplicate,
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
