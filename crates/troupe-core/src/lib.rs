//! troupe's canonical model and its rules (DESIGN.md "Semantics"), pure and without I/O.
//!
//! Wire adapters translate client requests into [`Command`]s; a store backend applies them to a
//! [`ProjectState`] on one writer and persists the [`Changes`] it reports.

pub mod client_ids;
pub mod command;
pub mod dedupe;
pub mod error;
pub mod event;
pub mod group_types;
pub mod limits;
pub mod membership;
pub mod model;
pub mod profile;
pub mod state;
pub mod working_set;

/// Distinct ids that stand for no user: what server SDKs send their own events under
/// (trodo-python's and troupe-sdk's `server_global`, for `server_error`). Their events are stored
/// and counted as events; insights counting users leave them out (docs/semantics.md).
pub const SYNTHETIC_DISTINCT_IDS: &[&str] = &["server_global"];

/// Properties of an event or a profile, in the order they were first written.
pub type Properties = serde_json::Map<String, serde_json::Value>;

pub use command::{properties_json, Command, Outcome, PreparedCommand, RetryKey};
pub use error::CoreError;
pub use event::{StoredEvent, TrackEvent};
pub use group_types::{GroupType, Slot, PENDING_SLOT};
pub use limits::Limits;
pub use membership::{JoinRule, MembershipOp};
pub use model::{Charge, Group, Person, PersonId, ProjectId};
pub use profile::ProfileOp;
pub use state::{pseudonym, scrub_properties, Anonymized, Changes, ChargeChange, ProjectState};

#[cfg(test)]
mod state_tests;
