//! Event retention: every project whose privacy settings set `event_retention_days` loses its
//! events older than that, by a sweep that runs in the background while the server runs (and
//! once shortly after it starts). The events go through the writer like any write
//! (`Command::ExpireEvents`): on ClickHouse, whole monthly partitions when they hold nothing else.

use std::sync::Weak;
use std::time::Duration;

use chrono::{DateTime, Utc};
use troupe_core::{Command, ProjectId};
use troupe_store::privacy::PrivacySettings;

use crate::AppState;

/// The default interval between sweeps.
pub const SWEEP_EVERY: Duration = Duration::from_secs(3600);

/// The first sweep waits this long after start, so a start is not slowed by it.
const FIRST_SWEEP_AFTER: Duration = Duration::from_secs(30);

/// Apply every project's retention as of `now`; the projects swept and their cutoffs. A project
/// whose sweep fails is logged and tried again at the next sweep.
pub async fn sweep(app: &AppState, now: DateTime<Utc>) -> Vec<(ProjectId, DateTime<Utc>)> {
    let mut swept = Vec::new();
    for project in app.projects.all().await {
        let settings = match PrivacySettings::load(app.store.as_ref(), project.id).await {
            Ok(settings) => settings,
            Err(e) => {
                tracing::warn!(project = project.id, error = %e, "cannot read the privacy settings; retention not applied");
                continue;
            }
        };
        let Some(days) = settings.event_retention_days else { continue };
        let before = now - chrono::Duration::days(i64::from(days));
        match app.store.apply(project.id, vec![Command::ExpireEvents { before }]).await {
            Ok(_) => {
                tracing::info!(project = project.id, %before, "events past the retention dropped");
                swept.push((project.id, before));
            }
            Err(e) => {
                tracing::warn!(project = project.id, error = %e, "applying the retention failed; next sweep tries again")
            }
        }
    }
    swept
}

/// Sweep every `every` while the app lives.
pub fn sweep_every(app: Weak<AppState>, every: Duration) {
    tokio::spawn(async move {
        tokio::time::sleep(FIRST_SWEEP_AFTER.min(every)).await;
        loop {
            let Some(app) = app.upgrade() else { break };
            sweep(&app, Utc::now()).await;
            drop(app);
            tokio::time::sleep(every).await;
        }
    });
}
