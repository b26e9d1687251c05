//! Exactly-once ingestion (DESIGN.md §10).
//!
//! An event with a client id (`uuid`, `messageId`, `$insert_id`) is a duplicate when that id was
//! stored before, forever. An event without one (Trodo's `/api/events`, OpenPanel's `track`) is a
//! duplicate when an identical event (same distinct id, name, properties and client timestamp)
//! was stored within the retry window: those clients retry within seconds, and two genuinely
//! separate identical events inside the window are indistinguishable from a retry anyway.

use std::collections::VecDeque;

// Seeded per process like std's, several times faster: every event is looked up here.
use foldhash::HashMap;

use chrono::{DateTime, Duration, Utc};
use xxhash_rust::xxh3::xxh3_64;

use crate::client_ids::ClientIds;
use crate::command::{Command, RetryKey};
use crate::event::TrackEvent;

/// How an event is recognised again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventIdentity {
    /// Hash of the client's id; persisted with the event.
    Client(u64),
    /// Hash of the event's content; remembered for the retry window only.
    Content(u64),
}

impl EventIdentity {
    /// `properties_json`: the event's properties as stored (the map of `event` is not read).
    pub fn of(event: &TrackEvent, properties_json: &str) -> Self {
        match &event.id {
            Some(id) => EventIdentity::Client(xxh3_64(id.as_bytes())),
            None => {
                let mut buf = Vec::with_capacity(256);
                for part in [event.distinct_id.as_bytes(), event.event.as_bytes()] {
                    buf.extend_from_slice(part);
                    buf.push(0);
                }
                buf.extend_from_slice(properties_json.as_bytes());
                buf.push(0);
                if let Some(ts) = event.timestamp {
                    buf.extend_from_slice(&ts.timestamp_micros().to_le_bytes());
                }
                for (group_type, ids) in &event.groups {
                    buf.extend_from_slice(group_type.as_bytes());
                    for id in ids {
                        buf.push(0);
                        buf.extend_from_slice(id.as_bytes());
                    }
                }
                for id in &event.untyped_groups {
                    buf.push(1);
                    buf.extend_from_slice(id.as_bytes());
                }
                EventIdentity::Content(xxh3_64(&buf))
            }
        }
    }

    /// The key persisted with the event, when there is one.
    pub fn persisted_key(self) -> Option<u64> {
        match self {
            EventIdentity::Client(key) => Some(key),
            EventIdentity::Content(_) => None,
        }
    }

    /// How a guarded command ([`crate::Command::Once`]) is recognised. Its keys live beside
    /// the events' in one memory: the text hashed starts with a marker no event's does.
    pub fn of_command(retry: &RetryKey, command: &Command) -> Self {
        match retry {
            RetryKey::Client(id) => EventIdentity::Client(xxh3_64(format!("\u{1}command\0{id}").as_bytes())),
            RetryKey::Content(nonce) => {
                let text = serde_json::to_string(command).unwrap_or_default();
                EventIdentity::Content(xxh3_64(format!("\u{1}command\0{text}\0{nonce}").as_bytes()))
            }
        }
    }

    /// The record that keeps this identity across a restart.
    pub fn record(self, seen_at: DateTime<Utc>) -> RetryRecord {
        match self {
            EventIdentity::Client(key) => RetryRecord { key, seen_at, forever: true },
            EventIdentity::Content(key) => RetryRecord { key, seen_at, forever: false },
        }
    }
}

/// A retry key as persisted (DESIGN.md §10, "the retry window survives a restart"): the keys of
/// guarded commands (forever when the client gave an id, for the window otherwise) and the
/// content keys of events without an id. Events' own client ids are persisted on the events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryRecord {
    pub key: u64,
    pub seen_at: DateTime<Utc>,
    pub forever: bool,
}

/// The dedupe memory of one project.
#[derive(Debug, Clone)]
pub struct Deduper {
    seen_client_ids: ClientIds,
    recent_content: HashMap<u64, DateTime<Utc>>,
    recent_order: VecDeque<(DateTime<Utc>, u64)>,
    window: Duration,
}

impl Deduper {
    pub fn new(window: Duration) -> Self {
        Deduper {
            seen_client_ids: ClientIds::default(),
            recent_content: HashMap::default(),
            recent_order: VecDeque::new(),
            window,
        }
    }

    /// Remember client ids stored before this process started.
    pub fn load(&mut self, keys: Vec<u64>) {
        self.seen_client_ids.load(keys);
    }

