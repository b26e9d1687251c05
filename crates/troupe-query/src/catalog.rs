//! What a project's data holds, for pickers: its event names, the property keys of events,
//! persons and each group type (with the kind of value they hold), and a property's top values.
//!
//! Read from the data, bounded: event names from a scan of the last [`EVENT_NAME_DAYS`] days
//! (names and times only; counts exact), properties and values from the most recent
//! [`EVENT_SAMPLE`] events (of one event when asked) or the [`PROFILE_SAMPLE`] most recently
//! updated persons or groups of a type. A key seen only in older data is not offered (it can
//! still be typed). Callers cache the answers: they change slowly and a picker asks often.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;
use troupe_core::{ProjectId, Properties};
use troupe_store::{EventQuery, GroupQuery, GroupSort, PersonQuery, ScanRequest, Store};

use crate::QueryError;

pub const EVENT_NAME_DAYS: i64 = 90;
pub const EVENT_SAMPLE: usize = 2_000;
pub const PROFILE_SAMPLE: usize = 5_000;
/// Values listed per property at most.
pub const MAX_VALUES: usize = 200;

/// Whose properties.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PropertySource {
    Event,
    Person,
    Group(String),
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventName {
    pub name: String,
    /// Events of the name in the window.
    pub count: u64,
    pub last_seen: DateTime<Utc>,
}

/// The kind of value a property holds in the sample; `mixed` when it differs between rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValueKind {
    String,
    Number,
    Boolean,
    Datetime,
    List,
    Object,
    Mixed,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PropertyKey {
    pub key: String,
    #[serde(rename = "type")]
    pub kind: ValueKind,
    /// Rows of the sample that have it.
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValueCount {
    pub value: Value,
    pub count: u64,
}

/// Event names of the window, most frequent first.
pub async fn event_names(
    store: &dyn Store,
    project: ProjectId,
    now: DateTime<Utc>,
) -> Result<Vec<EventName>, QueryError> {
    let request = ScanRequest { from: Some(now - Duration::days(EVENT_NAME_DAYS)), ..ScanRequest::default() };
    let scan = store.scan(project, request).await?;
    let mut seen: Vec<(u64, i64)> = vec![(0, i64::MIN); scan.names.len()];
    for (name, ts) in scan.name.iter().zip(&scan.ts) {
        if let Some(slot) = seen.get_mut(*name as usize) {
            slot.0 += 1;
            slot.1 = slot.1.max(*ts);
        }
    }
    let mut names: Vec<EventName> = scan
        .names
        .iter()
        .zip(seen)
        .filter(|(_, (count, _))| *count > 0)
        .map(|(name, (count, last))| EventName {
            name: name.clone(),
            count,
            last_seen: DateTime::from_timestamp_micros(last).unwrap_or(now),
        })
        .collect();
    names.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.name.cmp(&b.name)));
    Ok(names)
}

/// The property maps a source's keys and values are read from.
pub async fn sample(
    store: &dyn Store,
    project: ProjectId,
    source: &PropertySource,
    event: Option<&str>,
) -> Result<Vec<Properties>, QueryError> {
    Ok(match source {
        PropertySource::Event => {
            let query = EventQuery { limit: EVENT_SAMPLE, event: event.map(str::to_string), ..EventQuery::default() };
            store.events(project, query).await?.into_iter().map(|e| e.properties).collect()
        }
        PropertySource::Person => {
            let query = PersonQuery { search: None, limit: PROFILE_SAMPLE, offset: 0 };
            store.persons(project, query).await?.results.into_iter().map(|p| p.properties).collect()
        }
        PropertySource::Group(group_type) => {
            let query = GroupQuery {
                group_type: group_type.clone(),
                sort: GroupSort::UpdatedAt,
                descending: true,
                limit: PROFILE_SAMPLE,
                ..GroupQuery::default()
            };
            store.groups(project, query).await?.results.into_iter().map(|g| g.properties).collect()
        }
    })
}

/// The keys of a sample, most common first, each with the kind of its values.
pub fn property_keys(sample: &[Properties]) -> Vec<PropertyKey> {
    let mut keys: HashMap<&str, (u64, Option<ValueKind>)> = HashMap::new();
    for properties in sample {
        for (key, value) in properties {
            let Some(kind) = kind_of(value) else { continue };
            let entry = keys.entry(key.as_str()).or_insert((0, None));
            entry.0 += 1;
            entry.1 = Some(match entry.1 {
                None => kind,
                Some(k) if k == kind => k,
                // A number sent sometimes as text is still text to filter on.
                Some(_) => ValueKind::Mixed,
            });
        }
    }
    let mut out: Vec<PropertyKey> = keys
        .into_iter()
        .map(|(key, (count, kind))| PropertyKey { key: key.to_string(), kind: kind.unwrap_or(ValueKind::Mixed), count })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
    out
}

/// A key's values in a sample, most common first (lists count each of their items), at most
/// [`MAX_VALUES`].
pub fn top_values(sample: &[Properties], key: &str) -> Vec<ValueCount> {
    let mut counts: HashMap<String, (Value, u64)> = HashMap::new();
    let mut count = |value: &Value| {
        if value.is_null() {
            return;
        }
        let entry = counts.entry(value.to_string()).or_insert_with(|| (value.clone(), 0));
        entry.1 += 1;
    };
    for value in sample.iter().filter_map(|p| p.get(key)) {
        match value {
            Value::Array(items) => items.iter().for_each(&mut count),
            other => count(other),
        }
    }
    let mut out: Vec<ValueCount> = counts.into_values().map(|(value, count)| ValueCount { value, count }).collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.to_string().cmp(&b.value.to_string())));
    out.truncate(MAX_VALUES);
    out
}

