//! Who was active and when, for profile pages and lists: a group's or a person's last event, its
//! events and (for groups) active members and top events, over the last `days` days. Read from
//! one scan of that window (names, times, the persons and the group type asked about), so an
//! actor whose last event is older than the window reads "not seen".

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use troupe_core::ProjectId;
use troupe_store::{EventScan, ScanRequest, Store};

use crate::QueryError;

/// Longest window asked for.
pub const MAX_DAYS: u32 = 366;

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Activity {
    pub last_seen: Option<DateTime<Utc>>,
    /// Events in the window.
    pub events: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroupActivity {
    pub days: u32,
    pub last_seen: Option<DateTime<Utc>>,
    pub events: u64,
    /// Distinct persons behind the group's events in the window.
    pub active_members: u64,
    /// The group's most frequent events in the window, most frequent first (at most 10).
    pub top_events: Vec<EventCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventCount {
    pub event: String,
    pub count: u64,
}

async fn window(
    store: &dyn Store,
    project: ProjectId,
    now: DateTime<Utc>,
    days: u32,
    group_type: Option<&str>,
    persons: bool,
) -> Result<EventScan, QueryError> {
    let request = ScanRequest {
        from: Some(now - Duration::days(i64::from(days.clamp(1, MAX_DAYS)))),
        to: Some(now + Duration::seconds(1)),
        group_types: group_type.map(|t| vec![t.to_string()]).unwrap_or_default(),
        persons,
        ..ScanRequest::default()
    };
    Ok(store.scan(project, request).await?)
}

fn seen(activity: &mut Activity, ts: i64) {
    activity.events += 1;
    let at = DateTime::from_timestamp_micros(ts);
    if at > activity.last_seen {
        activity.last_seen = at;
    }
}

/// One group's activity.
pub async fn group_activity(
    store: &dyn Store,
    project: ProjectId,
    group_type: &str,
    key: &str,
    now: DateTime<Utc>,
    days: u32,
) -> Result<GroupActivity, QueryError> {
    let scan = window(store, project, now, days, Some(group_type), true).await?;
    let mut out = GroupActivity { days, ..GroupActivity::default() };
    let Some(column) = scan.groups.first() else { return Ok(out) };
    let Some(wanted) = column.actors.iter().position(|a| a.key == key).map(|i| i as u32) else { return Ok(out) };
    let mut total = Activity::default();
    let mut members = HashSet::new();
    let mut names: HashMap<u32, u64> = HashMap::new();
    for i in 0..scan.len() {
        if !column.of(i).contains(&wanted) {
            continue;
        }
        seen(&mut total, scan.ts[i]);
        if let Some(p) = scan.person.get(i) {
            members.insert(*p);
        }
        *names.entry(scan.name[i]).or_default() += 1;
    }
    let mut top: Vec<EventCount> = names
        .into_iter()
        .filter_map(|(n, count)| scan.names.get(n as usize).map(|event| EventCount { event: event.clone(), count }))
        .collect();
    top.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.event.cmp(&b.event)));
    top.truncate(10);
    out.last_seen = total.last_seen;
    out.events = total.events;
    out.active_members = members.len() as u64;
    out.top_events = top;
    Ok(out)
}

/// Several groups' activity, by key (keys without events in the window are absent).
pub async fn groups_activity(
    store: &dyn Store,
    project: ProjectId,
    group_type: &str,
    keys: &[String],
    now: DateTime<Utc>,
    days: u32,
) -> Result<HashMap<String, Activity>, QueryError> {
    // Counts per group only: the events' persons are not resolved.
    let scan = window(store, project, now, days, Some(group_type), false).await?;
    let mut out = HashMap::new();
    let Some(column) = scan.groups.first() else { return Ok(out) };
    let wanted: HashMap<u32, &str> = column
        .actors
        .iter()
        .enumerate()
        .filter(|(_, a)| keys.contains(&a.key))
        .map(|(i, a)| (i as u32, a.key.as_str()))
        .collect();
    for i in 0..scan.len() {
        for id in column.of(i) {
            if let Some(key) = wanted.get(id) {
                seen(out.entry(key.to_string()).or_default(), scan.ts[i]);
            }
        }
    }
    Ok(out)
}

/// Persons' activity by person id (persons without events in the window are absent).
pub async fn persons_activity(
    store: &dyn Store,
    project: ProjectId,
    person_ids: &[String],
    now: DateTime<Utc>,
    days: u32,
) -> Result<HashMap<String, Activity>, QueryError> {
    let scan = window(store, project, now, days, None, true).await?;
    let wanted: HashSet<&str> = person_ids.iter().map(String::as_str).collect();
    let mut out: HashMap<String, Activity> = HashMap::new();
    for (i, p) in scan.person.iter().enumerate() {
        let Some(person) = scan.persons.get(*p as usize) else { continue };
        if wanted.contains(person.key.as_str()) {
            seen(out.entry(person.key.clone()).or_default(), scan.ts[i]);
        }
    }
    Ok(out)
}
