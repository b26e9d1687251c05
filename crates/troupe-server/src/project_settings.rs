//! Project settings the ingestion routes read on every request, cached briefly: a Segment batch
//! should not wait on a store read for a rule that changes once in a project's life.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use troupe_core::ProjectId;
use troupe_store::settings::IngestionSettings;
use troupe_store::{Store, StoreError};

/// How long a read of the settings is used. A `PUT` on this process applies at once; another
/// process of a deployment (several servers on one ClickHouse) sees it within this time.
pub const CACHED_FOR: Duration = Duration::from_secs(5);

#[derive(Default)]
pub struct IngestionSettingsCache {
    read: Mutex<HashMap<ProjectId, (Instant, IngestionSettings)>>,
}

impl IngestionSettingsCache {
    pub async fn get(&self, store: &dyn Store, project: ProjectId) -> Result<IngestionSettings, StoreError> {
        if let Some((at, settings)) = self.read.lock().await.get(&project) {
            if at.elapsed() < CACHED_FOR {
                return Ok(*settings);
            }
        }
        let settings = IngestionSettings::load(store, project).await?;
        self.read.lock().await.insert(project, (Instant::now(), settings));
        Ok(settings)
    }

    /// Save and use at once on this process.
    pub async fn put(
        &self,
        store: &dyn Store,
        project: ProjectId,
        settings: IngestionSettings,
    ) -> Result<(), StoreError> {
        settings.save(store, project).await?;
        self.read.lock().await.insert(project, (Instant::now(), settings));
        Ok(())
    }
}