fn kind_of(value: &Value) -> Option<ValueKind> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(_) => ValueKind::Boolean,
        Value::Number(_) => ValueKind::Number,
        Value::String(s) if DateTime::parse_from_rfc3339(s).is_ok() => ValueKind::Datetime,
        Value::String(_) => ValueKind::String,
        Value::Array(_) => ValueKind::List,
        Value::Object(_) => ValueKind::Object,
    })
}

/// How well `text` matches a typed `search`, case-insensitively: `None` when it does not
/// (the search's characters must appear in order); lower is better — an exact match, then a
/// prefix, a word start, a substring, and last the characters spread out (fewer gaps first).
pub fn fuzzy_rank(search: &str, text: &str) -> Option<u32> {
    let search = search.trim().to_lowercase();
    if search.is_empty() {
        return Some(0);
    }
    let text = text.to_lowercase();
    if text == search {
        return Some(0);
    }
    if text.starts_with(&search) {
        return Some(1);
    }
    if let Some(at) = text.find(&search) {
        let word_start = text[..at].ends_with(|c: char| !c.is_alphanumeric());
        return Some(if word_start { 2 } else { 3 });
    }
    let mut gaps = 0u32;
    let mut wanted = search.chars().peekable();
    let mut previous_matched = true;
    for c in text.chars() {
        match wanted.peek() {
            Some(w) if *w == c => {
                wanted.next();
                previous_matched = true;
            }
            Some(_) => {
                if previous_matched {
                    gaps += 1;
                }
                previous_matched = false;
            }
            None => break,
        }
    }
    wanted.peek().is_none().then_some(10 + gaps)
}

/// The items matching `search`, best first (stable for equal ranks: the callers' order, by
/// count, breaks ties).
pub fn search<T>(items: Vec<T>, search: Option<&str>, text: impl Fn(&T) -> String) -> Vec<T> {
    let Some(search) = search.filter(|s| !s.trim().is_empty()) else { return items };
    let mut ranked: Vec<(u32, T)> =
        items.into_iter().filter_map(|i| fuzzy_rank(search, &text(&i)).map(|r| (r, i))).collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, i)| i).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(v: Value) -> Properties {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn keys_carry_their_kind_and_how_often_they_are_set() {
        let sample = vec![
            props(json!({"plan": "pro", "seats": 5, "trial": true, "at": "2026-11-01T10:00:00Z"})),
            props(json!({"plan": "free", "seats": "many", "tags": ["a"]})),
            props(json!({"plan": null})),
        ];
        let keys = property_keys(&sample);
        let find = |k: &str| keys.iter().find(|p| p.key == k).cloned();
        assert_eq!(find("plan").map(|p| (p.kind, p.count)), Some((ValueKind::String, 2)));
        assert_eq!(find("seats").map(|p| p.kind), Some(ValueKind::Mixed));
        assert_eq!(find("trial").map(|p| p.kind), Some(ValueKind::Boolean));
        assert_eq!(find("at").map(|p| p.kind), Some(ValueKind::Datetime));
        assert_eq!(find("tags").map(|p| p.kind), Some(ValueKind::List));
        assert_eq!(keys[0].key, "plan", "most common first");
    }

    #[test]
    fn top_values_count_list_items_and_skip_nulls() {
        let sample = vec![
            props(json!({"plan": "pro", "tags": ["a", "b"]})),
            props(json!({"plan": "pro", "tags": ["a"]})),
            props(json!({"plan": "free"})),
            props(json!({"plan": null})),
        ];
        let plans = top_values(&sample, "plan");
        assert_eq!(
            plans,
            vec![ValueCount { value: json!("pro"), count: 2 }, ValueCount { value: json!("free"), count: 1 }]
        );
        assert_eq!(top_values(&sample, "tags")[0], ValueCount { value: json!("a"), count: 2 });
        assert!(top_values(&sample, "absent").is_empty());
    }

    #[test]
    fn fuzzy_search_ranks_exact_prefix_word_substring_then_spread() {
        let names = vec!["Project Created", "Signed In", "Invited Teammate", "signed", "Page Viewed"];
        let found = search(names.clone(), Some("signed"), |s| s.to_string());
        assert_eq!(found, vec!["signed", "Signed In"]);
        assert_eq!(search(names.clone(), Some("created"), |s| s.to_string()), vec!["Project Created"]);
        // Characters in order, spread out: "prjc" finds "Project Created".
        assert_eq!(search(names.clone(), Some("prjc"), |s| s.to_string()), vec!["Project Created"]);
        assert_eq!(search(names.clone(), Some("zz"), |s| s.to_string()), Vec::<&str>::new());
        assert_eq!(search(names.clone(), None, |s| s.to_string()).len(), 5);
        assert_eq!(fuzzy_rank("in", "Invited Teammate"), Some(1), "a prefix");
        assert_eq!(fuzzy_rank("ted", "Invited Teammate"), Some(3), "a substring inside a word");
        assert_eq!(fuzzy_rank("tea", "Invited Teammate"), Some(2), "a word start");
    }
}
