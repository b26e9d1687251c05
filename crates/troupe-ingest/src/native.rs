//! The native protocol: the routes of Trodo's SDKs (`trodo-python` 2.26.2 and its siblings),
//! which troupe's own SDKs speak too.
//!
//! | route (under `/api/`) | body | commands |
//! |---|---|---|
//! | `events` | `event_name, user_id, custom_properties, session_id, …` | `Track` |
//! | `events/bulk` | `{events: [<event>]}` | one `Track` per item |
//! | `sdk/identify` | `userId/distinctId, identifyId` | `Identify` |
//! | `sdk/track`, `sdk/reset` | session bookkeeping of the SDK | none |
//! | `sdk/users/upsert` | `distinctId, properties?, setOnce?, fixedProperties?` | person `set`, `set_once` (fixed properties: only [`UPSERT_FIXED_PROPERTIES`]) |
//! | `sdk/wallet-address` | `userId/distinctId, walletAddress` | person `set` of `wallet_address`, `union` into `wallet_addresses` |
//! | `sdk/people/<op>` | `userId` + op fields | person profile op, charges, delete |
//! | `sdk/groups/{set,add,remove}_group` | `userId, groupKey, groupId` (a list for `set_group`) | `Membership` |
//! | `sdk/groups/profile/<op>` | `groupKey, groupId` + op fields | `GroupProfile` (never a person) |
//! | `sdk/batch` | `{items: [{type: "<route>", …body}]}` | each item as its route |
//!
//! Trodo events carry no id and no time; troupe accepts optional extensions used by its own
//! SDKs: `timestamp` (ISO or epoch ms), `sent_at`, `event_id` (deduplication), and `groups`
//! (`{type: id | [ids]}`, explicit attribution).

use serde_json::Value;
use troupe_core::{Command, CoreError, Limits, MembershipOp, ProfileOp, TrackEvent};

use crate::wire::{self, Body};

/// The kind of a native write: the route path after `/api/sdk/` (`events` for `/api/events`).
/// Batch items name theirs in `type`.
///
/// Profile writes that are not idempotent (increments, appends, charges) are guarded against
/// resends: by the body's `request_id` when the client sends one (troupe's own SDKs do), else by
/// their content for the retry window (Trodo's SDKs send no id; see docs/semantics.md).
pub fn translate(kind: &str, body: &Value, limits: &Limits) -> Result<Vec<Command>, CoreError> {
    let b = wire::object(body, "body")?;
    let request_id = wire::checked_opt_id(b, "request_id", limits)?;
    Ok(wire::guarded(commands(kind, b, limits)?, request_id.as_deref(), ""))
}

fn commands(kind: &str, b: &Body, limits: &Limits) -> Result<Vec<Command>, CoreError> {
    match kind {
        "events" => Ok(vec![event(b, limits)?]),
        "identify" => identify(b, limits),
        "track" | "reset" => Ok(Vec::new()),
        "users/upsert" => users_upsert(b, limits),
        "wallet-address" => wallet_address(b, limits),
        _ => {
            if let Some(op) = kind.strip_prefix("people/") {
                return people(op, b, limits).map(|c| vec![c]);
            }
            if let Some(op) = kind.strip_prefix("groups/profile/") {
                return group_profile(op, b, limits).map(|c| vec![c]);
            }
            if let Some(op) = kind.strip_prefix("groups/") {
                return membership(op, b, limits).map(|c| vec![c]);
            }
            Err(CoreError::invalid("type", format!("unknown write type '{kind}'")))
        }
    }
}

/// Whether `kind` names a native write route (`people/set`, `groups/profile/union`, …).
pub fn is_write_kind(kind: &str) -> bool {
    const PEOPLE: &[&str] = &[
        "set",
        "set_once",
        "unset",
        "increment",
        "append",
        "union",
        "remove",
        "track_charge",
        "clear_charges",
        "delete_user",
        "delete",
    ];
    const GROUP_PROFILE: &[&str] = &["set", "set_once", "unset", "increment", "append", "union", "remove", "delete"];
    match kind {
        "events" | "identify" | "track" | "reset" | "users/upsert" | "wallet-address" => true,
        "groups/set_group" | "groups/add_group" | "groups/remove_group" => true,
        _ => {
            kind.strip_prefix("people/").is_some_and(|op| PEOPLE.contains(&op))
                || kind.strip_prefix("groups/profile/").is_some_and(|op| GROUP_PROFILE.contains(&op))
        }
    }
}

