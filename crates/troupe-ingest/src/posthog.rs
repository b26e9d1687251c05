//! The PostHog capture protocol: `posthog` (PyPI) 7.91.1 and `posthog-node` in their default
//! (v0) mode, and posthog-js's JSON capture.
//!
//! | body | where |
//! |---|---|
//! | `{api_key, batch: [event…], sent_at, historical_migration}` | `/batch/` (python, node) |
//! | `{api_key \| token, event, distinct_id, properties, …}` | `/capture/`, `/e/`, `/i/v0/e/` (one event) |
//! | `[event…]` with `properties.token` | `/e/`, `/i/v0/e/` (posthog-js) |
//!
//! An event is `{event, distinct_id, properties, timestamp, uuid, $set?, $set_once?}`. Special
//! events become commands: `$groupidentify` (group `set` of `$group_set`, never a person,
//! whatever distinct id the client invented), `$identify` (merge of `$anon_distinct_id`, and
//! stored as an event after it, as PostHog does), `$create_alias` / `$merge_dangerously`
//! (alias), `$set` / `$set_once` (person ops); only `$identify` is also stored. `$set`/`$set_once` on any event (top level or in properties) update the person.
//! `properties.$groups = {type: key}` attributes the event to those groups explicitly.

use serde_json::Value;
use troupe_core::{Command, CoreError, Limits, PreparedCommand, ProfileOp, Properties, TrackEvent};

use crate::raw;
use crate::wire::{self, Body};
use crate::{ItemResult, Translated};

/// Events that are commands: the names [`event`] turns into other commands (`$identify` into a
/// stored event as well).
const COMMAND_EVENTS: [&str; 6] =
    ["$groupidentify", "$identify", "$create_alias", "$merge_dangerously", "$set", "$set_once"];

/// A request body, taken by value: each event's properties move into its command uncopied.
pub fn translate(body: Value, limits: &Limits) -> Result<Translated, CoreError> {
    let (events, sent_at, api_key) = match body {
        Value::Array(events) => {
            let api_key = events.iter().find_map(|e| e.as_object().and_then(key_of));
            (events, None, api_key)
        }
        Value::Object(mut b) => {
            let sent_at = wire::timestamp(&b, "sent_at")?;
            let api_key = key_of(&b);
            match b.remove("batch") {
                Some(Value::Array(events)) => {
                    let api_key = api_key.or_else(|| events.iter().find_map(|e| e.as_object().and_then(key_of)));
                    (events, sent_at, api_key)
                }
                Some(_) => return Err(CoreError::invalid("batch", "must be a list of events")),
                None => (vec![Value::Object(b)], sent_at, api_key),
            }
        }
        _ => return Err(CoreError::invalid("body", "must be a JSON object or a list of events")),
    };
    let items = events.into_iter().map(|e| event(e, sent_at, limits)).collect();
    Ok(Translated { key: api_key, items })
}

/// The project key of a body or an event: `api_key`, `token`, or `properties.token`.
fn key_of(b: &Body) -> Option<String> {
    let direct = ["api_key", "token"].iter().find_map(|k| b.get(*k).and_then(Value::as_str));
    let nested = b.get("properties").and_then(|p| p.get("token")).and_then(Value::as_str);
    direct.or(nested).filter(|k| !k.is_empty()).map(str::to_string)
}

