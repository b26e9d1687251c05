//! troupe's HTTP server: ingestion routes (one module per wire protocol), the read API and
//! authentication, over any [`troupe_store::Store`].

pub mod access;
pub mod accounts;
pub mod audit;
pub mod auth;
pub mod dashboard;
mod error;
pub mod keys;
pub mod metrics;
pub mod operator;
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

pub use access::{Access, Actor, Permission, Role};
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
    /// The token of `/internal/control` (the operator's CLI on this machine); `None`: unmounted.
    pub control_token: Option<String>,
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
            control_token: None,
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
        // Idle rate-limit buckets are forgotten once a minute, expired sessions and invitations
        // deleted at start and then every hour, while the server runs.
        let weak = Arc::downgrade(&state);
        tokio::spawn(async move {
            for minute in 0u64.. {
                if minute > 0 {
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                }
                let Some(app) = weak.upgrade() else { break };
                app.rate_limits.forget_idle();
                if minute % 60 == 0 {
                    app.purge_expired().await;
                }
            }
        });
        // Keys revoked, rotated or made by another process (a second troupe on ClickHouse, the
        // CLI on a stopped server's store) are read again every few seconds, in the background:
        // the requests' own lookups stay in memory.
        let weak = Arc::downgrade(&state);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(auth::KEYS_MAX_AGE).await;
                let Some(app) = weak.upgrade() else { break };
                if let Err(e) = app.projects.reload(app.store.as_ref()).await {
                    tracing::warn!(error = %e, "reading the projects' keys again failed; the cached keys stay in use");
                }
            }
        });
        Ok(state)
    }

    /// The project named by `reference` (id or name) if the request may do what `need` says
    /// there: with a secret key of that project and a scope that allows it, or a dashboard
    /// session whose user has a role there that allows it.
    pub async fn authorize(&self, headers: &HeaderMap, reference: &str, need: Permission) -> Result<Project, ApiError> {
        Ok(self.access(headers, reference, need).await?.project)
    }

    /// [`Self::authorize`], also saying who asked (for the audit log).
    pub async fn access(&self, headers: &HeaderMap, reference: &str, need: Permission) -> Result<Access, ApiError> {
        if auth::bearer(headers).is_some() {
            let grant = self.projects.bearer_grant(self.store.as_ref(), headers).await?;
            let project = grant.project;
            if project.name != reference && project.id.to_string() != reference {
                // A project that does not exist and another project's key get the same answer,
                // so that project names cannot be probed without a key.
                return Err(ApiError::Unauthorized(format!("that secret key does not open a project '{reference}'")));
            }
            if !grant.key.scope.allows(need) {
                let holder = format!("the key '{}' (scope {:?})", grant.key.name, grant.key.scope).to_lowercase();
                return Err(access::refused(&holder, &project.name, need));
            }
            return Ok(Access { project, actor: Actor::Key { name: grant.key.name } });
        }
        let signed_in = self.sessions.check(headers, self.store.as_ref()).await?;
        let user = signed_in.user;
        let no_project = || ApiError::NotFound(format!("no project '{reference}'"));
        let (project, _) = self.projects.find(reference).await.ok_or_else(no_project)?;
        // A project the user has no role in is not shown to exist.
        let role = user.role_in(project.id).ok_or_else(no_project)?;
        if !role.allows(need) {
            return Err(access::refused(&format!("your role ({})", role.as_str()), &project.name, need));
        }
        Ok(Access { project, actor: Actor::User { email: user.email } })
    }

    /// Delete expired sessions and invitations (a failure is logged; the next hour retries).
    pub async fn purge_expired(&self) {
        let store = self.store.as_ref();
        match self.sessions.purge_expired(store).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "expired sessions purged"),
            Err(e) => tracing::warn!(error = %e, "purging expired sessions failed"),
        }
        if let Err(e) = accounts::purge_expired_invites(store).await {
            tracing::warn!(error = %e, "purging expired invitations failed");
        }
    }

    /// Record an administrative action of `access` in its project's audit log.
    pub async fn audit(&self, access: &Access, action: &str, target: &str, details: serde_json::Value) {
        audit::record(self.store.as_ref(), access.project.id, &access.actor.label(), action, target, details).await;
    }

    /// The projects a request may read: its secret key's, or those where the signed-in user has
    /// a role.
    pub async fn readable_projects(&self, headers: &HeaderMap) -> Result<Vec<Project>, ApiError> {
        if auth::bearer(headers).is_some() {
            let grant = self.projects.bearer_grant(self.store.as_ref(), headers).await?;
            return Ok(vec![grant.project]);
        }
        let user = self.sessions.check(headers, self.store.as_ref()).await?.user;
        Ok(self.projects.all().await.into_iter().filter(|p| user.role_in(p.id).is_some()).collect())
    }

    /// The signed-in instance administrator, for instance-wide routes (accounts, the instance's
    /// audit log).
    pub async fn instance_admin(&self, headers: &HeaderMap) -> Result<accounts::User, ApiError> {
        if auth::bearer(headers).is_some() {
            return Err(ApiError::Forbidden(
                "accounts are managed by an instance administrator signed in, or with `troupe user` on the server"
                    .into(),
            ));
        }
        let user = self.sessions.check(headers, self.store.as_ref()).await?.user;
        if !user.is_instance_admin() {
            return Err(ApiError::Forbidden("only an instance administrator may do this".into()));
        }
        Ok(user)
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
        .route("/internal/control", axum::routing::post(operator::control))
        .merge(ingestion())
        .merge(routes::read::routes())
        .merge(routes::activity::routes())
        .merge(routes::privacy::routes())
        .merge(routes::settings::routes())
        .merge(routes::catalog::routes())
        .merge(routes::import::routes())
        .merge(routes::insights::routes())
        .merge(routes::internal::routes())
        .merge(routes::team::routes())
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