/// The items of `/api/events/bulk` (`events`) or `/api/sdk/batch` (`items`), each translated on
/// its own so one bad item does not reject the others.
pub fn batch_items(body: &Value, field: &str, limits: &Limits) -> Result<Vec<crate::ItemResult>, CoreError> {
    let b = wire::object(body, "body")?;
    let items = match b.get(field) {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => return Err(CoreError::missing(field)),
        Some(_) => return Err(CoreError::invalid(field, "must be a list")),
    };
    Ok(items
        .iter()
        .map(|item| {
            if field == "events" {
                return translate("events", item, limits);
            }
            let kind = item.get("type").and_then(Value::as_str);
            match kind {
                Some(kind) => translate(kind, item, limits),
                None if item.get("run_id").is_some() || item.get("spans").is_some() => Err(CoreError::invalid(
                    "type",
                    "agent runs and spans are not part of troupe; send analytics writes with a 'type'",
                )),
                None => Err(CoreError::missing("type")),
            }
        })
        .collect())
}

fn event(b: &Body, limits: &Limits) -> Result<Command, CoreError> {
    let name = wire::text(b, "event_name")?;
    limits.check_event_name("event_name", &name)?;
    let distinct_id = wire::id_of(b, &["user_id", "distinct_id", "userId"], limits)?;
    let mut properties = wire::properties(b, "custom_properties", limits)?;
    if let Some(session) = wire::opt_id(b, "session_id")? {
        properties.insert("$session_id".into(), Value::String(session));
    }
    for (field, key) in [("event_category", "$event_category"), ("event_type", "$event_type")] {
        if let Some(Value::String(v)) = b.get(field) {
            if v != "custom" {
                properties.insert(key.into(), Value::String(v.clone()));
            }
        }
    }
    for (field, key) in [("page_data", "$page"), ("auto_event_data", "$auto_event"), ("element_data", "$element")] {
        if let Some(v @ Value::Object(_)) = b.get(field) {
            properties.insert(key.into(), v.clone());
        }
    }
    limits.check_properties("custom_properties", &properties)?;
    let id = wire::checked_opt_id(b, "event_id", limits)?;
    Ok(Command::Track(TrackEvent {
        event: name,
        distinct_id,
        id,
        timestamp: wire::timestamp(b, "timestamp")?,
        sent_at: wire::timestamp(b, "sent_at")?,
        properties,
        groups: explicit_groups(b, limits)?,
        untyped_groups: Vec::new(),
    }))
}

/// `groups: {type: id | [ids]}` on an event.
fn explicit_groups(b: &Body, limits: &Limits) -> Result<Vec<(String, Vec<String>)>, CoreError> {
    let Some(groups) = b.get("groups").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let groups = wire::object(groups, "groups")?;
    let mut out = Vec::new();
    for group_type in groups.keys() {
        limits.check_id("groups", group_type)?;
        out.push((group_type.clone(), wire::id_list(groups, group_type, limits)?));
    }
    Ok(out)
}

fn identify(b: &Body, limits: &Limits) -> Result<Vec<Command>, CoreError> {
    let current = wire::id_of(b, &["userId", "distinctId"], limits)?;
    let identified = wire::id(b, "identifyId", limits)?;
    Ok(vec![Command::Identify { anon_distinct_id: current, distinct_id: identified }])
}

/// The fixed profile properties `users/upsert` stores, as Trodo allows them from a server: what
/// a backend can know. The `first_` ones are kept once (`set_once`), the `last_` ones replaced.
/// Device, browser, OS, referrer and UTM are the browser's observations: skipped.
pub const UPSERT_FIXED_PROPERTIES: &[&str] =
    &["first_location_country", "first_location_city", "last_location_country", "last_location_city"];

/// The fixed property keys of a `users/upsert` body: (stored, skipped), each in the body's order.
pub fn upsert_fixed_keys(body: &Value) -> (Vec<String>, Vec<String>) {
    let keys = body.get("fixedProperties").and_then(Value::as_object).into_iter().flat_map(|m| m.keys());
    keys.cloned().partition(|k| UPSERT_FIXED_PROPERTIES.contains(&k.as_str()))
}

fn users_upsert(b: &Body, limits: &Limits) -> Result<Vec<Command>, CoreError> {
    let distinct_id = wire::id(b, "distinctId", limits)?;
    let mut set = wire::properties(b, "properties", limits)?;
    let mut set_once = wire::properties(b, "setOnce", limits)?;
    for (key, value) in wire::properties(b, "fixedProperties", limits)? {
        if !UPSERT_FIXED_PROPERTIES.contains(&key.as_str()) {
            continue;
        }
        if key.starts_with("first_") {
            set_once.insert(key, value);
        } else {
            set.insert(key, value);
        }
    }
    // Even with no bag at all the user is made to exist (Trodo: "ensures the user exists").
    let mut commands = vec![Command::PersonProfile { distinct_id: distinct_id.clone(), op: ProfileOp::Set(set) }];
    if !set_once.is_empty() {
        commands.push(Command::PersonProfile { distinct_id, op: ProfileOp::SetOnce(set_once) });
    }
    Ok(commands)
}