/// One event of any PostHog body (also one line of a PostHog export).
///
/// The size of `properties` is not checked here: an event's stored properties (without the
/// `$set`s taken out of them) are checked by the store's rules as the JSON text they are kept
/// as, with the same field name and limit.
pub fn event(value: Value, sent_at: Option<chrono::DateTime<chrono::Utc>>, limits: &Limits) -> ItemResult {
    let Value::Object(mut e) = value else { return Err(CoreError::invalid("event", "must be a JSON object")) };
    let e = &mut e;
    let name = wire::text(e, "event")?;
    limits.check_event_name("event", &name)?;
    let mut properties = match e.remove("properties") {
        None | Some(Value::Null) => Properties::new(),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(CoreError::invalid("properties", "must be a JSON object")),
    };
    if name == "$groupidentify" {
        return group_identify(&properties, limits);
    }
    let distinct_id = distinct_id(e, &properties, limits)?;
    let mut commands = person_ops(e, &mut properties, &distinct_id, limits)?;
    match name.as_str() {
        "$set" | "$set_once" => {
            if commands.is_empty() {
                // A bare `$set` still makes sure the person exists.
                commands.push(Command::PersonProfile { distinct_id, op: ProfileOp::Set(Properties::new()) });
            }
            return Ok(commands);
        }
        "$identify" => {
            let anon = wire::opt_id(&properties, "$anon_distinct_id")?;
            let anon = anon.unwrap_or_else(|| distinct_id.clone());
            limits.check_id("$anon_distinct_id", &anon)?;
            // Stored too, as PostHog does (the events list and "first identified" questions
            // show it), after the merge and the person's `$set`s; its uuid makes a resend a
            // duplicate.
            let mut track = tracked(e, name, distinct_id.clone(), Vec::new(), sent_at, limits)?;
            track.properties = properties;
            commands.insert(0, Command::Identify { anon_distinct_id: anon, distinct_id });
            commands.push(Command::Track(track));
            return Ok(commands);
        }
        "$create_alias" | "$merge_dangerously" => {
            let alias = wire::id(&properties, "alias", limits)?;
            commands.insert(0, Command::Alias { distinct_id, alias });
            return Ok(commands);
        }
        _ => {}
    }
    let groups = explicit_groups(&properties, limits)?;
    let mut track = tracked(e, name, distinct_id, groups, sent_at, limits)?;
    track.properties = properties;
    commands.insert(0, Command::Track(track));
    Ok(commands)
}

/// A stored event from its top-level fields (`uuid` checked, `timestamp`), properties left to
/// the caller.
fn tracked(
    e: &Body,
    name: String,
    distinct_id: String,
    groups: Vec<(String, Vec<String>)>,
    sent_at: Option<chrono::DateTime<chrono::Utc>>,
    limits: &Limits,
) -> Result<TrackEvent, CoreError> {
    let id = wire::checked_opt_id(e, "uuid", limits)?;
    Ok(TrackEvent {
        event: name,
        distinct_id,
        id,
        timestamp: wire::timestamp(e, "timestamp")?,
        sent_at,
        properties: Properties::new(),
        groups,
        untyped_groups: Vec::new(),
    })
}

/// Why a line of an export was not loaded.
#[derive(Debug)]
pub enum LineError {
    NotJson(serde_json::Error),
    /// Bytes that are not UTF-8, from this offset.
    NotUtf8(usize),
    Rejected(CoreError),
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::NotJson(e) => write!(f, "not valid JSON: {e}"),
            LineError::NotUtf8(at) => write!(f, "not valid JSON: not UTF-8 text from byte {at}"),
            LineError::Rejected(e) => e.fmt(f),
        }
    }
}

impl From<CoreError> for LineError {
    fn from(e: CoreError) -> Self {
        LineError::Rejected(e)
    }
}

