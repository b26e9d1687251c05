//! Privacy operations on any store, built on its commands and reads: erase a person, and read
//! all of a person's data for an export (docs/semantics.md, "Privacy").

use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use troupe_core::{Command, ProjectId};

use crate::{settings, EventQuery, EventRow, Store, StoreError};

/// A project's privacy settings are the settings document with this id.
pub const PRIVACY_SETTINGS_ID: &str = "privacy";

/// A privacy operation a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivacyOperation {
    Delete,
    Export,
    Anonymize,
}

/// A project's privacy settings (`GET`/`PUT /api/projects/{p}/settings/privacy`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrivacySettings {
    /// What the ingestion key (Trodo's site id, which SDKs hold) may ask for on
    /// `/api/sdk/gdpr/*`. Default: delete and anonymize, as the Trodo server SDK offers them
    /// with the site id (its SDKs can already delete a person). Not export: the ingestion key is
    /// public in browser apps and must not read anyone's data; a project whose site id stays on
    /// its servers may add it.
    pub ingestion_key_may: Vec<PrivacyOperation>,
    /// The privacy policy `GET /api/sdk/privacy/policy` answers: a text, a link, or both.
    pub policy_text: Option<String>,
    pub policy_url: Option<String>,
    /// Top-level event property names an anonymization removes from the person's events.
    pub personal_fields: Vec<String>,
    /// Events older than this many days are dropped by the server's hourly sweep; `None` keeps
    /// them forever.
    pub event_retention_days: Option<u32>,
    /// Whether a write naming an erased person's id starts a new person (default), or is
    /// dropped for good ("delete and don't recreate").
    pub recreate_erased: bool,
}

/// The default personal fields: the common names, and the `$`-prefixed ones PostHog and
/// Mixpanel clients send (their `$ip`, `$email`, …).
pub const DEFAULT_PERSONAL_FIELDS: &[&str] = &[
    "email",
    "name",
    "first_name",
    "last_name",
    "username",
    "phone",
    "ip",
    "address",
    "$email",
    "$name",
    "$first_name",
    "$last_name",
    "$username",
    "$phone",
    "$ip",
];

/// At most this many personal fields, each a name of at most [`MAX_FIELD_NAME`] bytes.
const MAX_PERSONAL_FIELDS: usize = 200;
const MAX_FIELD_NAME: usize = 200;

impl Default for PrivacySettings {
    fn default() -> Self {
        PrivacySettings {
            ingestion_key_may: vec![PrivacyOperation::Delete, PrivacyOperation::Anonymize],
            policy_text: None,
            policy_url: None,
            personal_fields: DEFAULT_PERSONAL_FIELDS.iter().map(|f| f.to_string()).collect(),
            event_retention_days: None,
            recreate_erased: true,
        }
    }
}

/// A policy text's limit: a policy is a page, not a book.
const MAX_POLICY_TEXT: usize = 100_000;

impl PrivacySettings {
    /// The settings' problem, naming the field, if any.
    pub fn check(&self) -> Result<(), troupe_core::CoreError> {
        if self.policy_text.as_ref().is_some_and(|t| t.len() > MAX_POLICY_TEXT) {
            return Err(troupe_core::CoreError::invalid("policy_text", format!("is over {MAX_POLICY_TEXT} bytes")));
        }
        if self.personal_fields.len() > MAX_PERSONAL_FIELDS {
            return Err(troupe_core::CoreError::invalid(
                "personal_fields",
                format!("holds over {MAX_PERSONAL_FIELDS} names"),
            ));
        }
        if self.personal_fields.iter().any(|f| f.is_empty() || f.len() > MAX_FIELD_NAME) {
            let why = format!("names must be 1 to {MAX_FIELD_NAME} bytes");
            return Err(troupe_core::CoreError::invalid("personal_fields", why));
        }
        if self.event_retention_days.is_some_and(|d| !(1..=36_500).contains(&d)) {
            return Err(troupe_core::CoreError::invalid("event_retention_days", "must be 1 to 36500 days, or null"));
        }
        if let Some(url) = &self.policy_url {
            let web = url.starts_with("https://") || url.starts_with("http://");
            if !web || url.len() > 2048 || url.chars().any(char::is_whitespace) {
                return Err(troupe_core::CoreError::invalid("policy_url", "must be an http(s) URL"));
            }
        }
        Ok(())
    }

    /// The project's settings, or the defaults when none were saved.
    pub async fn load(store: &dyn Store, project: ProjectId) -> Result<Self, StoreError> {
        settings::load(store, project, PRIVACY_SETTINGS_ID).await
    }

    pub async fn save(&self, store: &dyn Store, project: ProjectId) -> Result<(), StoreError> {
        settings::save(store, project, PRIVACY_SETTINGS_ID, self).await
    }
}

