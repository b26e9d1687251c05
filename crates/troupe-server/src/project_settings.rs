//! Project settings read on hot paths (every Segment batch, every insight), cached briefly: they
//! change once in a project's life and a request should not wait on a store read for them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use tokio::sync::Mutex;
use troupe_core::ProjectId;
use troupe_store::settings::{self, SettingsArea};
use troupe_store::{Store, StoreError};

/// How long a read of the settings is used. A `PUT` on this process applies at once; another
/// process of a deployment (several servers on one ClickHouse) sees it within this time.
pub const CACHED_FOR: Duration = Duration::from_secs(5);

/// One settings area's reads, per project.
pub struct SettingsCache<T> {
    read: Mutex<HashMap<ProjectId, (Instant, T)>>,
}

impl<T> Default for SettingsCache<T> {
    fn default() -> Self {
        SettingsCache { read: Mutex::new(HashMap::new()) }
    }
}

impl<T: SettingsArea> SettingsCache<T> {
    pub async fn get(&self, store: &dyn Store, project: ProjectId) -> Result<T, StoreError> {
        if let Some((at, settings)) = self.read.lock().await.get(&project) {
            if at.elapsed() < CACHED_FOR {
                return Ok(settings.clone());
            }
        }
        let settings: T = settings::load(store, project, T::ID).await?;
        self.read.lock().await.insert(project, (Instant::now(), settings.clone()));
        Ok(settings)
    }

    /// Save and use at once on this process.
    pub async fn put(&self, store: &dyn Store, project: ProjectId, settings: T) -> Result<(), StoreError> {
        settings::save(store, project, T::ID, &settings).await?;
        self.read.lock().await.insert(project, (Instant::now(), settings));
        Ok(())
    }
}