/// One line of a PostHog NDJSON export: the same commands as [`event`], but a stored event's
/// properties go through as the JSON text they came as (without `$set` / `$set_once`), only
/// the members the rules read being parsed. An event without a `uuid` gets `default_id()`.
///
/// Why: on a bulk import, parsing each event's properties into a map and serializing them
/// again was most of the reader's time.
pub fn export_line(
    line: &[u8],
    limits: &Limits,
    default_id: impl FnOnce() -> String,
) -> Result<Vec<PreparedCommand>, LineError> {
    let text = std::str::from_utf8(line).map_err(|e| LineError::NotUtf8(e.valid_up_to()))?;
    let (top, properties) = raw::parse_with_nested(text, "properties").map_err(LineError::NotJson)?;
    let mut e = top.parsed();
    let name = wire::text(&e, "event")?;
    if COMMAND_EVENTS.contains(&name.as_str()) {
        let value = serde_json::from_str(text).map_err(LineError::NotJson)?;
        let mut commands = event(value, None, limits)?;
        // `$identify` is also stored: without a uuid, it takes the line's derived id.
        if let Some(Command::Track(track)) = commands.iter_mut().find(|c| matches!(c, Command::Track(_))) {
            track.id.get_or_insert_with(default_id);
        }
        return Ok(commands.into_iter().map(PreparedCommand::from).collect());
    }
    limits.check_event_name("event", &name)?;
    let mut properties =
        properties.map_err(|()| CoreError::invalid("properties", "must be a JSON object"))?.unwrap_or_default();
    // The members the rules read, parsed; `$set` and `$set_once` are person writes, not stored.
    let mut read = Properties::new();
    for field in ["$set", "$set_once"] {
        if let Some(value) = properties.remove(field) {
            read.insert(field.to_string(), value);
        }
    }
    for field in ["distinct_id", "$groups"] {
        if let Some(value) = properties.value(field) {
            read.insert(field.to_string(), value);
        }
    }
    let distinct_id = distinct_id(&e, &read, limits)?;
    let person = person_ops(&mut e, &mut read, &distinct_id, limits)?;
    let groups = explicit_groups(&read, limits)?;
    let mut track = tracked(&e, name, distinct_id, groups, None, limits)?;
    track.id.get_or_insert_with(default_id);
    let mut commands = vec![PreparedCommand::track(track, properties.to_json())];
    commands.extend(person.into_iter().map(PreparedCommand::from));
    Ok(commands)
}

/// `distinct_id` at the top level, else in properties (posthog-js).
fn distinct_id(e: &Body, properties: &Properties, limits: &Limits) -> Result<String, CoreError> {
    let id = match wire::opt_id(e, "distinct_id")? {
        Some(id) => id,
        None => wire::opt_id(properties, "distinct_id")?.ok_or_else(|| CoreError::missing("distinct_id"))?,
    };
    limits.check_id("distinct_id", &id)?;
    Ok(id)
}

/// `$set` / `$set_once` of the event (top level wins over properties), removed from the stored
/// properties since they are person writes.
fn person_ops(
    e: &mut Body,
    properties: &mut Properties,
    distinct_id: &str,
    limits: &Limits,
) -> Result<Vec<Command>, CoreError> {
    let mut commands = Vec::new();
    for (field, set_once) in [("$set", false), ("$set_once", true)] {
        let nested = properties.shift_remove(field);
        let value = e.remove(field).or(nested).filter(|v| !v.is_null());
        let Some(value) = value else { continue };
        let Value::Object(props) = value else {
            return Err(CoreError::invalid(field, "must be a JSON object"));
        };
        limits.check_properties(field, &props)?;
        let op = if set_once { ProfileOp::SetOnce(props) } else { ProfileOp::Set(props) };
        commands.push(Command::PersonProfile { distinct_id: distinct_id.to_string(), op });
    }
    Ok(commands)
}

fn group_identify(properties: &Properties, limits: &Limits) -> ItemResult {
    let group_type = wire::id(properties, "$group_type", limits)?;
    let group_key = wire::id(properties, "$group_key", limits)?;
    let mut commands = Vec::new();
    for (field, set_once) in [("$group_set", false), ("$group_set_once", true)] {
        let props = wire::properties(properties, field, limits)?;
        if !props.is_empty() || (!set_once && commands.is_empty()) {
            let op = if set_once { ProfileOp::SetOnce(props) } else { ProfileOp::Set(props) };
            commands.push(Command::GroupProfile {
                group_type: group_type.clone(),
                group_key: group_key.clone(),
                name: None,
                op,
            });
        }
    }
    Ok(commands)
}

/// `properties.$groups = {type: key}` (a key may also be a list of keys).
fn explicit_groups(properties: &Properties, limits: &Limits) -> Result<Vec<(String, Vec<String>)>, CoreError> {
    let Some(groups) = properties.get("$groups").filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let groups = wire::object(groups, "$groups")?;
    let mut out = Vec::new();
    for group_type in groups.keys() {
        limits.check_id("$groups", group_type)?;
        out.push((group_type.clone(), wire::id_list(groups, group_type, limits)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