/// Saved documents that may name persons (static cohorts list ids; saved insights and
/// dashboards may hold inline cohorts or filters on an id).
pub const DOCUMENT_KINDS_NAMING_PERSONS: &[&str] = &["cohort", "insight", "dashboard"];

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Erasure {
    /// Whether a person was found by the id (when not, the events of that distinct id, if any
    /// are left, are erased all the same).
    pub found: bool,
    pub person_id: Option<String>,
    pub distinct_ids: Vec<String>,
    /// Saved documents that named the person and were rewritten without it.
    pub documents_changed: usize,
}

/// Erase a person found by any of its distinct ids or its person id: the store removes its
/// profile, ids, memberships, charges and every event of its ids ([`Command::ErasePerson`]);
/// then saved documents are rewritten without its ids. Repeating it is harmless.
pub async fn erase_person(store: &dyn Store, project: ProjectId, id: &str) -> Result<Erasure, StoreError> {
    let profile = store.person(project, id, 0).await?;
    let (person_id, distinct_ids) = match profile {
        Some(p) => (Some(p.person.id), p.person.distinct_ids),
        None => (None, vec![id.to_string()]),
    };
    let distinct_id = distinct_ids.first().cloned().unwrap_or_else(|| id.to_string());
    let keep_out = !PrivacySettings::load(store, project).await?.recreate_erased;
    for result in store.apply(project, vec![Command::ErasePerson { distinct_id, keep_out }]).await? {
        result.map_err(|e| StoreError::Conflict(e.to_string()))?;
    }
    let mut named: Vec<String> = distinct_ids.clone();
    named.extend(person_id.clone());
    let documents_changed = scrub_documents(store, project, &named).await?;
    Ok(Erasure { found: person_id.is_some(), person_id, distinct_ids, documents_changed })
}

/// What an anonymization did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Anonymization {
    pub found: bool,
    pub person_id: Option<String>,
    /// The one distinct id the person has now.
    pub pseudonym: Option<String>,
    pub documents_changed: usize,
}

/// Anonymize the person found by any of its distinct ids or its person id
/// ([`Command::AnonymizePerson`] with the project's personal fields); saved documents are
/// rewritten without its former ids. Repeating it is harmless; an unknown id changes nothing.
pub async fn anonymize_person(store: &dyn Store, project: ProjectId, id: &str) -> Result<Anonymization, StoreError> {
    let Some(profile) = store.person(project, id, 0).await? else {
        return Ok(Anonymization { found: false, person_id: None, pseudonym: None, documents_changed: 0 });
    };
    let settings = PrivacySettings::load(store, project).await?;
    let former = profile.person.distinct_ids;
    let distinct_id = former.first().cloned().unwrap_or_else(|| id.to_string());
    let command = Command::AnonymizePerson { distinct_id, personal_fields: settings.personal_fields };
    for result in store.apply(project, vec![command]).await? {
        result.map_err(|e| StoreError::Conflict(e.to_string()))?;
    }
    let now = store.person(project, &profile.person.id, 0).await?;
    let pseudonym = now.and_then(|p| p.person.distinct_ids.into_iter().next());
    let former: Vec<String> = former.into_iter().filter(|f| Some(f) != pseudonym.as_ref()).collect();
    let documents_changed = scrub_documents(store, project, &former).await?;
    Ok(Anonymization { found: true, person_id: Some(profile.person.id), pseudonym, documents_changed })
}

/// Rewrite saved documents that name any of `names`: list elements equal to one are dropped,
/// other string values equal to one become empty. Returns how many documents changed.
pub async fn scrub_documents(store: &dyn Store, project: ProjectId, names: &[String]) -> Result<usize, StoreError> {
    let mut changed = 0;
    for kind in DOCUMENT_KINDS_NAMING_PERSONS {
        for mut document in store.documents(project, kind).await? {
            if scrub(&mut document.body, names) {
                document.updated_at = Utc::now();
                store.put_document(project, document).await?;
                changed += 1;
            }
        }
    }
    Ok(changed)
}

/// Remove `names` from a JSON value; whether anything changed.
fn scrub(value: &mut Value, names: &[String]) -> bool {
    let named = |v: &Value| v.as_str().is_some_and(|s| names.iter().any(|n| n == s));
    match value {
        Value::Array(items) => {
            let before = items.len();
            items.retain(|item| !named(item));
            let mut changed = items.len() != before;
            for item in items.iter_mut() {
                changed |= scrub(item, names);
            }
            changed
        }
        Value::Object(fields) => {
            let mut changed = false;
            for field in fields.values_mut() {
                if named(field) {
                    *field = Value::String(String::new());
                    changed = true;
                } else {
                    changed |= scrub(field, names);
                }
            }
            changed
        }
        _ => false,
    }
}

/// Events matching a query, newest first, a page at a time: every event exactly once, also
/// when many share a timestamp (a page never ends inside a run of equal timestamps).
pub struct EventPages<'a> {
    store: &'a dyn Store,
    project: ProjectId,
    /// The events asked for (`limit` and `before` are the pages').
    query: EventQuery,
    done: bool,
}

