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

/// A native write, named by its route: the path after `/api/sdk/` (`events` for `/api/events`);
/// batch items name theirs in `type`. Each route's name is spelled once, in [`WriteKind::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteKind {
    Event,
    Identify,
    /// `track` (the SDK's session confirmation) and `reset`: accepted, no effect.
    Session,
    UsersUpsert,
    WalletAddress,
    People(PeopleOp),
    Membership(MembershipKind),
    GroupProfile(GroupOp),
}

/// `people/<op>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeopleOp {
    Set,
    SetOnce,
    Unset,
    Increment,
    Append,
    Union,
    Remove,
    Delete,
    TrackCharge,
    ClearCharges,
}

/// `groups/<op>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MembershipKind {
    Set,
    Add,
    Remove,
}

/// `groups/profile/<op>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupOp {
    Set,
    SetOnce,
    Unset,
    Increment,
    Append,
    Union,
    Remove,
    Delete,
}

impl WriteKind {
    /// The write a route path or batch item `type` names, if any.
    pub fn parse(kind: &str) -> Option<WriteKind> {
        Some(match kind {
            "events" => WriteKind::Event,
            "identify" => WriteKind::Identify,
            "track" | "reset" => WriteKind::Session,
            "users/upsert" => WriteKind::UsersUpsert,
            "wallet-address" => WriteKind::WalletAddress,
            _ => {
                if let Some(op) = kind.strip_prefix("people/") {
                    return PeopleOp::parse(op).map(WriteKind::People);
                }
                if let Some(op) = kind.strip_prefix("groups/profile/") {
                    return GroupOp::parse(op).map(WriteKind::GroupProfile);
                }
                return kind.strip_prefix("groups/").and_then(MembershipKind::parse).map(WriteKind::Membership);
            }
        })
    }
}

impl PeopleOp {
    fn parse(op: &str) -> Option<PeopleOp> {
        Some(match op {
            "set" => PeopleOp::Set,
            "set_once" => PeopleOp::SetOnce,
            "unset" => PeopleOp::Unset,
            "increment" => PeopleOp::Increment,
            "append" => PeopleOp::Append,
            "union" => PeopleOp::Union,
            "remove" => PeopleOp::Remove,
            "delete_user" | "delete" => PeopleOp::Delete,
            "track_charge" => PeopleOp::TrackCharge,
            "clear_charges" => PeopleOp::ClearCharges,
            _ => return None,
        })
    }
}

impl MembershipKind {
    fn parse(op: &str) -> Option<MembershipKind> {
        Some(match op {
            "set_group" => MembershipKind::Set,
            "add_group" => MembershipKind::Add,
            "remove_group" => MembershipKind::Remove,
            _ => return None,
        })
    }
}

impl GroupOp {
    fn parse(op: &str) -> Option<GroupOp> {
        Some(match op {
            "set" => GroupOp::Set,
            "set_once" => GroupOp::SetOnce,
            "unset" => GroupOp::Unset,
            "increment" => GroupOp::Increment,
            "append" => GroupOp::Append,
            "union" => GroupOp::Union,
            "remove" => GroupOp::Remove,
            "delete" => GroupOp::Delete,
            _ => return None,
        })
    }
}

/// One native write of `kind` (a route path or batch item `type`).
///
/// Profile writes that are not idempotent (increments, appends, charges) are guarded against
/// resends: by the body's `request_id` when the client sends one (troupe's own SDKs do), else by
/// their content for the retry window (Trodo's SDKs send no id; see docs/semantics.md).
pub fn translate(kind: &str, body: &Value, limits: &Limits) -> Result<crate::Translated, CoreError> {
    let b = wire::object(body, "body")?;
    Ok(crate::Translated { key: site_id(b), items: vec![item(kind, body, limits)] })
}

/// The site id a body names (the route falls back to it when the header has none).
fn site_id(b: &Body) -> Option<String> {
    b.get("siteId").and_then(Value::as_str).filter(|k| !k.is_empty()).map(str::to_string)
}

/// One write's commands (a single route's body, or one batch item).
fn item(kind: &str, body: &Value, limits: &Limits) -> crate::ItemResult {
    let kind =
        WriteKind::parse(kind).ok_or_else(|| CoreError::invalid("type", format!("unknown write type '{kind}'")))?;
    let b = wire::object(body, "body")?;
    let request_id = wire::checked_opt_id(b, "request_id", limits)?;
    Ok(wire::guarded(commands(kind, b, limits)?, request_id.as_deref(), ""))
}

fn commands(kind: WriteKind, b: &Body, limits: &Limits) -> Result<Vec<Command>, CoreError> {
    match kind {
        WriteKind::Event => Ok(vec![event(b, limits)?]),
        WriteKind::Identify => identify(b, limits),
        WriteKind::Session => Ok(Vec::new()),
        WriteKind::UsersUpsert => users_upsert(b, limits),
        WriteKind::WalletAddress => wallet_address(b, limits),
        WriteKind::People(op) => people(op, b, limits).map(|c| vec![c]),
        WriteKind::Membership(op) => membership(op, b, limits).map(|c| vec![c]),
        WriteKind::GroupProfile(op) => group_profile(op, b, limits).map(|c| vec![c]),
    }
}

