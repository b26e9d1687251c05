//! The Mixpanel ingestion API: `mixpanel` (PyPI) 5.4.1 and Mixpanel-compatible senders.
//!
//! Bodies are form-encoded `data=<JSON>` (plain JSON as mixpanel-python sends it, or base64 as
//! mixpanel-js does), one message or a list. The project token is in every message
//! (`properties.token`, `$token`).
//!
//! | endpoint | message | commands |
//! |---|---|---|
//! | `/track`, `/import` | `{event, properties: {token, distinct_id, time, $insert_id, …}}` | `Track`; `$create_alias`, `$identify`, `$merge` become identity commands |
//! | `/engage` | `{$token, $distinct_id, $set \| $set_once \| $add \| $append \| $union \| $remove \| $unset \| $delete}` | person ops |
//! | `/groups` | `{$token, $group_key, $group_id, <op>}` | group ops (never a person) |
//!
//! Mixpanel ties users and events to groups through properties named after a **group key**
//! (configured, default `company`): a person property `company: ["acme"]` is the membership, and an
//! event property `company: "acme"` attributes the event.

use base64::Engine;
use serde_json::Value;
use troupe_core::{Command, CoreError, Limits, MembershipOp, ProfileOp, Properties, TrackEvent};

use crate::wire::{self, Body};
use crate::{ItemResult, Translated};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Track,
    Import,
    Engage,
    Groups,
}

/// The `data` field: JSON, or base64 of JSON.
pub fn decode_data(raw: &str) -> Result<Value, CoreError> {
    let text = data_text(raw)?;
    serde_json::from_slice(&text).map_err(|e| CoreError::invalid("data", format!("is not valid JSON: {e}")))
}

/// The JSON text of a `data` field: itself when it is JSON, else its base64 decoded (JSON text
/// never starts like base64 does, with a letter, digit, `+` or `/`).
pub fn data_text(raw: &str) -> Result<std::borrow::Cow<'_, [u8]>, CoreError> {
    let raw = raw.trim();
    if raw.starts_with(['{', '[']) {
        return Ok(std::borrow::Cow::Borrowed(raw.as_bytes()));
    }
    base64::engine::general_purpose::STANDARD
        .decode(raw)
        .map(std::borrow::Cow::Owned)
        .map_err(|_| CoreError::invalid("data", "must be JSON (or base64 of JSON)"))
}

/// The `data` field of a form-encoded body (`application/x-www-form-urlencoded`), refusing
/// bytes that are not UTF-8 once decoded (as the JSON routes refuse them) instead of turning
/// them into U+FFFD.
pub fn form_data(body: &[u8]) -> Result<String, CoreError> {
    for pair in body.split(|&b| b == b'&') {
        let (key, value) = match pair.iter().position(|&b| b == b'=') {
            Some(at) => (&pair[..at], &pair[at + 1..]),
            None => (pair, &pair[..0]),
        };
        if form_decode(key).as_deref() == Some(b"data".as_slice()) {
            let bytes = form_decode(value).ok_or_else(|| CoreError::invalid("data", "has a malformed %-escape"))?;
            return String::from_utf8(bytes).map_err(|_| CoreError::invalid("data", "is not valid UTF-8"));
        }
    }
    Err(CoreError::missing("data"))
}

