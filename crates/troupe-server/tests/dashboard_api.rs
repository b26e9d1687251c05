//! The dashboard's side of the API: setup once, sign-in with argon2-checked passwords, the
//! session cookie's flags, the CSRF header, group writes and saved insights/dashboards.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{app, App, SECRET};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;

/// POST JSON; returns status, body and the Set-Cookie header.
async fn post(
    app: &App,
    path: &str,
    body: Value,
    cookie: Option<&str>,
    csrf: Option<&str>,
) -> (StatusCode, Value, String) {
    let mut request = Request::post(path).header("content-type", "application/json");
    if let Some(c) = cookie {
        request = request.header("cookie", c);
    }
    if let Some(t) = csrf {
        request = request.header("x-csrf-token", t);
    }
    let response =
        app.router.clone().oneshot(request.body(Body::from(body.to_string())).expect("request")).await.expect("answer");
    let status = response.status();
    let set_cookie = response.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), set_cookie)
}

async fn with_session(
    app: &App,
    method: &str,
    path: &str,
    cookie: &str,
    csrf: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(path).header("cookie", cookie);
    if let Some(t) = csrf {
        request = request.header("x-csrf-token", t);
    }
    let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
    let reply = app.send(request.header("content-type", "application/json").body(body).expect("request")).await;
    (reply.status, reply.body)
}

