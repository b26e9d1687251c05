//! The dashboard: its pages (a static single-page app embedded in the binary, no build step) and
//! who may use them — accounts ([`crate::accounts`]) signed in by a session cookie (HttpOnly,
//! SameSite=Strict). The pages call the same JSON API as scripts; with a session instead of a
//! secret key, every API request must also carry the session's CSRF token in `X-CSRF-Token`,
//! which another site's form cannot send.
//!
//! Sessions are documents of the instance scope ([`INSTANCE`]), so every backend stores them;
//! each process caches them for a few seconds (a session revoked elsewhere ends within that).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::RwLock;
use troupe_store::{Document, Store, StoreError, INSTANCE};

use crate::accounts::{self, User};
use crate::auth::{generate_key, hash_secret};
use crate::error::{json_body, ApiError};
use crate::rate_limit::ClientAddr;
use crate::AppState;

pub const SESSION_COOKIE: &str = "troupe_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
const SESSION_KIND: &str = "session";
/// Sessions last a week from sign-in.
const SESSION_DAYS: i64 = 7;
/// A cached session is read again from the store after this (revoked by another process).
const SESSION_CACHE_SECS: u64 = 5;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub email: String,
    csrf: String,
    pub expires_at: DateTime<Utc>,
    #[serde(default)]
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ip: Option<String>,
    #[serde(default)]
    pub user_agent: Option<String>,
}

/// A session as listed: named by the first characters of its token's hash.
pub fn session_id(key: &str) -> &str {
    &key[..key.len().min(16)]
}

/// Signed-in sessions by the hash of their cookie token (the token itself is never stored).
#[derive(Default)]
pub struct Sessions {
    cache: RwLock<HashMap<String, (Session, Instant)>>,
}

/// Who a session belongs to, and the hash that names it.
pub struct SignedIn {
    pub user: User,
    pub key: String,
}

impl Sessions {
    /// The signed-in user of a request carrying a valid session cookie and its CSRF token.
    pub async fn check(&self, headers: &HeaderMap, store: &dyn Store) -> Result<SignedIn, ApiError> {
        let jar = CookieJar::from_headers(headers);
        let token = jar
            .get(SESSION_COOKIE)
            .map(|c| c.value().to_string())
            .ok_or_else(|| ApiError::Unauthorized("sign in, or send 'Authorization: Bearer <secret key>'".into()))?;
        let ended = || ApiError::Unauthorized("the session has ended: sign in again".into());
        let (key, session) = self.find(&token, store).await?.ok_or_else(ended)?;
        let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if csrf != session.csrf {
            return Err(ApiError::Unauthorized("missing or wrong X-CSRF-Token for this session".into()));
        }
        let user = accounts::user(store, &session.email).await?.ok_or_else(ended)?;
        Ok(SignedIn { user, key })
    }

    async fn find(&self, token: &str, store: &dyn Store) -> Result<Option<(String, Session)>, StoreError> {
        let key = hash_secret(token);
        let cached = self
            .cache
            .read()
            .await
            .get(&key)
            .filter(|(_, at)| at.elapsed().as_secs() < SESSION_CACHE_SECS)
            .map(|(s, _)| s.clone());
        let session = match cached {
            Some(s) => Some(s),
            None => {
                let found = all(store).await?.into_iter().find(|(k, _)| *k == key).map(|(_, s)| s);
                let mut cache = self.cache.write().await;
                match &found {
                    Some(s) => cache.insert(key.clone(), (s.clone(), Instant::now())),
                    None => cache.remove(&key),
                };
                found
            }
        };
        Ok(session.filter(|s| s.expires_at > Utc::now()).map(|s| (key, s)))
    }

