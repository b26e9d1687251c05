//! A project's settings: documents of kind [`SETTINGS_KIND`], one per area (privacy, ingestion),
//! each read whole with its defaults for fields never saved.

use chrono::Utc;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use troupe_core::{JoinRule, ProjectId};

use crate::{Document, Store, StoreError};

/// The document kind of every settings area; the document id names the area.
pub const SETTINGS_KIND: &str = "settings";
pub const INGESTION_SETTINGS_ID: &str = "ingestion";

/// The settings of area `id`, or the defaults when none were saved.
pub async fn load<T: DeserializeOwned + Default>(
    store: &dyn Store,
    project: ProjectId,
    id: &str,
) -> Result<T, StoreError> {
    let saved = store.documents(project, SETTINGS_KIND).await?.into_iter().find(|d| d.id == id);
    match saved {
        None => Ok(T::default()),
        Some(d) => serde_json::from_value(d.body)
            .map_err(|e| StoreError::Internal(format!("the saved {id} settings are unreadable: {e}"))),
    }
}

pub async fn save<T: Serialize>(
    store: &dyn Store,
    project: ProjectId,
    id: &str,
    settings: &T,
) -> Result<(), StoreError> {
    let body = serde_json::to_value(settings).map_err(|e| StoreError::Internal(e.to_string()))?;
    let document = Document { kind: SETTINGS_KIND.into(), id: id.into(), body, updated_at: Utc::now() };
    store.put_document(project, document).await
}

/// How a project's wire protocols map onto memberships where a client's call leaves a choice
/// (`GET`/`PUT /api/projects/{p}/settings/ingestion`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestionSettings {
    /// What Segment's `group(userId, groupId)` does to the user's groups of the Segment group
    /// type: `replace` (default: the Segment and Datafly documents call `group()` each time a
    /// user switches workspace, and events after a switch belong to the new one) or `add` (a
    /// user stays in every group they were put in).
    pub segment_group: JoinRule,
}

impl IngestionSettings {
    pub async fn load(store: &dyn Store, project: ProjectId) -> Result<Self, StoreError> {
        load(store, project, INGESTION_SETTINGS_ID).await
    }

    pub async fn save(&self, store: &dyn Store, project: ProjectId) -> Result<(), StoreError> {
        save(store, project, INGESTION_SETTINGS_ID, self).await
    }
}

pub const GENERAL_SETTINGS_ID: &str = "general";

/// What a project shows its numbers in (`GET`/`PUT /api/projects/{p}/settings/general`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeneralSettings {
    /// IANA name (`Europe/Paris`): an insight without a `timezone` of its own is cut into this
    /// zone's days, and the dashboard shows event times in it. `UTC` by default.
    pub timezone: String,
}

impl Default for GeneralSettings {
    fn default() -> Self {
        GeneralSettings { timezone: "UTC".into() }
    }
}

impl GeneralSettings {
    /// The settings as saved, or a message naming what is wrong.
    pub fn check(&self) -> Result<(), troupe_core::CoreError> {
        self.timezone.parse::<chrono_tz::Tz>().map(|_| ()).map_err(|_| {
            troupe_core::CoreError::invalid(
                "timezone",
                format!("unknown timezone {:?} (use an IANA name like Europe/Paris)", self.timezone),
            )
        })
    }
}

/// A settings area: its document id.
pub trait SettingsArea: Clone + Default + Serialize + DeserializeOwned + Send + Sync + 'static {
    const ID: &'static str;
}

impl SettingsArea for IngestionSettings {
    const ID: &'static str = INGESTION_SETTINGS_ID;
}

impl SettingsArea for GeneralSettings {
    const ID: &'static str = GENERAL_SETTINGS_ID;
}
