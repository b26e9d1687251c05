//! HTTP routes: one module per wire protocol, plus the read and query APIs. A path two
//! protocols share (`/track`: Mixpanel's and OpenPanel's) is dispatched here ([`shared`]).

pub mod activity;
pub mod admin;
pub mod amplitude;
pub mod catalog;
pub mod import;
pub mod insights;
pub mod internal;
pub mod mixpanel;
pub mod native;
pub mod openpanel;
pub mod posthog;
pub mod privacy;
pub mod read;
pub mod segment;
pub mod settings;
pub mod team;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use troupe_core::{Command, CoreError, Outcome};
use troupe_ingest::ItemResult;
use troupe_store::{CommandResult, Project};

use crate::error::ApiError;
use crate::AppState;

/// What happened to the items of a batch.
pub struct BatchReport {
    /// Items whose every command applied (events stored or found to be duplicates).
    pub accepted: usize,
    /// Items that were events already stored before.
    pub duplicates: usize,
    /// (item index, why) for every rejected item.
    pub rejected: Vec<(usize, CoreError)>,
}

impl BatchReport {
    /// "2 of 5 events were rejected; the other 3 were stored. First: …"
    pub fn summary(&self, total: usize, noun: &str) -> String {
        let first = self.rejected.first().map(|(_, e)| e.to_string()).unwrap_or_default();
        format!(
            "{} of {total} {noun} were rejected; the other {} were stored. First: {first}",
            self.rejected.len(),
            self.accepted
        )
    }

    /// The rejected items as `[{index, error, code, field}]`.
    pub fn rejected_json(&self) -> Vec<serde_json::Value> {
        self.rejected.iter().map(|(i, e)| crate::error::item_error(*i, e)).collect()
    }
}

/// Who sent a write, for the rate limits: ingestion-key writes are limited per project and per
/// distinct id; a historical import authenticated with the secret key per project only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sender {
    IngestionKey,
    SecretKey,
}

/// Apply `commands` to `project` through its rate limits.
pub async fn apply_limited(
    app: &AppState,
    project: &Project,
    commands: Vec<Command>,
    sender: Sender,
    protocol: &'static str,
) -> Result<Vec<CommandResult>, ApiError> {
    let n = commands.len();
    if let Err(e) = app.rate_limits.check_write(project.id, &project.name, &commands, sender == Sender::IngestionKey) {
        app.metrics.writes(protocol, (0..n).map(|_| ("refused", e.code().to_string())));
        return Err(e);
    }
    let started = std::time::Instant::now();
    let results = app.store.apply(project.id, commands).await?;
    app.metrics.commit(started);
    app.metrics.writes(protocol, results.iter().map(outcome));
    Ok(results)
}

/// A write's outcome as `/metrics` counts it.
fn outcome(result: &CommandResult) -> (&'static str, String) {
    match result {
        Ok(Outcome::Stored { .. }) => ("stored", String::new()),
        Ok(Outcome::Duplicate) => ("duplicate", String::new()),
        Ok(Outcome::Dropped) => ("dropped", String::new()),
        Ok(_) => ("applied", String::new()),
        Err(e) => ("refused", ApiError::from(e.clone()).code().to_string()),
    }
}

/// Apply the valid items of a batch in one store call and map results back to item indexes.
pub async fn apply_items(
    app: &AppState,
    project: &Project,
    items: Vec<ItemResult>,
    sender: Sender,
    protocol: &'static str,
) -> Result<BatchReport, ApiError> {
    app.metrics.batch(items.len());
    let mut owners = Vec::new();
    let mut commands = Vec::new();
    let mut rejected = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match item {
            Ok(item_commands) => {
                owners.extend(std::iter::repeat_n(index, item_commands.len()));
                commands.extend(item_commands);
            }
            Err(e) => {
                app.metrics.writes(protocol, [("refused", ApiError::from(e.clone()).code().to_string())]);
                rejected.push((index, e));
            }
        }
    }
    let valid_items: std::collections::BTreeSet<usize> = owners.iter().copied().collect();
    let mut failed = std::collections::BTreeSet::new();
    let mut duplicates = 0;
    for (index, result) in owners.into_iter().zip(apply_limited(app, project, commands, sender, protocol).await?) {
        match result {
            Ok(Outcome::Duplicate) => duplicates += 1,
            Ok(_) => {}
            Err(e) => {
                if failed.insert(index) {
                    rejected.push((index, e));
                }
            }
        }
    }
    rejected.sort_by_key(|(i, _)| *i);
    Ok(BatchReport { accepted: valid_items.len() - failed.len(), duplicates, rejected })
}

/// Routes two protocols share, dispatched here so that neither protocol's module knows the other.
pub fn shared() -> Router<Arc<AppState>> {
    Router::new().route("/track", post(track)).route("/track/", post(track))
}

/// `POST /track` is Mixpanel's and OpenPanel's: OpenPanel's client-id header or `{type, payload}`
/// body decides.
async fn track(State(app): State<Arc<AppState>>, request: Request) -> Response {
    // The peer address is there when the server runs with connect info (`troupe serve`).
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().cloned();
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    let body = axum::body::to_bytes(body, crate::MAX_BODY_BYTES).await.ok();
    if let Some(body) = body.as_ref().filter(|body| openpanel::is_openpanel(&headers, body)) {
        return openpanel::handle(&app, &headers, peer, body).await.unwrap_or_else(IntoResponse::into_response);
    }
    mixpanel::track(&app, &headers, body.as_ref()).await
}