    async fn start(
        &self,
        email: &str,
        client: &RequestFrom,
        store: &dyn Store,
    ) -> Result<(String, Session), StoreError> {
        let token = generate_key("tss_");
        let now = Utc::now();
        let session = Session {
            email: email.to_string(),
            csrf: generate_key("csrf_"),
            expires_at: now + Duration::days(SESSION_DAYS),
            created_at: Some(now),
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        };
        let key = hash_secret(&token);
        let body = serde_json::to_value(&session).unwrap_or_default();
        store
            .put_document(INSTANCE, Document { kind: SESSION_KIND.into(), id: key.clone(), body, updated_at: now })
            .await?;
        self.cache.write().await.insert(key, (session.clone(), Instant::now()));
        Ok((token, session))
    }

    /// End the session stored under `key` (a token's hash).
    pub async fn end_key(&self, key: &str, store: &dyn Store) -> Result<bool, StoreError> {
        self.cache.write().await.remove(key);
        store.delete_document(INSTANCE, SESSION_KIND, key).await
    }

    /// End every stored session `ends` picks (given its key and the session); how many ended.
    pub async fn end_where(
        &self,
        store: &dyn Store,
        ends: impl Fn(&str, &Session) -> bool,
    ) -> Result<usize, StoreError> {
        let mut ended = 0;
        for (key, session) in all(store).await? {
            if ends(&key, &session) && self.end_key(&key, store).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// End every session of a user (password reset, account removed); how many ended.
    pub async fn end_all_of(&self, email: &str, store: &dyn Store) -> Result<usize, StoreError> {
        self.end_where(store, |_, session| session.email == email).await
    }

    /// Delete expired sessions from the store (run at start and every hour).
    pub async fn purge_expired(&self, store: &dyn Store) -> Result<usize, StoreError> {
        let now = Utc::now();
        self.end_where(store, |_, session| session.expires_at <= now).await
    }
}

/// Every stored session with the hash it is stored under (unreadable ones as expired).
pub async fn all(store: &dyn Store) -> Result<Vec<(String, Session)>, StoreError> {
    let docs = store.documents(INSTANCE, SESSION_KIND).await?;
    Ok(docs
        .into_iter()
        .map(|d| {
            let session = serde_json::from_value::<Session>(d.body).unwrap_or(Session {
                email: String::new(),
                csrf: String::new(),
                expires_at: DateTime::<Utc>::MIN_UTC,
                created_at: None,
                ip: None,
                user_agent: None,
            });
            (d.id, session)
        })
        .collect())
}

/// Where a sign-in came from, kept with its session for the sessions list.
pub struct RequestFrom {
    ip: Option<String>,
    user_agent: Option<String>,
}

impl RequestFrom {
    fn of(client: &ClientAddr, headers: &HeaderMap) -> Self {
        let user_agent =
            headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok()).map(|ua| ua.chars().take(200).collect());
        RequestFrom { ip: client.0.map(|ip| ip.to_string()), user_agent }
    }
}

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/", get(index))
        .route("/assets/{file}", get(asset))
        // The browser SDK: a classic script (defines `window.troupe`) and the same as a module.
        .route("/sdk.js", get(sdk_script))
        .route("/sdk.mjs", get(|| asset(Path("sdk.mjs".to_string()))))
        // Browsers ask for /favicon.ico whatever the page links to.
        .route("/favicon.ico", get(|| asset(Path("favicon.svg".to_string()))))
        .route("/api/session", get(session))
        .route("/api/setup", post(setup))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
}

async fn index() -> Response {
    let mut response = ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], INDEX_HTML).into_response();
    secure_headers(response.headers_mut());
    response
}