    /// Remember persisted retry records: ids forever, content keys still inside the window at
    /// `now` (older ones are of no use and are left out).
    pub fn load_records(&mut self, records: Vec<RetryRecord>, now: DateTime<Utc>) {
        let mut ids = Vec::new();
        let mut recent: Vec<(DateTime<Utc>, u64)> = Vec::new();
        for r in records {
            if r.forever {
                ids.push(r.key);
            } else if now - r.seen_at <= self.window {
                recent.push((r.seen_at, r.key));
            }
        }
        if !ids.is_empty() {
            self.seen_client_ids.load(ids);
        }
        recent.sort_unstable();
        for (at, key) in recent {
            self.recent_content.insert(key, at);
            self.recent_order.push_back((at, key));
        }
    }

    /// Whether this client id hash is held (a cache holds what was looked up or recorded).
    pub fn holds_client_key(&self, key: u64) -> bool {
        self.seen_client_ids.contains(key)
    }

    /// Hold client id hashes found stored before (looked up by a backend that caches).
    pub fn hold_client_keys(&mut self, keys: impl IntoIterator<Item = u64>) {
        for key in keys {
            self.seen_client_ids.insert(key);
        }
    }

    pub fn client_keys_held(&self) -> usize {
        self.seen_client_ids.len()
    }

    /// Forget every client id hash but `keep` (content keys stay: the window bounds them).
    pub fn retain_client_keys(&mut self, keep: impl IntoIterator<Item = u64>) {
        let mut kept = ClientIds::default();
        kept.load(keep.into_iter().filter(|k| self.seen_client_ids.contains(*k)).collect());
        self.seen_client_ids = kept;
    }

    pub fn is_duplicate(&self, identity: EventIdentity, now: DateTime<Utc>) -> bool {
        match identity {
            EventIdentity::Client(key) => self.seen_client_ids.contains(key),
            EventIdentity::Content(key) => self.recent_content.get(&key).is_some_and(|seen| now - *seen <= self.window),
        }
    }

    /// Record a stored event. Content hashes older than the window are forgotten.
    pub fn record(&mut self, identity: EventIdentity, now: DateTime<Utc>) {
        match identity {
            EventIdentity::Client(key) => {
                self.seen_client_ids.insert(key);
            }
            EventIdentity::Content(key) => {
                self.recent_content.insert(key, now);
                self.recent_order.push_back((now, key));
            }
        }
        while let Some((at, key)) = self.recent_order.front().copied() {
            if now - at <= self.window {
                break;
            }
            self.recent_order.pop_front();
            if self.recent_content.get(&key) == Some(&at) {
                self.recent_content.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).single().unwrap_or_default()
    }

    fn event(id: Option<&str>) -> TrackEvent {
        TrackEvent {
            event: "Signed In".into(),
            distinct_id: "u1".into(),
            id: id.map(String::from),
            ..TrackEvent::default()
        }
    }

    fn identity(event: &TrackEvent) -> EventIdentity {
        EventIdentity::of(event, &crate::properties_json(&event.properties))
    }

    #[test]
    fn a_client_id_is_a_duplicate_forever() {
        let mut d = Deduper::new(Duration::seconds(30));
        let id = identity(&event(Some("e-1")));
        assert!(!d.is_duplicate(id, now()));
        d.record(id, now());
        assert!(d.is_duplicate(id, now() + Duration::days(400)));
        assert!(!d.is_duplicate(identity(&event(Some("e-2"))), now()));
    }

    #[test]
    fn identical_id_less_events_are_duplicates_only_within_the_window() {
        let mut d = Deduper::new(Duration::seconds(30));
        let id = identity(&event(None));
        d.record(id, now());
        assert!(d.is_duplicate(id, now() + Duration::seconds(3)));
        assert!(!d.is_duplicate(id, now() + Duration::seconds(31)));
        d.record(identity(&event(Some("x"))), now() + Duration::seconds(31));
        assert!(d.recent_content.is_empty(), "old content hashes are pruned");
    }

    #[test]
    fn content_identity_depends_on_properties_and_groups() {
        let a = event(None);
        let mut b = event(None);
        b.properties.insert("k".into(), serde_json::json!(1));
        assert_ne!(identity(&a), identity(&b));
        let mut c = event(None);
        c.groups.push(("company".into(), vec!["acme".into()]));
        assert_ne!(identity(&a), identity(&c));
    }
}