/// The items of `/api/events/bulk` (`events`) or `/api/sdk/batch` (`items`), each translated on
/// its own so one bad item does not reject the others.
pub fn batch_items(body: &Value, field: &str, limits: &Limits) -> Result<crate::Translated, CoreError> {
    let b = wire::object(body, "body")?;
    let items = match b.get(field) {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => return Err(CoreError::missing(field)),
        Some(_) => return Err(CoreError::invalid(field, "must be a list")),
    };
    let key = site_id(b);
    let items = items
        .iter()
        .map(|item| {
            if field == "events" {
                return self::item("events", item, limits);
            }
            let kind = item.get("type").and_then(Value::as_str);
            match kind {
                Some(kind) => self::item(kind, item, limits),
                None if item.get("run_id").is_some() || item.get("spans").is_some() => Err(CoreError::invalid(
                    "type",
                    "agent runs and spans are not part of troupe; send analytics writes with a 'type'",
                )),
                None => Err(CoreError::missing("type")),
            }
        })
        .collect();
    Ok(crate::Translated { key, items })
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

fn people(op: PeopleOp, b: &Body, limits: &Limits) -> Result<Command, CoreError> {
    let distinct_id = wire::id_of(b, &["userId", "distinctId"], limits)?;
    let profile_op = match op {
        PeopleOp::Set => ProfileOp::Set(wire::properties(b, "properties", limits)?),
        PeopleOp::SetOnce => ProfileOp::SetOnce(wire::properties(b, "properties", limits)?),
        PeopleOp::Unset => ProfileOp::Unset(keys(b, "keys")?),
        PeopleOp::Increment => {
            let key = wire::id(b, "key", limits)?;
            let amount = b.get("amount").cloned().unwrap_or(Value::from(1));
            ProfileOp::increment_from("amount", [(key, amount)])?
        }
        PeopleOp::Append => ProfileOp::Append(vec![(wire::id(b, "key", limits)?, wire::values(b, "values")?)]),
        PeopleOp::Union => ProfileOp::Union(vec![(wire::id(b, "key", limits)?, wire::values(b, "values")?)]),
        PeopleOp::Remove => ProfileOp::Remove(vec![(wire::id(b, "key", limits)?, wire::values(b, "values")?)]),
        PeopleOp::Delete => ProfileOp::Delete,
        PeopleOp::TrackCharge => {
            let amount = wire::number(b, "amount")?.as_f64().unwrap_or(f64::NAN);
            return Ok(Command::TrackCharge {
                distinct_id,
                amount,
                properties: wire::properties(b, "properties", limits)?,
                time: wire::timestamp(b, "time")?,
            });
        }
        PeopleOp::ClearCharges => return Ok(Command::ClearCharges { distinct_id }),
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

fn membership(op: MembershipKind, b: &Body, limits: &Limits) -> Result<Command, CoreError> {
    let distinct_id = wire::id_of(b, &["userId", "distinctId"], limits)?;
    let group_type = wire::id(b, "groupKey", limits)?;
    let op = match op {
        MembershipKind::Set => MembershipOp::Set(wire::id_list(b, "groupId", limits)?),
        MembershipKind::Add => MembershipOp::Add(wire::id(b, "groupId", limits)?),
        MembershipKind::Remove => MembershipOp::Remove(wire::id(b, "groupId", limits)?),
    };
    Ok(Command::Membership { distinct_id, group_type, op })
}

fn group_profile(op: GroupOp, b: &Body, limits: &Limits) -> Result<Command, CoreError> {
    let group_type = wire::id(b, "groupKey", limits)?;
    let group_key = wire::id(b, "groupId", limits)?;
    let property = || wire::id(b, "property", limits);
    let list_name = || wire::id(b, "listName", limits);
    let profile_op = match op {
        GroupOp::Set => ProfileOp::Set(wire::properties(b, "properties", limits)?),
        GroupOp::SetOnce => ProfileOp::SetOnce(wire::properties(b, "properties", limits)?),
        GroupOp::Unset => ProfileOp::Unset(vec![property()?]),
        GroupOp::Increment => {
            let value = b.get("value").cloned().unwrap_or(Value::from(1));
            ProfileOp::increment_from("value", [(property()?, value)])?
        }
        GroupOp::Append => ProfileOp::Append(vec![(property()?, vec![wire::value(b, "value")?])]),
        GroupOp::Union => ProfileOp::Union(vec![(list_name()?, wire::values(b, "values")?)]),
        GroupOp::Remove => ProfileOp::Remove(vec![(list_name()?, vec![wire::value(b, "value")?])]),
        GroupOp::Delete => ProfileOp::Delete,
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
