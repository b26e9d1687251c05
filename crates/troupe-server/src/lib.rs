//! troupe's HTTP server: ingestion routes (one module per wire protocol), the read API and
//! authentication, over any [`troupe_store::Store`].

pub mod auth;
mod dashboard;
mod error;
pub mod metrics;
pub mod project_settings;
pub mod rate_limit;
mod respond;
pub mod retention;
pub mod routes;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::trace::TraceLayer;
use troupe_core::Limits;
use troupe_store::{Project, Store, StoreError};

pub use auth::Projects;
pub use error::ApiError;

/// Largest request body after decompression. Batches of a few thousand events fit.
pub const MAX_BODY_BYTES: usize = 20 * 1024 * 1024;

/// Settings of the HTTP layer (the binary's `config.rs` fills them from flags and environment).
#[derive(Debug, Clone)]
pub struct ServerSettings {
    pub limits: Limits,
    /// The group type Segment's `group` calls and `context.groupId` use (Segment has one kind);
    /// whether `group` replaces or adds is per project (`IngestionSettings::segment_group`).
    pub segment_group_type: String,
    /// Mixpanel group keys: person and event properties with these names are memberships and
    /// attribution (Mixpanel declares them in project settings).
    pub mixpanel_group_keys: Vec<String>,
    /// Shared secret of `/internal/v1/…`, set on the process that applies writes for the other
    /// processes of a deployment (ClickHouse with several servers); `None` leaves them unmounted.
    pub internal_secret: Option<String>,
    /// Ingestion and sign-in rate limits.
    pub rate_limits: rate_limit::RateLimitSettings,
    /// First-run setup needs this token when set (`troupe serve` sets one when it listens on a
    /// non-loopback address, and prints it): whoever reaches the port first must not become
    /// the administrator.
    pub setup_token: Option<String>,
    /// How often projects' event retention (privacy settings) is applied; `None`: never (a
    /// process that should not sweep, e.g. tests).
    pub retention_sweep_every: Option<std::time::Duration>,
    /// The bearer key `/metrics` wants; `None`: `/metrics` answers this machine only.
    pub metrics_key: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            limits: Limits::default(),
            segment_group_type: "company".into(),
            mixpanel_group_keys: vec!["company".into()],
            internal_secret: None,
            rate_limits: rate_limit::RateLimitSettings::default(),
            setup_token: None,
            retention_sweep_every: Some(retention::SWEEP_EVERY),
            metrics_key: None,
        }
    }
}

/// What every handler shares.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub limits: Limits,
    pub settings: ServerSettings,
    pub projects: Projects,
    pub ingestion_settings: project_settings::SettingsCache<troupe_store::settings::IngestionSettings>,
    pub general_settings: project_settings::SettingsCache<troupe_store::settings::GeneralSettings>,
    pub catalog: routes::catalog::CatalogCache,
    pub metrics: metrics::Metrics,
    pub sessions: dashboard::Sessions,
    pub rate_limits: rate_limit::RateLimiter,
}

impl AppState {
    pub async fn new(store: Arc<dyn Store>, settings: ServerSettings) -> Result<Arc<Self>, StoreError> {
        let projects = Projects::load(store.as_ref()).await?;
        let rate_limits = rate_limit::RateLimiter::new(settings.rate_limits.clone());
        let state = Arc::new(AppState {
            store,
            limits: settings.limits.clone(),
            settings,
            projects,
            ingestion_settings: Default::default(),
            general_settings: Default::default(),
            catalog: Default::default(),
            metrics: Default::default(),
            sessions: dashboard::Sessions::default(),
            rate_limits,
        });
        if let Some(every) = state.settings.retention_sweep_every {
            retention::sweep_every(Arc::downgrade(&state), every);
        }
        // Idle rate-limit buckets are forgotten once a minute, while the server runs.
        let weak = Arc::downgrade(&state);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                match weak.upgrade() {
                    Some(app) => app.rate_limits.forget_idle(),
                    None => break,
                }
            }
        });
        Ok(state)
    }

    /// The project named by `reference` (id or name), for a request with its secret key or a
    /// dashboard session (which sees every project).
    pub async fn authorize(&self, headers: &HeaderMap, reference: &str) -> Result<Project, ApiError> {
        if auth::bearer(headers).is_some() {
            return self.projects.authorize_read(headers, reference).await;
        }
        self.sessions.check(headers, self.store.as_ref()).await?;
        self.projects
            .all()
            .await
            .into_iter()
            .find(|p| p.name == reference || p.id.to_string() == reference)
            .ok_or_else(|| ApiError::NotFound(format!("no project '{reference}'")))
    }

    /// The projects a request may read: those of its secret key, or all for a session.
    pub async fn readable_projects(&self, headers: &HeaderMap) -> Result<Vec<Project>, ApiError> {
        if auth::bearer(headers).is_some() {
            return self.projects.readable_with(headers).await;
        }
        self.sessions.check(headers, self.store.as_ref()).await?;
        Ok(self.projects.all().await)
    }
}

/// The ingestion routes of every protocol. They answer browsers on any site (troupe's browser SDK
/// and the web SDKs of other clients send from the customer's pages), so they allow cross-origin
/// requests: no cookie is read there, only the ingestion key. The read API, the dashboard and the
/// settings stay same-origin.
fn ingestion() -> Router<Arc<AppState>> {
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers(tower_http::cors::Any)
        .max_age(std::time::Duration::from_secs(24 * 3600));
    Router::new()
        .merge(routes::native::routes())
        .merge(routes::posthog::routes())
        .merge(routes::segment::routes())
        .merge(routes::mixpanel::routes())
        .merge(routes::amplitude::routes())
        .merge(routes::shared())
        .layer(cors)
}

/// The whole HTTP API.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics::scrape))
        .merge(ingestion())
        .merge(routes::read::routes())
        .merge(routes::activity::routes())
        .merge(routes::privacy::routes())
        .merge(routes::settings::routes())
        .merge(routes::catalog::routes())
        .merge(routes::import::routes())
        .merge(routes::insights::routes())
        .merge(routes::internal::routes())
        .merge(dashboard::routes())
        .route_layer(axum::middleware::from_fn_with_state(state.clone(), metrics::count_requests))
        .fallback(not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(RequestDecompressionLayer::new())
        .layer(CatchPanicLayer::custom(respond::panicked))
        .layer(axum::middleware::from_fn(respond::request_context))
        .layer(TraceLayer::new_for_http())
}

/// Ready to take writes: 200 `{"status": "ready"}`, else 503 (the writer stopped or is
/// recovering from a failed write, the backend is unreachable; the log says which). `/healthz` says only that the
/// process answers.
async fn ready(axum::extract::State(app): axum::extract::State<Arc<AppState>>) -> axum::response::Response {
    match app.store.ready().await {
        Ok(()) => Json(json!({"status": "ready"})).into_response(),
        Err(e) => {
            // The reason may hold a backend's own text (a host, a URL): logged, not shown.
            let request_id = respond::request_id();
            tracing::warn!(request_id = %request_id, error = %e, "not ready");
            let reason = format!("the store cannot take writes now (logged with request id {request_id})");
            let mut response =
                (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "not_ready", "reason": reason})))
                    .into_response();
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, axum::http::HeaderValue::from_static("1"));
            response
        }
    }
}

async fn not_found(uri: Uri) -> impl IntoResponse {
    (StatusCode::NOT_FOUND, Json(json!({"error": format!("no route {}", uri.path()), "code": "not_found"})))
}
