//! The Segment protocol: `segment-analytics-python` 2.4.0, `@segment/analytics-node`, and
//! Segment-spec payloads from any collector.
//!
//! `POST /v1/batch` takes `{batch: [message…], sentAt, writeKey}`; `/v1/{identify,track,page,
//! screen,group,alias}` take one message whose type is the route. The write key comes as Basic
//! auth (`writeKey:`) or in the body.
//!
//! | message | commands |
//! |---|---|
//! | `identify` (userId, anonymousId?, traits) | `Identify` (anonymousId → userId) + person `set` of traits |
//! | `track` (event, properties, groupId? / context.groupId?) | `Track`; the group id is explicit attribution |
//! | `page` / `screen` (name, category, properties) | `Track` of `$pageview` / `$screen` |
//! | `group` (groupId, traits) | the user joins the group (`set_group` or `add_group`, per project: [`SegmentOptions::join`]) + group `set` of traits |
//! | `alias` (previousId, userId) | `Alias` |
//!
//! Segment has one kind of group; its type is configurable (default `company`).
//!
//! The `context` of `track`, `page` and `screen` becomes event properties under the names
//! PostHog's and troupe's own SDKs use (`$current_url`, `$pathname`, `$referrer`, `$browser`…;
//! table in docs/api.md), so the events filter and break down by page, screen, locale, library
//! or campaign whichever client sent them. A property the message itself sets wins.

use serde_json::Value;
use troupe_core::{Command, CoreError, JoinRule, Limits, ProfileOp, TrackEvent};

use crate::wire::{self, Body};
use crate::{ItemResult, Translated};

/// How a project maps Segment's one kind of group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentOptions {
    /// The group type of `group` calls and `groupId`s (default `company`).
    pub group_type: String,
    /// What `group(userId, groupId)` does to the user's groups of that type.
    pub join: JoinRule,
}

impl Default for SegmentOptions {
    fn default() -> Self {
        SegmentOptions { group_type: "company".into(), join: JoinRule::default() }
    }
}

/// The write key a request's body names (`writeKey`), if any.
pub fn body_write_key(body: &Value) -> Option<String> {
    body.get("writeKey").and_then(Value::as_str).filter(|k| !k.is_empty()).map(str::to_string)
}

/// Translate `/v1/batch` (`route_type = None`) or a single-message route (`Some("track")`, …).
pub fn translate(
    body: &Value,
    route_type: Option<&str>,
    options: &SegmentOptions,
    limits: &Limits,
) -> Result<Translated, CoreError> {
    let b = wire::object(body, "body")?;
    let write_key = body_write_key(body);
    let sent_at = wire::timestamp(b, "sentAt")?;
    let messages: Vec<&Value> = match route_type {
        Some(_) => vec![body],
        None => match b.get("batch") {
            Some(Value::Array(messages)) => messages.iter().collect(),
            None | Some(Value::Null) => return Err(CoreError::missing("batch")),
            Some(_) => return Err(CoreError::invalid("batch", "must be a list of messages")),
        },
    };
    let items = messages.into_iter().map(|m| message(m, route_type, sent_at, options, limits)).collect();
    Ok(Translated { key: write_key, items })
}

/// One Segment message (also one line of a Segment export); `route_type` names the type when the
/// route does.
pub fn message(
    value: &Value,
    route_type: Option<&str>,
    sent_at: Option<chrono::DateTime<chrono::Utc>>,
    options: &SegmentOptions,
    limits: &Limits,
) -> ItemResult {
    let group_type = options.group_type.as_str();
    let m = wire::object(value, "message")?;
    let kind = match route_type {
        Some(kind) => kind.to_string(),
        None => wire::text(m, "type")?,
    };
    let user_id = wire::opt_id(m, "userId")?;
    let anonymous_id = wire::opt_id(m, "anonymousId")?;
    for (field, id) in [("userId", &user_id), ("anonymousId", &anonymous_id)] {
        if let Some(id) = id {
            limits.check_id(field, id)?;
        }
    }
    let who = user_id.clone().or(anonymous_id.clone());
    match kind.as_str() {
        "identify" => {
            let who = who.ok_or_else(|| CoreError::missing("userId"))?;
            let traits = wire::properties(m, "traits", limits)?;
            let mut commands = Vec::new();
            if let (Some(user), Some(anon)) = (&user_id, &anonymous_id) {
                if user != anon {
                    commands.push(Command::Identify { anon_distinct_id: anon.clone(), distinct_id: user.clone() });
                }
            }
            commands.push(Command::PersonProfile { distinct_id: who, op: ProfileOp::Set(traits) });
            Ok(commands)
        }
        "track" | "page" | "screen" => {
            let who = who.ok_or_else(|| CoreError::missing("userId"))?;
            Ok(vec![Command::Track(track(m, &kind, who, sent_at, group_type, limits)?)])
        }
        "group" => {
            let group_key = wire::id(m, "groupId", limits)?;
            let traits = wire::properties(m, "traits", limits)?;
            let mut commands = Vec::new();
            if let Some(who) = who {
                let op = options.join.op(group_key.clone());
                commands.push(Command::Membership { distinct_id: who, group_type: group_type.to_string(), op });
            }
            let op = ProfileOp::Set(traits);
            commands.push(Command::GroupProfile { group_type: group_type.to_string(), group_key, name: None, op });
            Ok(commands)
        }
        "alias" => {
            let user = user_id.ok_or_else(|| CoreError::missing("userId"))?;
            let previous = wire::id(m, "previousId", limits)?;
            Ok(vec![Command::Alias { distinct_id: user, alias: previous }])
        }
        other => Err(CoreError::invalid("type", format!("unknown message type '{other}'"))),
    }
}

