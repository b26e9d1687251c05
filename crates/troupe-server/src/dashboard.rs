//! The dashboard: its pages (a static single-page app embedded in the binary, no build step) and
//! who may use them — administrators with argon2-hashed passwords, signed in by a session cookie
//! (HttpOnly, SameSite=Strict). The pages call the same JSON API as scripts; with a session
//! instead of a secret key, every API request must also carry the session's CSRF token in
//! `X-CSRF-Token`, which another site's form cannot send.
//!
//! Users and sessions are documents of the instance scope ([`INSTANCE`]), so every backend
//! stores them.

use std::collections::HashMap;
use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
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

use crate::auth::{generate_key, hash_secret};
use crate::error::{json_body, ApiError};
use crate::rate_limit::ClientAddr;
use crate::AppState;

pub const SESSION_COOKIE: &str = "troupe_session";
pub const CSRF_HEADER: &str = "x-csrf-token";
const USER_KIND: &str = "user";
const SESSION_KIND: &str = "session";
/// Sessions last a week from sign-in.
const SESSION_DAYS: i64 = 7;
const MIN_PASSWORD: usize = 8;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Session {
    email: String,
    csrf: String,
    expires_at: DateTime<Utc>,
}

/// Signed-in sessions by the hash of their cookie token (the token itself is never stored).
#[derive(Default)]
pub struct Sessions {
    cache: RwLock<HashMap<String, Session>>,
}

impl Sessions {
    /// The signed-in user of a request carrying a valid session cookie and its CSRF token.
    pub async fn check(&self, headers: &HeaderMap, store: &dyn Store) -> Result<String, ApiError> {
        let jar = CookieJar::from_headers(headers);
        let token = jar
            .get(SESSION_COOKIE)
            .map(|c| c.value().to_string())
            .ok_or_else(|| ApiError::Unauthorized("sign in, or send 'Authorization: Bearer <secret key>'".into()))?;
        let session = self
            .find(&token, store)
            .await?
            .ok_or_else(|| ApiError::Unauthorized("the session has ended: sign in again".into()))?;
        let csrf = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
        if csrf != session.csrf {
            return Err(ApiError::Unauthorized("missing or wrong X-CSRF-Token for this session".into()));
        }
        Ok(session.email)
    }

    async fn find(&self, token: &str, store: &dyn Store) -> Result<Option<Session>, StoreError> {
        let key = hash_secret(token);
        let cached = self.cache.read().await.get(&key).cloned();
        let session = match cached {
            Some(s) => Some(s),
            None => {
                let docs = store.documents(INSTANCE, SESSION_KIND).await?;
                let found =
                    docs.into_iter().find(|d| d.id == key).and_then(|d| serde_json::from_value::<Session>(d.body).ok());
                if let Some(s) = &found {
                    self.cache.write().await.insert(key.clone(), s.clone());
                }
                found
            }
        };
        Ok(session.filter(|s| s.expires_at > Utc::now()))
    }

    async fn start(&self, email: &str, store: &dyn Store) -> Result<(String, Session), StoreError> {
        let token = generate_key("tss_");
        let session = Session {
            email: email.to_string(),
            csrf: generate_key("csrf_"),
            expires_at: Utc::now() + Duration::days(SESSION_DAYS),
        };
        let key = hash_secret(&token);
        let body = serde_json::to_value(&session).unwrap_or_default();
        store
            .put_document(
                INSTANCE,
                Document { kind: SESSION_KIND.into(), id: key.clone(), body, updated_at: Utc::now() },
            )
            .await?;
        self.cache.write().await.insert(key, session.clone());
        Ok((token, session))
    }

    async fn end(&self, token: &str, store: &dyn Store) -> Result<(), StoreError> {
        let key = hash_secret(token);
        self.cache.write().await.remove(&key);
        store.delete_document(INSTANCE, SESSION_KIND, &key).await?;
        Ok(())
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
    let setup_needed = users(app.store.as_ref()).await?.is_empty();
    let token_required = setup_needed && app.settings.setup_token.is_some();
    let signed_out = json!({"signed_in": false, "setup_needed": setup_needed, "setup_token_required": token_required});
    let Some(token) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return Ok(Json(signed_out));
    };
    match app.sessions.find(&token, app.store.as_ref()).await? {
        Some(s) => Ok(Json(json!({"signed_in": true, "email": s.email, "csrf": s.csrf, "setup_needed": false}))),
        None => Ok(Json(signed_out)),
    }
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
    if !c.email.contains('@') || c.email.len() > 200 {
        return Err(ApiError::BadQuery("email: give an email address".into()));
    }
    Ok(Credentials { email: c.email.trim().to_lowercase(), ..c })
}

/// First run: create the administrator. Refused once one exists.
async fn setup(
    State(app): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    jar: CookieJar,
    body: Bytes,
) -> Result<(CookieJar, Json<Value>), ApiError> {
    app.rate_limits.check_sign_in(client)?;
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
    if c.password.chars().count() < MIN_PASSWORD {
        return Err(ApiError::BadQuery(format!("password: at least {MIN_PASSWORD} characters")));
    }
    if !users(app.store.as_ref()).await?.is_empty() {
        return Err(ApiError::Store(StoreError::Conflict("setup is done: sign in instead".into())));
    }
    let salt = SaltString::generate(&mut OsRng);
    let hash = Argon2::default()
        .hash_password(c.password.as_bytes(), &salt)
        .map_err(|e| ApiError::Store(StoreError::Internal(format!("cannot hash the password: {e}"))))?
        .to_string();
    let body = json!({"email": c.email, "password_hash": hash, "created_at": Utc::now()});
    app.store
        .put_document(INSTANCE, Document { kind: USER_KIND.into(), id: c.email.clone(), body, updated_at: Utc::now() })
        .await?;
    sign_in(&app, jar, &c.email).await
}

async fn login(
    State(app): State<Arc<AppState>>,
    ClientAddr(client): ClientAddr,
    jar: CookieJar,
    body: Bytes,
) -> Result<(CookieJar, Json<Value>), ApiError> {
    app.rate_limits.check_sign_in(client)?;
    let c = credentials(&body)?;
    let refused = || ApiError::Unauthorized("wrong email or password".into());
    let user = users(app.store.as_ref()).await?.into_iter().find(|d| d.id == c.email).ok_or_else(refused)?;
    let stored = user.body.get("password_hash").and_then(Value::as_str).unwrap_or_default().to_string();
    let parsed = PasswordHash::new(&stored).map_err(|_| refused())?;
    Argon2::default().verify_password(c.password.as_bytes(), &parsed).map_err(|_| refused())?;
    sign_in(&app, jar, &c.email).await
}

async fn sign_in(app: &AppState, jar: CookieJar, email: &str) -> Result<(CookieJar, Json<Value>), ApiError> {
    let (token, session) = app.sessions.start(email, app.store.as_ref()).await?;
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
        app.sessions.end(&token, app.store.as_ref()).await?;
    }
    Ok((jar.remove(Cookie::build(SESSION_COOKIE).path("/").build()), StatusCode::NO_CONTENT))
}

/// Equal without telling, by its timing, how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn users(store: &dyn Store) -> Result<Vec<Document>, StoreError> {
    store.documents(INSTANCE, USER_KIND).await
}