/// Events read per page of an export.
pub const EXPORT_PAGE: usize = 1000;

impl<'a> EventPages<'a> {
    pub fn new(store: &'a dyn Store, project: ProjectId, query: EventQuery) -> Self {
        Self::with_page(store, project, query, EXPORT_PAGE)
    }

    /// Pages of `page` events (at least one).
    pub fn with_page(store: &'a dyn Store, project: ProjectId, query: EventQuery, page: usize) -> Self {
        EventPages { store, project, query: EventQuery { limit: page.max(1), before: None, ..query }, done: false }
    }

    /// The next page; `None` when every event was returned.
    pub async fn next_page(&mut self) -> Result<Option<Vec<EventRow>>, StoreError> {
        loop {
            if self.done {
                return Ok(None);
            }
            let mut events = self.store.events(self.project, self.query.clone()).await?;
            if events.len() < self.query.limit {
                self.done = true;
                return Ok(Some(events));
            }
            let Some(last) = events.last().map(|e| e.timestamp) else {
                self.done = true;
                return Ok(Some(events));
            };
            // The page may end inside a run of events at `last`: they all come next time.
            events.retain(|e| e.timestamp > last);
            if events.is_empty() {
                // A whole page at one instant: ask for more at once.
                self.query.limit = self.query.limit.saturating_mul(2);
                continue;
            }
            self.query.before = Some(last + Duration::microseconds(1));
            return Ok(Some(events));
        }
    }
}

/// An export as one JSON document, produced a chunk at a time: a head (the project's name, the
/// time, the person or group with what belongs to it), then `events`, newest first. Only one
/// page of events is held at once.
pub struct Export<'a> {
    head: Option<String>,
    events: EventPages<'a>,
    first_event: bool,
    finished: bool,
}

impl<'a> Export<'a> {
    /// A person's: the person (profile, distinct ids, memberships), its charges, every event of
    /// its ids. `None` when no person has this id.
    pub async fn person(
        store: &'a dyn Store,
        project: &crate::Project,
        id: &str,
    ) -> Result<Option<Export<'a>>, StoreError> {
        let Some(profile) = store.person(project.id, id, 0).await? else {
            return Ok(None);
        };
        let head = serde_json::json!({
            "project": project.name,
            "exported_at": Utc::now(),
            "person": profile.person,
            "charges": profile.charges,
        });
        let query = EventQuery { person: Some(profile.person.id), ..EventQuery::default() };
        Ok(Some(Export::new(head, EventPages::new(store, project.id, query))))
    }

    /// A group's: its profile, its current members, every event attributed to it. `None` when
    /// there is no such group.
    pub async fn group(
        store: &'a dyn Store,
        project: &crate::Project,
        group_type: &str,
        key: &str,
    ) -> Result<Option<Export<'a>>, StoreError> {
        let Some(profile) = store.group(project.id, group_type, key, 0).await? else {
            return Ok(None);
        };
        let head = serde_json::json!({
            "project": project.name,
            "exported_at": Utc::now(),
            "group": profile.group,
            "members": profile.members,
        });
        let query = EventQuery { group: Some((group_type.to_string(), key.to_string())), ..EventQuery::default() };
        Ok(Some(Export::new(head, EventPages::new(store, project.id, query))))
    }

    fn new(head: Value, events: EventPages<'a>) -> Self {
        let mut head = head.to_string();
        head.pop(); // the closing brace: the events follow
        head.push_str(",\"events\":[");
        Export { head: Some(head), events, first_event: true, finished: false }
    }

    /// The next piece of the document's text; `None` once it is complete.
    pub async fn next_chunk(&mut self) -> Result<Option<String>, StoreError> {
        if let Some(head) = self.head.take() {
            return Ok(Some(head));
        }
        if self.finished {
            return Ok(None);
        }
        match self.events.next_page().await? {
            Some(events) => {
                let mut chunk = String::new();
                for event in events {
                    if !std::mem::take(&mut self.first_event) {
                        chunk.push(',');
                    }
                    chunk.push_str(&serde_json::json!(event).to_string());
                }
                Ok(Some(chunk))
            }
            None => {
                self.finished = true;
                Ok(Some("]}".to_string()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::scrub;

    #[test]
    fn scrubbing_drops_listed_ids_and_empties_named_values() {
        let names = vec!["ann".to_string(), "p-1".to_string()];
        let mut cohort = json!({"rule": {"type": "static", "ids": ["bob", "ann", "p-1"]}, "name": "ann"});
        assert!(scrub(&mut cohort, &names));
        assert_eq!(cohort, json!({"rule": {"type": "static", "ids": ["bob"]}, "name": ""}));
        let mut other = json!({"ids": ["bob"], "n": 3});
        assert!(!scrub(&mut other, &names), "nothing named: unchanged");
    }
}