/// trodo-python's `wallet_address(addr)`: the user's latest wallet, and every wallet they used.
fn wallet_address(b: &Body, limits: &Limits) -> Result<Vec<Command>, CoreError> {
    let distinct_id = wire::id_of(b, &["userId", "distinctId"], limits)?;
    let wallet = wire::id(b, "walletAddress", limits)?;
    let latest = serde_json::Map::from_iter([("wallet_address".to_string(), Value::String(wallet.clone()))]);
    Ok(vec![
        Command::PersonProfile { distinct_id: distinct_id.clone(), op: ProfileOp::Set(latest) },
        Command::PersonProfile {
            distinct_id,
            op: ProfileOp::Union(vec![("wallet_addresses".into(), vec![Value::String(wallet)])]),
        },
    ])
}

fn people(op: &str, b: &Body, limits: &Limits) -> Result<Command, CoreError> {
    let distinct_id = wire::id_of(b, &["userId", "distinctId"], limits)?;
    let profile_op = match op {
        "set" => ProfileOp::Set(wire::properties(b, "properties", limits)?),
        "set_once" => ProfileOp::SetOnce(wire::properties(b, "properties", limits)?),
        "unset" => ProfileOp::Unset(keys(b, "keys")?),
        "increment" => {
            let key = wire::id(b, "key", limits)?;
            let amount = b.get("amount").cloned().unwrap_or(Value::from(1));
            ProfileOp::increment_from("amount", [(key, amount)])?
        }
        "append" => ProfileOp::Append(vec![(wire::id(b, "key", limits)?, wire::values(b, "values")?)]),
        "union" => ProfileOp::Union(vec![(wire::id(b, "key", limits)?, wire::values(b, "values")?)]),
        "remove" => ProfileOp::Remove(vec![(wire::id(b, "key", limits)?, wire::values(b, "values")?)]),
        "delete_user" | "delete" => ProfileOp::Delete,
        "track_charge" => {
            let amount = wire::number(b, "amount")?.as_f64().unwrap_or(f64::NAN);
            return Ok(Command::TrackCharge {
                distinct_id,
                amount,
                properties: wire::properties(b, "properties", limits)?,
                time: wire::timestamp(b, "time")?,
            });
        }
        "clear_charges" => return Ok(Command::ClearCharges { distinct_id }),
        other => return Err(CoreError::invalid("path", format!("unknown people operation '{other}'"))),
    };
    limits.check_json_size("body", &profile_op.payload())?;
    Ok(Command::PersonProfile { distinct_id, op: profile_op })
}

fn keys(b: &Body, field: &str) -> Result<Vec<String>, CoreError> {
    wire::values(b, field)?
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            _ => Err(CoreError::invalid(field, "must be a list of property names")),
        })
        .collect()
}

fn membership(op: &str, b: &Body, limits: &Limits) -> Result<Command, CoreError> {
    let distinct_id = wire::id_of(b, &["userId", "distinctId"], limits)?;
    let group_type = wire::id(b, "groupKey", limits)?;
    let op = match op {
        "set_group" => MembershipOp::Set(wire::id_list(b, "groupId", limits)?),
        "add_group" => MembershipOp::Add(wire::id(b, "groupId", limits)?),
        "remove_group" => MembershipOp::Remove(wire::id(b, "groupId", limits)?),
        other => return Err(CoreError::invalid("path", format!("unknown group operation '{other}'"))),
    };
    Ok(Command::Membership { distinct_id, group_type, op })
}

fn group_profile(op: &str, b: &Body, limits: &Limits) -> Result<Command, CoreError> {
    let group_type = wire::id(b, "groupKey", limits)?;
    let group_key = wire::id(b, "groupId", limits)?;
    let property = || wire::id(b, "property", limits);
    let list_name = || wire::id(b, "listName", limits);
    let profile_op = match op {
        "set" => ProfileOp::Set(wire::properties(b, "properties", limits)?),
        "set_once" => ProfileOp::SetOnce(wire::properties(b, "properties", limits)?),
        "unset" => ProfileOp::Unset(vec![property()?]),
        "increment" => {
            let value = b.get("value").cloned().unwrap_or(Value::from(1));
            ProfileOp::increment_from("value", [(property()?, value)])?
        }
        "append" => ProfileOp::Append(vec![(property()?, vec![wire::value(b, "value")?])]),
        "union" => ProfileOp::Union(vec![(list_name()?, wire::values(b, "values")?)]),
        "remove" => ProfileOp::Remove(vec![(list_name()?, vec![wire::value(b, "value")?])]),
        "delete" => ProfileOp::Delete,
        other => return Err(CoreError::invalid("path", format!("unknown group profile operation '{other}'"))),
    };
    limits.check_json_size("body", &profile_op.payload())?;
    let name = match b.get("name") {
        Some(Value::String(n)) if !n.is_empty() => Some(n.clone()),
        _ => None,
    };
    Ok(Command::GroupProfile { group_type, group_key, name, op: profile_op })
}

#[cfg(test)]
mod tests;