const INDEX_HTML: &str = include_str!("../assets/index.html");
const ASSETS: &[(&str, &str, &str)] = &[
    ("app.js", "text/javascript; charset=utf-8", include_str!("../assets/app.js")),
    ("lib.js", "text/javascript; charset=utf-8", include_str!("../assets/lib.js")),
    ("builder.js", "text/javascript; charset=utf-8", include_str!("../assets/builder.js")),
    ("cohorts.js", "text/javascript; charset=utf-8", include_str!("../assets/cohorts.js")),
    ("team.js", "text/javascript; charset=utf-8", include_str!("../assets/team.js")),
    ("charts.js", "text/javascript; charset=utf-8", include_str!("../assets/charts.js")),
    ("favicon.svg", "image/svg+xml", include_str!("../assets/favicon.svg")),
    ("sdk.mjs", "text/javascript; charset=utf-8", SDK_MODULE),
    ("app.css", "text/css; charset=utf-8", include_str!("../assets/app.css")),
];

const SDK_MODULE: &str = include_str!("../assets/sdk.mjs");

/// `/sdk.js`: the module with its export turned into `window.troupe`, for a plain `<script>` tag.
async fn sdk_script() -> Response {
    static SCRIPT: std::sync::LazyLock<String> =
        std::sync::LazyLock::new(|| SDK_MODULE.replace("export default troupe;", "window.troupe = troupe;"));
    let mut response = ([(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT.as_str()).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

async fn asset(Path(file): Path<String>) -> Response {
    match ASSETS.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, body)) => {
            let mut response = ([(header::CONTENT_TYPE, *content_type)], *body).into_response();
            secure_headers(response.headers_mut());
            response
        }
        None => (StatusCode::NOT_FOUND, Json(json!({"error": format!("no asset {file}"), "code": "not_found"})))
            .into_response(),
    }
}

/// The pages load only their own scripts and styles and cannot be framed.
fn secure_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
}

/// Who is signed in (and the CSRF token the pages must send), or whether setup is needed.
async fn session(State(app): State<Arc<AppState>>, jar: CookieJar) -> Result<Json<Value>, ApiError> {
    let setup_needed = accounts::users(app.store.as_ref()).await?.is_empty();
    let token_required = setup_needed && app.settings.setup_token.is_some();
    let signed_out = json!({"signed_in": false, "setup_needed": setup_needed, "setup_token_required": token_required});
    let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return Ok(Json(signed_out));
    };
    let Some((_, s)) = app.sessions.find(&token, app.store.as_ref()).await? else {
        return Ok(Json(signed_out));
    };
    let Some(user) = accounts::user(app.store.as_ref(), &s.email).await? else {
        return Ok(Json(signed_out));
    };
    let mut roles = serde_json::Map::new();
    for project in app.projects.all().await {
        if let Some(role) = user.role_in(project.id) {
            roles.insert(project.id.to_string(), json!(role));
        }
    }
    Ok(Json(json!({
        "signed_in": true, "email": s.email, "csrf": s.csrf, "setup_needed": false,
        "instance_admin": user.is_instance_admin(), "roles": roles,
    })))
}

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
    /// First-run setup on a non-loopback address: the one-time token from the server's log.
    #[serde(default)]
    setup_token: Option<String>,
}

fn credentials(body: &[u8]) -> Result<Credentials, ApiError> {
    let c: Credentials = json_body(body)?;
    Ok(Credentials { email: accounts::normalize_email(&c.email)?, ..c })
}

/// First run: create the instance administrator. Refused once an account exists.
async fn setup(
    State(app): State<Arc<AppState>>,
    client: ClientAddr,
    headers: HeaderMap,
    jar: CookieJar,
    body: Bytes,
) -> Result<(CookieJar, Json<Value>), ApiError> {
    app.rate_limits.check_sign_in(client.0)?;
    let c = credentials(&body)?;
    if let Some(expected) = &app.settings.setup_token {
        let given = c.setup_token.as_deref().unwrap_or_default();
        if !constant_time_eq(given.as_bytes(), expected.as_bytes()) {
            return Err(ApiError::Unauthorized(
                "setup_token: first-run setup on this address needs the one-time token printed in the server's log"
                    .into(),
            ));
        }
    }
    // Checked before the setup-is-done answer; hashed once, by `add_user`.
    accounts::check_password(&c.password)?;
    if !accounts::users(app.store.as_ref()).await?.is_empty() {
        return Err(ApiError::Store(StoreError::Conflict("setup is done: sign in instead".into())));
    }
    accounts::add_user(app.store.as_ref(), &c.email, &c.password, true, Default::default()).await?;
    crate::audit::record(app.store.as_ref(), INSTANCE, &format!("user:{}", c.email), "user.setup", &c.email, json!({}))
        .await;
    sign_in(&app, jar, &c.email, &RequestFrom::of(&client, &headers)).await
}