fn track(
    m: &Body,
    kind: &str,
    distinct_id: String,
    sent_at: Option<chrono::DateTime<chrono::Utc>>,
    group_type: &str,
    limits: &Limits,
) -> Result<TrackEvent, CoreError> {
    let mut properties = wire::properties(m, "properties", limits)?;
    let event = match kind {
        "track" => {
            let name = wire::text(m, "event")?;
            limits.check_event_name("event", &name)?;
            name
        }
        page_or_screen => {
            for field in ["name", "category"] {
                if let Some(v @ Value::String(_)) = m.get(field) {
                    properties.insert(field.to_string(), v.clone());
                }
            }
            if page_or_screen == "page" { "$pageview" } else { "$screen" }.to_string()
        }
    };
    let mut groups = Vec::new();
    let context = m.get("context").and_then(Value::as_object);
    // A top-level `groupId` (Segment's spec allows it on any message) or the context's.
    let group_key = match wire::opt_id(m, "groupId")? {
        Some(key) => Some(("groupId", key)),
        None => context.map(|c| wire::opt_id(c, "groupId")).transpose()?.flatten().map(|k| ("context.groupId", k)),
    };
    if let Some((field, group_key)) = group_key {
        limits.check_id(field, &group_key)?;
        groups.push((group_type.to_string(), vec![group_key]));
    }
    if let Some(context) = context {
        context_properties(context, &mut properties);
        limits.check_properties("context", &properties)?;
    }
    let id = wire::checked_opt_id(m, "messageId", limits)?;
    Ok(TrackEvent {
        event,
        distinct_id,
        id,
        timestamp: wire::timestamp(m, "timestamp")?,
        sent_at: wire::timestamp(m, "sentAt")?.or(sent_at),
        properties,
        groups,
        untyped_groups: Vec::new(),
    })
}

/// Where each `context` field goes among the event's properties: (path in the context, name).
const CONTEXT_PROPERTIES: &[(&[&str], &str)] = &[
    (&["page", "url"], "$current_url"),
    (&["page", "path"], "$pathname"),
    (&["page", "referrer"], "$referrer"),
    (&["page", "title"], "$title"),
    (&["page", "search"], "$search"),
    (&["screen", "width"], "$screen_width"),
    (&["screen", "height"], "$screen_height"),
    (&["screen", "density"], "$screen_density"),
    (&["locale"], "$locale"),
    (&["timezone"], "$timezone"),
    (&["userAgent"], "$user_agent"),
    (&["ip"], "$ip"),
    (&["library", "name"], "$lib"),
    (&["library", "version"], "$lib_version"),
    (&["os", "name"], "$os"),
    (&["os", "version"], "$os_version"),
    (&["device", "type"], "$device_type"),
    (&["device", "model"], "$device_model"),
    (&["device", "manufacturer"], "$device_manufacturer"),
    (&["app", "name"], "$app_name"),
    (&["app", "version"], "$app_version"),
    (&["campaign", "name"], "utm_campaign"),
    (&["campaign", "source"], "utm_source"),
    (&["campaign", "medium"], "utm_medium"),
    (&["campaign", "term"], "utm_term"),
    (&["campaign", "content"], "utm_content"),
];

/// The context's fields onto `properties` under their names (those the message set stay), each
/// a scalar: an object or list where a scalar belongs is left out.
fn context_properties(context: &Body, properties: &mut troupe_core::Properties) {
    for (path, name) in CONTEXT_PROPERTIES {
        if properties.contains_key(*name) {
            continue;
        }
        let mut at = context.get(path[0]);
        for key in &path[1..] {
            at = at.and_then(|v| v.get(key));
        }
        if let Some(v @ (Value::String(_) | Value::Number(_) | Value::Bool(_))) = at {
            properties.insert((*name).to_string(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests;
