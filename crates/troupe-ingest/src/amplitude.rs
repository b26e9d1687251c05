//! Amplitude's event shape: the rows of its Export API (NDJSON, one event per line), which troupe
//! imports (`troupe import --from amplitude`), and the events of its HTTP API v2 / Batch API
//! (`{api_key, events: [event…]}`, [`translate`]), which the `amplitude-analytics` client sends.
//!
//! | field | becomes |
//! |---|---|
//! | `event_type` | the event name; `$identify` rows are person writes only, `$groupidentify` group writes only |
//! | `user_id`, `device_id` | the distinct id is `user_id`, else `device_id`; with both, the device's id is identified as the user (Amplitude links them the same way) |
//! | `event_time` (`2026-11-01 12:34:56.789000`, UTC), else `client_event_time`, else `time` (epoch ms) | the event time |
//! | `event_properties` | the event's properties |
//! | `user_properties` | a person `set`, or the operations it holds (`$set`, `$setOnce`, `$add`, `$append`, `$union`, `$remove`, `$unset`) |
//! | `groups` (`{type: id \| [ids]}`) | explicit attribution for those types |
//! | `group_properties` (`{type: {id: {…}}}` or `{type: {…}}`) | a group `set` of each named group (operations on `$groupidentify`) |
//! | `groups` on `$identify` (the client's `set_group`) | the user's groups of each type become these (`set_group`) |
//! | `insert_id` / `$insert_id`, else `uuid` | the event id (deduplication) |

use chrono::{DateTime, NaiveDateTime, Utc};
use serde_json::Value;
use troupe_core::{Command, CoreError, Limits, ProfileOp, Properties, TrackEvent};

use crate::wire::{self, Body};
use crate::{ItemResult, Translated};

/// An HTTP API v2 / Batch API body: `{api_key, events: [event…], options?}`.
pub fn translate(body: &Value, limits: &Limits) -> Result<Translated, CoreError> {
    let b = wire::object(body, "body")?;
    let key = b.get("api_key").and_then(Value::as_str).filter(|k| !k.is_empty()).map(str::to_string);
    let events = match b.get("events") {
        Some(Value::Array(events)) => events,
        None | Some(Value::Null) => return Err(CoreError::missing("events")),
        Some(_) => return Err(CoreError::invalid("events", "must be a list of events")),
    };
    Ok(Translated { key, items: events.iter().map(|e| event(e, limits)).collect() })
}

/// One Amplitude event.
pub fn event(value: &Value, limits: &Limits) -> ItemResult {
    let e = wire::object(value, "event")?;
    let name = wire::text(e, "event_type")?;
    limits.check_event_name("event_type", &name)?;
    let groups = groups(e, limits)?;
    if name == "$groupidentify" {
        return group_writes(e, &groups, true, limits);
    }
    let user_id = wire::checked_opt_id(e, "user_id", limits)?;
    let device_id = wire::checked_opt_id(e, "device_id", limits)?;
    let distinct_id = user_id.clone().or(device_id.clone()).ok_or_else(|| CoreError::missing("user_id"))?;
    let mut commands = Vec::new();
    if let (Some(user), Some(device)) = (&user_id, &device_id) {
        if user != device {
            commands.push(Command::Identify { anon_distinct_id: device.clone(), distinct_id: user.clone() });
        }
    }
    let person_ops = person_ops(e, limits)?;
    let event_id = ["insert_id", "$insert_id", "uuid"]
        .iter()
        .find_map(|field| wire::checked_opt_id(e, field, limits).transpose())
        .transpose()?;
    if name == "$identify" {
        // The client's `set_group(type, name)` is an `$identify` naming the groups.
        for (group_type, ids) in &groups {
            let op = troupe_core::MembershipOp::Set(ids.clone());
            commands.push(Command::Membership { distinct_id: distinct_id.clone(), group_type: group_type.clone(), op });
        }
        if person_ops.is_empty() && groups.is_empty() {
            commands.push(Command::PersonProfile {
                distinct_id: distinct_id.clone(),
                op: ProfileOp::Set(Properties::new()),
            });
        }
        let writes = person_ops.into_iter().map(|op| Command::PersonProfile { distinct_id: distinct_id.clone(), op });
        commands.extend(writes);
        return Ok(wire::guarded(commands, event_id.as_deref(), ""));
    }
    let track = TrackEvent {
        event: name,
        distinct_id: distinct_id.clone(),
        id: event_id.clone(),
        timestamp: time(e)?,
        sent_at: None,
        properties: wire::properties(e, "event_properties", limits)?,
        groups: groups.clone(),
        untyped_groups: Vec::new(),
    };
    commands.push(Command::Track(track));
    commands.extend(person_ops.into_iter().map(|op| Command::PersonProfile { distinct_id: distinct_id.clone(), op }));
    commands.extend(group_writes(e, &groups, false, limits)?);
    Ok(wire::guarded(commands, event_id.as_deref(), ""))
}