async fn login(
    State(app): State<Arc<AppState>>,
    client: ClientAddr,
    headers: HeaderMap,
    jar: CookieJar,
    body: Bytes,
) -> Result<(CookieJar, Json<Value>), ApiError> {
    app.rate_limits.check_sign_in(client.0)?;
    let c = credentials(&body)?;
    let refused = || ApiError::Unauthorized("wrong email or password".into());
    let user = accounts::user(app.store.as_ref(), &c.email).await?.ok_or_else(refused)?;
    if !accounts::verify_password(&user, &c.password) {
        return Err(refused());
    }
    sign_in(&app, jar, &c.email, &RequestFrom::of(&client, &headers)).await
}

/// Accept an invitation: make the account with the chosen password (or add the invitation's
/// role to an existing account, whose password must then be given) and sign in.
pub async fn accept_invite(
    State(app): State<Arc<AppState>>,
    client: ClientAddr,
    headers: HeaderMap,
    jar: CookieJar,
    Path(token): Path<String>,
    body: Bytes,
) -> Result<(CookieJar, Json<Value>), ApiError> {
    app.rate_limits.check_sign_in(client.0)?;
    #[derive(Deserialize)]
    struct Accept {
        password: String,
    }
    let accept: Accept = json_body(&body)?;
    let store = app.store.as_ref();
    let (hash, invite) = accounts::find_invite(store, &token)
        .await?
        .ok_or_else(|| ApiError::NotFound("that invitation is unknown, used or expired: ask for a new one".into()))?;
    match accounts::user(store, &invite.email).await? {
        Some(mut user) => {
            if !accounts::verify_password(&user, &accept.password) {
                return Err(ApiError::Unauthorized("wrong password for the existing account".into()));
            }
            user.set_role(invite.project, Some(invite.role));
            accounts::save_user(store, &user).await?;
        }
        None => {
            let roles = [(invite.project, invite.role)].into_iter().collect();
            accounts::add_user(store, &invite.email, &accept.password, false, roles).await?;
        }
    }
    accounts::delete_invite(store, &hash).await?;
    let details = json!({"role": invite.role, "invited_by": invite.created_by});
    crate::audit::record(
        store,
        invite.project,
        &format!("user:{}", invite.email),
        "member.join",
        &invite.email,
        details,
    )
    .await;
    sign_in(&app, jar, &invite.email, &RequestFrom::of(&client, &headers)).await
}

async fn sign_in(
    app: &AppState,
    jar: CookieJar,
    email: &str,
    from: &RequestFrom,
) -> Result<(CookieJar, Json<Value>), ApiError> {
    let (token, session) = app.sessions.start(email, from, app.store.as_ref()).await?;
    let cookie = Cookie::build((SESSION_COOKIE, token))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .max_age(time::Duration::days(SESSION_DAYS))
        .build();
    Ok((jar.add(cookie), Json(json!({"signed_in": true, "email": email, "csrf": session.csrf}))))
}

async fn logout(State(app): State<Arc<AppState>>, jar: CookieJar) -> Result<(CookieJar, StatusCode), ApiError> {
    if let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) {
        app.sessions.end_key(&hash_secret(&token), app.store.as_ref()).await?;
    }
    Ok((jar.remove(Cookie::build(SESSION_COOKIE).path("/").build()), StatusCode::NO_CONTENT))
}

/// Equal without telling, by its timing, how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