/// `+` as space and `%XX` escapes; `None` for a `%` not followed by two hex digits.
fn form_decode(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(text.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

pub fn translate(
    endpoint: Endpoint,
    data: &Value,
    group_keys: &[String],
    limits: &Limits,
) -> Result<Translated, CoreError> {
    let messages: Vec<&Value> = match data {
        Value::Array(list) => list.iter().collect(),
        Value::Object(_) => vec![data],
        _ => return Err(CoreError::invalid("data", "must be a JSON object or a list of them")),
    };
    let token = messages.iter().find_map(|m| token_of(m));
    let items = messages
        .into_iter()
        .map(|m| match endpoint {
            Endpoint::Track | Endpoint::Import => event(m, group_keys, limits),
            Endpoint::Engage => engage(m, group_keys, limits),
            Endpoint::Groups => groups(m, limits),
        })
        .collect();
    Ok(Translated { key: token, items })
}

fn token_of(m: &Value) -> Option<String> {
    let direct = m.get("$token").and_then(Value::as_str);
    let nested = m.get("properties").and_then(|p| p.get("token")).and_then(Value::as_str);
    direct.or(nested).filter(|t| !t.is_empty()).map(str::to_string)
}

/// One Mixpanel event (also one line of a Mixpanel export).
pub fn event(value: &Value, group_keys: &[String], limits: &Limits) -> ItemResult {
    let m = wire::object(value, "data")?;
    let name = wire::text(m, "event")?;
    limits.check_event_name("event", &name)?;
    let mut properties = wire::properties(m, "properties", limits)?;
    properties.shift_remove("token");
    let distinct_id = wire::id(&properties, "distinct_id", limits)?;
    match name.as_str() {
        "$create_alias" => {
            let alias = wire::id(&properties, "alias", limits)?;
            return Ok(vec![Command::Alias { distinct_id, alias }]);
        }
        "$identify" => {
            let identified = wire::id(&properties, "$identified_id", limits)?;
            let anon = wire::id(&properties, "$anon_id", limits)?;
            return Ok(vec![Command::Identify { anon_distinct_id: anon, distinct_id: identified }]);
        }
        "$merge" => {
            let ids = wire::id_list(&properties, "$distinct_ids", limits)?;
            let [first, second] = ids.as_slice() else {
                return Err(CoreError::invalid("$distinct_ids", "must hold exactly two ids"));
            };
            return Ok(vec![Command::Alias { distinct_id: first.clone(), alias: second.clone() }]);
        }
        _ => {}
    }
    let mut groups = Vec::new();
    for key in group_keys {
        if properties.get(key).is_some_and(|v| !v.is_null()) {
            groups.push((key.clone(), wire::id_list(&properties, key, limits)?));
        }
    }
    let id = wire::checked_opt_id(&properties, "$insert_id", limits)?;
    let timestamp = wire::timestamp(&properties, "time")?;
    Ok(vec![Command::Track(TrackEvent {
        event: name,
        distinct_id,
        id,
        timestamp,
        sent_at: None,
        properties,
        groups,
        untyped_groups: Vec::new(),
    })])
}

/// The profile op of a message, and its field name. Exactly one per message.
fn profile_op(m: &Body, limits: &Limits) -> Result<(ProfileOp, &'static str), CoreError> {
    const OPS: &[&str] = &["$set", "$set_once", "$add", "$append", "$union", "$remove", "$unset", "$delete"];
    let present: Vec<&str> = OPS.iter().copied().filter(|op| m.contains_key(*op)).collect();
    let [field] = present.as_slice() else {
        return Err(CoreError::invalid("operation", format!("needs exactly one of {}", OPS.join(", "))));
    };
    let field: &'static str = field;
    let object = || -> Result<Properties, CoreError> {
        let props = wire::properties(m, field, limits)?;
        Ok(props)
    };
    let pairs = |as_list: bool| -> Result<Vec<(String, Vec<Value>)>, CoreError> {
        Ok(object()?
            .into_iter()
            .map(|(k, v)| match (as_list, v) {
                (true, Value::Array(items)) => (k, items),
                (_, other) => (k, vec![other]),
            })
            .collect())
    };
    let op = match field {
        "$set" => ProfileOp::Set(object()?),
        "$set_once" => ProfileOp::SetOnce(object()?),
        "$add" => ProfileOp::increment_from("$add", object()?)?,
        "$append" => ProfileOp::Append(pairs(false)?),
        "$union" => ProfileOp::Union(pairs(true)?),
        "$remove" => ProfileOp::Remove(pairs(false)?),
        "$unset" => {
            let keys = wire::values(m, "$unset")?;
            ProfileOp::Unset(keys.into_iter().filter_map(|k| k.as_str().map(str::to_string)).collect())
        }
        _ => ProfileOp::Delete,
    };
    limits.check_json_size(field, &op.payload())?;
    Ok((op, field))
}

fn engage(value: &Value, group_keys: &[String], limits: &Limits) -> ItemResult {
    let m = wire::object(value, "data")?;
    let distinct_id = wire::id(m, "$distinct_id", limits)?;
    let (op, _) = profile_op(m, limits)?;
    let memberships = membership_ops(&op, group_keys, limits)?;
    let mut commands = vec![Command::PersonProfile { distinct_id: distinct_id.clone(), op }];
    for (group_type, op) in memberships {
        commands.push(Command::Membership { distinct_id: distinct_id.clone(), group_type, op });
    }
    guarded(m, commands, limits)
}

/// Profile updates guarded against resends: by `$insert_id` when the message has one, else by
/// content with the message's `$time` (sent to the microsecond by mixpanel-python, so two
/// genuine increments a moment apart stay two).
fn guarded(m: &wire::Body, commands: Vec<Command>, limits: &Limits) -> ItemResult {
    let insert_id = wire::checked_opt_id(m, "$insert_id", limits)?;
    let time = m.get("$time").map(Value::to_string).unwrap_or_default();
    Ok(wire::guarded(commands, insert_id.as_deref(), &time))
}

/// A person property named after a group key is the person's membership of that type.
fn membership_ops(
    op: &ProfileOp,
    group_keys: &[String],
    limits: &Limits,
) -> Result<Vec<(String, MembershipOp)>, CoreError> {
    let is_key = |k: &str| group_keys.iter().any(|g| g == k);
    let ids = |values: &[Value]| -> Result<Vec<String>, CoreError> {
        values
            .iter()
            .map(|v| {
                let id = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => return Err(CoreError::invalid("group id", "must be a string or a number")),
                };
                limits.check_id("group id", &id)?;
                Ok(id)
            })
            .collect()
    };
    let mut out = Vec::new();
    match op {
        ProfileOp::Set(props) => {
            for (k, v) in props.iter().filter(|(k, _)| is_key(k)) {
                let list = match v {
                    Value::Array(items) => items.clone(),
                    Value::Null => Vec::new(),
                    one => vec![one.clone()],
                };
                out.push((k.clone(), MembershipOp::Set(ids(&list)?)));
            }
        }
        ProfileOp::Append(pairs) | ProfileOp::Union(pairs) => {
            for (k, values) in pairs.iter().filter(|(k, _)| is_key(k)) {
                for id in ids(values)? {
                    out.push((k.clone(), MembershipOp::Add(id)));
                }
            }
        }
        ProfileOp::Remove(pairs) => {
            for (k, values) in pairs.iter().filter(|(k, _)| is_key(k)) {
                for id in ids(values)? {
                    out.push((k.clone(), MembershipOp::Remove(id)));
                }
            }
        }
        ProfileOp::Unset(keys) => {
            for k in keys.iter().filter(|k| is_key(k)) {
                out.push((k.clone(), MembershipOp::Set(Vec::new())));
            }
        }
        _ => {}
    }
    Ok(out)
}

fn groups(value: &Value, limits: &Limits) -> ItemResult {
    let m = wire::object(value, "data")?;
    let group_type = wire::id(m, "$group_key", limits)?;
    let group_key = wire::id(m, "$group_id", limits)?;
    let (op, _) = profile_op(m, limits)?;
    guarded(m, vec![Command::GroupProfile { group_type, group_key, name: None, op }], limits)
}

#[cfg(test)]
mod tests;