#[tokio::test]
async fn setup_sign_in_sessions_and_csrf() {
    let app = app().await;
    let session = app.get_as("/api/session", None).await;
    assert_eq!(session.body, json!({"signed_in": false, "setup_needed": true, "setup_token_required": false}));

    let (status, body, _) = post(&app, "/api/setup", json!({"email": "a@b.co", "password": "short"}), None, None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap_or_default().contains("8 characters"), "{body}");

    let (status, body, cookie) =
        post(&app, "/api/setup", json!({"email": "Admin@Example.com", "password": "correct horse"}), None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], json!("admin@example.com"));
    for flag in ["troupe_session=", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(flag), "cookie has {flag}: {cookie}");
    }
    // Setup happens once.
    let (status, _, _) =
        post(&app, "/api/setup", json!({"email": "x@y.co", "password": "another one"}), None, None).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Wrong password: 401 and no cookie; right one: a new session.
    let (status, body, cookie_set) =
        post(&app, "/api/login", json!({"email": "admin@example.com", "password": "nope nope"}), None, None).await;
    assert_eq!(
        (status, body["error"].clone(), cookie_set.is_empty()),
        (StatusCode::UNAUTHORIZED, json!("wrong email or password"), true)
    );
    let (status, body, cookie) =
        post(&app, "/api/login", json!({"email": "admin@example.com", "password": "correct horse"}), None, None).await;
    assert_eq!(status, StatusCode::OK);
    let csrf = body["csrf"].as_str().unwrap_or_default().to_string();
    let cookie = cookie.split(';').next().unwrap_or_default().to_string();

    // The API with the cookie needs the CSRF token too.
    let (status, _) = with_session(&app, "GET", "/api/projects/default/group-types", &cookie, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) =
        with_session(&app, "GET", "/api/projects/default/group-types", &cookie, Some("csrf_wrong"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = with_session(&app, "GET", "/api/projects", &cookie, Some(&csrf), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["results"].as_array().map(Vec::len), Some(2), "a session sees every project");

    // Sign out ends the session.
    let (status, _, _) = post(&app, "/api/logout", json!({}), Some(&cookie), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = with_session(&app, "GET", "/api/projects", &cookie, Some(&csrf), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn groups_are_created_edited_and_deleted_and_documents_saved() {
    let app = app().await;
    let send = |method: &str, path: &str, body: Option<Value>| {
        let mut request =
            Request::builder().method(method).uri(path).header("authorization", format!("Bearer {SECRET}"));
        request = request.header("content-type", "application/json");
        request.body(body.map_or(Body::empty(), |b| Body::from(b.to_string()))).expect("request")
    };
    let put = |body: Value| send("PUT", "/api/projects/default/groups/company/acme", Some(body));
    let r = app.send(put(json!({"name": "Acme", "properties": {"plan": "pro", "seats": 5}}))).await;
    assert_eq!(
        (r.status, r.body["name"].clone(), r.body["properties"].clone()),
        (StatusCode::OK, json!("Acme"), json!({"plan": "pro", "seats": 5}))
    );
    // Editing makes the properties exactly the new ones.
    let r = app.send(put(json!({"name": "Acme Inc", "properties": {"plan": "enterprise"}}))).await;
    assert_eq!(
        (r.body["name"].clone(), r.body["properties"].clone()),
        (json!("Acme Inc"), json!({"plan": "enterprise"}))
    );
    let r = app
        .send(send("PATCH", "/api/projects/default/group-types/company", Some(json!({"display_name": "Companies"}))))
        .await;
    assert_eq!(r.body["display_name"], json!("Companies"));
    let r = app.send(send("DELETE", "/api/projects/default/groups/company/acme", None)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/projects/default/groups/company/acme").await.status, StatusCode::NOT_FOUND);
    let r = app.send(send("DELETE", "/api/projects/default/groups/company/acme", None)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Saved insights are checked: a broken query is a 400 naming it.
    let bad = app
        .send(send("POST", "/api/projects/default/insights", Some(json!({"name": "x", "query": {"kind": "funnel"}}))))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body["error"].as_str().unwrap_or_default().contains("steps"), "{}", bad.body);
    let query = json!({"kind": "trends", "series": [{"event": "Signed In"}]});
    let saved = app
        .send(send(
            "POST",
            "/api/projects/default/insights",
            Some(json!({"id": "signins", "name": "Sign-ins", "query": query})),
        ))
        .await;
    assert_eq!(saved.status, StatusCode::CREATED);
    let board = app
        .send(send("POST", "/api/projects/default/dashboards", Some(json!({"name": "Main", "insights": ["signins"]}))))
        .await;
    assert_eq!(board.status, StatusCode::CREATED);
    let id = board.body["id"].as_str().unwrap_or_default().to_string();
    let again = app.get(&format!("/api/projects/default/dashboards/{id}")).await;
    assert_eq!(again.body["insights"], json!(["signins"]));
    let bad =
        app.send(send("POST", "/api/projects/default/dashboards", Some(json!({"name": "", "insights": []})))).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn the_pages_are_served_with_a_content_security_policy() {
    let app = app().await;
    let response =
        app.router.clone().oneshot(Request::get("/").body(Body::empty()).expect("request")).await.expect("answer");
    assert_eq!(response.status(), StatusCode::OK);
    let csp =
        response.headers().get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    assert!(String::from_utf8_lossy(&bytes).contains("/assets/app.js"));
    for asset in ["app.js", "charts.js", "app.css"] {
        let r = app
            .router
            .clone()
            .oneshot(Request::get(format!("/assets/{asset}")).body(Body::empty()).expect("request"))
            .await
            .expect("answer");
        assert_eq!(r.status(), StatusCode::OK, "{asset}");
    }
    assert_eq!(app.get_as("/assets/nope.js", None).await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn setup_on_a_public_address_needs_the_one_time_token() {
    let settings = troupe_server::ServerSettings { setup_token: Some("setup_abc".into()), ..Default::default() };
    let app = common::app_with(settings).await;
    let session = app.get_as("/api/session", None).await;
    assert_eq!(session.body["setup_token_required"], json!(true));
    let admin = json!({"email": "admin@example.com", "password": "correct horse"});
    let (status, body, _) = post(&app, "/api/setup", admin.clone(), None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"].as_str().unwrap_or_default().contains("setup_token"), "{body}");
    let mut wrong = admin.clone();
    wrong["setup_token"] = json!("setup_abd");
    assert_eq!(post(&app, "/api/setup", wrong, None, None).await.0, StatusCode::UNAUTHORIZED);
    let mut right = admin;
    right["setup_token"] = json!("setup_abc");
    let (status, body, _) = post(&app, "/api/setup", right, None, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_address() {
    let app = app().await;
    let attempt = |from: [u8; 4]| {
        let mut request = Request::post("/api/login")
            .header("content-type", "application/json")
            .body(Body::from(json!({"email": "a@b.co", "password": "guess guess"}).to_string()))
            .expect("request");
        let addr = std::net::SocketAddr::from((from, 40000));
        request.extensions_mut().insert(axum::extract::ConnectInfo(addr));
        app.send(request)
    };
    for _ in 0..troupe_server::rate_limit::SIGN_IN_BURST {
        assert_eq!(attempt([10, 0, 0, 1]).await.status, StatusCode::UNAUTHORIZED);
    }
    let refused = attempt([10, 0, 0, 1]).await;
    assert_eq!((refused.status, refused.body["code"].clone()), (StatusCode::TOO_MANY_REQUESTS, json!("rate_limited")));
    assert_eq!(attempt([10, 0, 0, 2]).await.status, StatusCode::UNAUTHORIZED, "another address is not held back");
}

#[tokio::test]
async fn the_favicon_is_served_where_browsers_look_for_it() {
    let app = app().await;
    for path in ["/favicon.ico", "/assets/favicon.svg"] {
        let response =
            app.router.clone().oneshot(Request::get(path).body(Body::empty()).expect("request")).await.expect("answer");
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(
            response.headers().get("content-type").and_then(|v| v.to_str().ok()),
            Some("image/svg+xml"),
            "{path}"
        );
    }
}
