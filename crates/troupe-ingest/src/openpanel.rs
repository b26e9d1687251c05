//! The OpenPanel protocol: `@openpanel/sdk` 1.3.1 (node and browser).
//!
//! Every call is `POST /track` with `{type, payload}` and the `openpanel-client-id` header:
//!
//! | type | payload | commands |
//! |---|---|---|
//! | `track` | `name, profileId?, groups?: [ids], properties` | `Track`; `groups` are untyped ids; `properties.__timestamp` is the time |
//! | `identify` | `profileId, firstName?, lastName?, email?, avatar?, properties?` | person `set` |
//! | `group` (`upsertGroup`) | `id, type, name?, properties?` | group `set`, with its name |
//! | `assign_group` (`setGroup(s)`) | `groupIds, profileId` | `JoinUntypedGroups` |
//! | `increment` / `decrement` | `profileId, property, value` | person `increment` (negated) |
//! | `alias` | `profileId, alias` | `Alias` |
//! | `replay` | session replay chunks | none (not part of troupe) |
//!
//! A request without `profileId` is an anonymous visitor: the server derives a device id for it.

use serde_json::{Number, Value};
use troupe_core::{Command, CoreError, Limits, ProfileOp, TrackEvent};

use crate::wire::{self, Body};

/// Translate one request. `device_id` is the server-derived id for payloads without `profileId`.
///
/// OpenPanel sends no id with a write: its increments and decrements are guarded against
/// resends by their content, for the retry window (docs/semantics.md).
pub fn translate(body: &Value, device_id: &str, limits: &Limits) -> Result<crate::Translated, CoreError> {
    // The project is the `openpanel-client-id` header: the body names none.
    let item = commands(body, device_id, limits).map(|commands| wire::guarded(commands, None, ""));
    Ok(crate::Translated { key: None, items: vec![item] })
}

fn commands(body: &Value, device_id: &str, limits: &Limits) -> Result<Vec<Command>, CoreError> {
    let b = wire::object(body, "body")?;
    let kind = wire::text(b, "type")?;
    let payload = wire::object(b.get("payload").unwrap_or(&Value::Null), "payload")?;
    let profile = || -> Result<String, CoreError> {
        match wire::opt_id(payload, "profileId")? {
            Some(id) => {
                limits.check_id("profileId", &id)?;
                Ok(id)
            }
            None => Ok(device_id.to_string()),
        }
    };
    match kind.as_str() {
        "track" => Ok(vec![Command::Track(track(payload, profile()?, limits)?)]),
        "identify" => {
            let distinct_id = wire::id(payload, "profileId", limits)?;
            let mut props = wire::properties(payload, "properties", limits)?;
            for field in ["firstName", "lastName", "email", "avatar"] {
                if let Some(v @ Value::String(_)) = payload.get(field) {
                    props.insert(field.to_string(), v.clone());
                }
            }
            limits.check_properties("properties", &props)?;
            Ok(vec![Command::PersonProfile { distinct_id, op: ProfileOp::Set(props) }])
        }
        "group" => {
            let group_key = wire::id(payload, "id", limits)?;
            let group_type = wire::id(payload, "type", limits)?;
            let name = wire::opt_id(payload, "name")?;
            let props = wire::properties(payload, "properties", limits)?;
            Ok(vec![Command::GroupProfile { group_type, group_key, name, op: ProfileOp::Set(props) }])
        }
        "assign_group" => {
            let group_keys = wire::id_list(payload, "groupIds", limits)?;
            Ok(vec![Command::JoinUntypedGroups { distinct_id: profile()?, group_keys }])
        }
        "increment" | "decrement" => {
            let distinct_id = wire::id(payload, "profileId", limits)?;
            let property = wire::id(payload, "property", limits)?;
            let value = match payload.get("value") {
                None | Some(Value::Null) => Number::from(1),
                Some(Value::Number(n)) => n.clone(),
                Some(_) => return Err(CoreError::invalid("value", "must be a number")),
            };
            let by = if kind == "decrement" { negate(&value) } else { Some(value) };
            let by = by.ok_or_else(|| CoreError::invalid("value", "must be a finite number"))?;
            Ok(vec![Command::PersonProfile { distinct_id, op: ProfileOp::Increment(vec![(property, by)]) }])
        }
        "alias" => {
            let distinct_id = wire::id(payload, "profileId", limits)?;
            let alias = wire::id(payload, "alias", limits)?;
            Ok(vec![Command::Alias { distinct_id, alias }])
        }
        "replay" => Ok(Vec::new()),
        other => Err(CoreError::invalid("type", format!("unknown type '{other}'"))),
    }
}

fn track(payload: &Body, distinct_id: String, limits: &Limits) -> Result<TrackEvent, CoreError> {
    let name = wire::text(payload, "name")?;
    limits.check_event_name("name", &name)?;
    let mut properties = wire::properties(payload, "properties", limits)?;
    let timestamp = wire::timestamp(&properties, "__timestamp")?;
    properties.shift_remove("__timestamp");
    let untyped_groups = match payload.get("groups") {
        None | Some(Value::Null) => Vec::new(),
        Some(_) => wire::id_list(payload, "groups", limits)?,
    };
    Ok(TrackEvent {
        event: name,
        distinct_id,
        id: None,
        timestamp,
        sent_at: None,
        properties,
        groups: Vec::new(),
        untyped_groups,
    })
}

fn negate(n: &Number) -> Option<Number> {
    match n.as_i64() {
        Some(i) => i.checked_neg().map(Number::from),
        None => n.as_f64().and_then(|f| Number::from_f64(-f)),
    }
}

#[cfg(test)]
mod tests;