/// `event_time` (Amplitude's `YYYY-MM-DD HH:MM:SS[.ffffff]`, UTC), else `client_event_time`,
/// else `time` (the HTTP API's epoch milliseconds).
fn time(e: &Body) -> Result<Option<DateTime<Utc>>, CoreError> {
    for field in ["event_time", "client_event_time"] {
        if let Some(Value::String(text)) = e.get(field) {
            if let Ok(naive) = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f") {
                let time = naive.and_utc();
                if !troupe_core::event::in_time_range(time) {
                    return Err(CoreError::invalid(field, format!("{text} is out of range")));
                }
                return Ok(Some(time));
            }
            return wire::timestamp(e, field);
        }
    }
    wire::timestamp(e, "time")
}

/// `groups`: `{type: id | [ids]}`.
fn groups(e: &Body, limits: &Limits) -> Result<Vec<(String, Vec<String>)>, CoreError> {
    let Some(groups) = e.get("groups").filter(|g| !g.is_null()) else {
        return Ok(Vec::new());
    };
    let groups = groups.as_object().ok_or_else(|| CoreError::invalid("groups", "must be an object of group types"))?;
    let mut out = Vec::new();
    for group_type in groups.keys() {
        limits.check_id("groups", group_type)?;
        let ids = wire::id_list(groups, group_type, limits)?;
        out.push((group_type.clone(), ids));
    }
    Ok(out)
}

/// The person operations of `user_properties`: its `$`-operations, or a `set` of the whole map
/// (an exported event's snapshot of the user's properties).
fn person_ops(e: &Body, limits: &Limits) -> Result<Vec<ProfileOp>, CoreError> {
    let properties = wire::properties(e, "user_properties", limits)?;
    operations(properties, "user_properties")
}

fn operations(properties: Properties, field: &str) -> Result<Vec<ProfileOp>, CoreError> {
    if properties.is_empty() {
        return Ok(Vec::new());
    }
    if !properties.keys().any(|k| k.starts_with('$')) {
        return Ok(vec![ProfileOp::Set(properties)]);
    }
    let mut ops = Vec::new();
    for (operation, value) in properties {
        let at = format!("{field}.{operation}");
        let map = || match &value {
            Value::Object(map) => Ok(map.clone()),
            _ => Err(CoreError::invalid(&at, "must be an object")),
        };
        let lists = || -> Result<Vec<(String, Vec<Value>)>, CoreError> {
            Ok(map()?
                .into_iter()
                .map(|(k, v)| (k, if let Value::Array(items) = v { items } else { vec![v] }))
                .collect())
        };
        ops.push(match operation.as_str() {
            "$set" => ProfileOp::Set(map()?),
            "$setOnce" => ProfileOp::SetOnce(map()?),
            "$add" => ProfileOp::increment_from(&at, map()?)?,
            "$append" => ProfileOp::Append(lists()?),
            "$union" => ProfileOp::Union(lists()?),
            "$remove" => ProfileOp::Remove(lists()?),
            "$unset" => ProfileOp::Unset(map()?.keys().cloned().collect()),
            other => return Err(CoreError::invalid(&at, format!("unsupported user property operation '{other}'"))),
        });
    }
    Ok(ops)
}

/// `group_properties` as group writes. On `$groupidentify` they apply to every group of
/// `groups` and may be operations; on an event they are `{type: {id: {…}}}` (or `{type: {…}}`
/// for the event's one group of the type), each a `set`.
fn group_writes(e: &Body, groups: &[(String, Vec<String>)], identify: bool, limits: &Limits) -> ItemResult {
    let properties = wire::properties(e, "group_properties", limits)?;
    let mut commands = Vec::new();
    let write = |group_type: &str, group_key: &str, op: ProfileOp| Command::GroupProfile {
        group_type: group_type.to_string(),
        group_key: group_key.to_string(),
        name: None,
        op,
    };
    if identify {
        if groups.is_empty() {
            return Err(CoreError::missing("groups"));
        }
        let ops = operations(properties, "group_properties")?;
        let ops = if ops.is_empty() { vec![ProfileOp::Set(Properties::new())] } else { ops };
        for (group_type, ids) in groups {
            for id in ids {
                commands.extend(ops.iter().map(|op| write(group_type, id, op.clone())));
            }
        }
        return Ok(commands);
    }
    for (group_type, value) in properties {
        let Some(ids) = groups.iter().find(|(t, _)| *t == group_type).map(|(_, ids)| ids) else {
            continue;
        };
        let Value::Object(by_group) = value else {
            return Err(CoreError::invalid(format!("group_properties.{group_type}"), "must be an object"));
        };
        let per_group = !by_group.is_empty() && by_group.iter().all(|(k, v)| ids.contains(k) && v.is_object());
        if per_group {
            for (id, props) in by_group {
                if let Value::Object(props) = props {
                    commands.push(write(&group_type, &id, ProfileOp::Set(props)));
                }
            }
        } else if let [only] = ids.as_slice() {
            commands.push(write(&group_type, only, ProfileOp::Set(by_group)));
        }
    }
    Ok(commands)
}

#[cfg(test)]
mod tests;
