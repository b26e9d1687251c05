//! Running troupe for a team, over the API: each role's allowed and refused actions, invitations,
//! sessions (listed, revoked, purged when expired), secret keys with scopes and expiry,
//! ingestion-key rotation with its overlap, and the audit log of it all.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tower::ServiceExt;
use troupe_store::{Document, INSTANCE};

use common::{App, SECRET, SITE};

/// A signed-in dashboard user: the session cookie and its CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn call(app: &App, method: &str, path: &str, auth: Auth<'_>, body: Option<Value>) -> (StatusCode, Value, String) {
    let mut request = Request::builder().method(method).uri(path).header("content-type", "application/json");
    match auth {
        Auth::Session(s) => request = request.header("cookie", &s.cookie).header("x-csrf-token", &s.csrf),
        Auth::Key(k) => request = request.header("authorization", format!("Bearer {k}")),
        Auth::None => {}
    }
    let body = body.map_or(Body::empty(), |b| Body::from(b.to_string()));
    let response = app.router.clone().oneshot(request.body(body).expect("request")).await.expect("answer");
    let status = response.status();
    let cookie = response.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    let bytes = response.into_body().collect().await.expect("body").to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null), cookie)
}

#[derive(Clone, Copy)]
enum Auth<'a> {
    Session(&'a Session),
    Key(&'a str),
    None,
}

fn session_of(body: &Value, set_cookie: &str) -> Session {
    Session {
        cookie: set_cookie.split(';').next().unwrap_or_default().to_string(),
        csrf: body["csrf"].as_str().expect("csrf").to_string(),
    }
}

async fn owner(app: &App) -> Session {
    let (status, body, cookie) = call(
        app,
        "POST",
        "/api/setup",
        Auth::None,
        Some(json!({"email": "owner@t.test", "password": "owner-password"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    session_of(&body, &cookie)
}

/// Invite `email` with `role` to the default project and accept the link: their session.
async fn invited(app: &App, by: &Session, email: &str, role: &str) -> Session {
    let (status, body, _) = call(
        app,
        "POST",
        "/api/projects/default/members",
        Auth::Session(by),
        Some(json!({"email": email, "role": role})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let token = body["invite"]["token"].as_str().expect("token").to_string();
    let (status, about, _) = call(app, "GET", &format!("/api/invites/{token}"), Auth::None, None).await;
    assert_eq!(
        (status, about["role"].as_str(), about["project"].as_str()),
        (StatusCode::OK, Some(role), Some("default"))
    );
    let path = format!("/api/invites/{token}/accept");
    let (status, body, cookie) = call(app, "POST", &path, Auth::None, Some(json!({"password": "short"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a short password is refused: {body}");
    let (status, body, cookie_set) =
        call(app, "POST", &path, Auth::None, Some(json!({"password": "member-password"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let _ = cookie;
    // A used link does not work twice.
    let (status, _, _) = call(app, "POST", &path, Auth::None, Some(json!({"password": "member-password"}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    session_of(&body, &cookie_set)
}

/// What each role may do, one request per permission level, and what it is refused.
#[tokio::test]
async fn each_role_is_allowed_and_refused_what_it_should_be() {
    let app = common::app().await;
    let owner = owner(&app).await;
    let viewer = invited(&app, &owner, "viewer@t.test", "viewer").await;
    let member = invited(&app, &owner, "member@t.test", "member").await;
    let admin = invited(&app, &owner, "admin@t.test", "admin").await;
    app.post("/api/events", json!({"event_name": "Signed In", "user_id": "ana"})).await;

    let trend = json!({"kind": "trends", "series": [{"event": "Signed In"}], "date_range": {"from": "-7d"}});
    let actions: Vec<(&str, &str, Option<Value>, &str)> = vec![
        ("GET", "/api/projects/default/events", None, "read"),
        ("GET", "/api/projects/default/insights", None, "read"),
        ("GET", "/api/projects/default/settings/general", None, "read"),
        ("POST", "/api/projects/default/query", Some(trend.clone()), "query"),
        ("POST", "/api/projects/default/insights", Some(json!({"name": "t", "query": trend})), "edit"),
        ("PUT", "/api/projects/default/groups/company/acme", Some(json!({"properties": {"plan": "pro"}})), "edit"),
        ("PUT", "/api/projects/default/settings/general", Some(json!({"timezone": "UTC"})), "admin"),
        ("POST", "/api/projects/default/keys", Some(json!({"name": "k-{role}", "scope": "read"})), "admin"),
        ("GET", "/api/projects/default/members", None, "admin"),
        ("GET", "/api/projects/default/audit", None, "admin"),
        ("DELETE", "/api/projects/default/persons/nobody", None, "admin"),
    ];
    let level = |need: &str| ["read", "query", "edit", "admin"].iter().position(|l| *l == need).unwrap_or(9);
    for (role, session, granted) in
        [("viewer", &viewer, "query"), ("member", &member, "edit"), ("admin", &admin, "admin")]
    {
        for (method, path, body, need) in &actions {
            let body =
                body.as_ref().map(|b| serde_json::from_str(&b.to_string().replace("{role}", role)).expect("json"));
            let (status, answer, _) = call(&app, method, path, Auth::Session(session), body).await;
            if level(need) <= level(granted) {
                assert!(status.is_success(), "{role} may {method} {path}: {status} {answer}");
            } else {
                assert_eq!(status, StatusCode::FORBIDDEN, "{role} may not {method} {path}: {answer}");
                assert!(
                    answer["error"].as_str().unwrap_or_default().contains(role),
                    "the refusal names the role: {answer}"
                );
            }
        }
        // Only the projects they have a role in exist for them.
        let (_, projects, _) = call(&app, "GET", "/api/projects", Auth::Session(session), None).await;
        let names: Vec<_> = projects["results"].as_array().expect("list").iter().map(|p| p["name"].clone()).collect();
        assert_eq!(names, vec![json!("default")], "{role}");
        let (status, _, _) = call(&app, "GET", "/api/projects/other/events", Auth::Session(session), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{role} cannot see project 'other'");
        // Accounts and the instance's log are the instance administrator's.
        let (status, _, _) = call(&app, "GET", "/api/users", Auth::Session(session), None).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    let (status, users, _) = call(&app, "GET", "/api/users", Auth::Session(&owner), None).await;
    assert_eq!((status, users["results"].as_array().map(Vec::len)), (StatusCode::OK, Some(4)));
    let (_, projects, _) = call(&app, "GET", "/api/projects", Auth::Session(&owner), None).await;
    assert_eq!(projects["results"].as_array().map(Vec::len), Some(2), "the instance administrator sees every project");

    // An admin changes the member to viewer: the next edit is refused.
    let path = "/api/projects/default/members/member@t.test";
    let (status, body, _) = call(&app, "PUT", path, Auth::Session(&admin), Some(json!({"role": "viewer"}))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) = call(
        &app,
        "POST",
        "/api/projects/default/insights",
        Auth::Session(&member),
        Some(json!({"name": "x", "query": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Nobody changes their own role, nor an instance administrator's, nor to a role that is not one.
    for email in ["admin@t.test", "owner@t.test"] {
        let path = format!("/api/projects/default/members/{email}");
        let (status, _, _) = call(&app, "PUT", &path, Auth::Session(&admin), Some(json!({"role": "viewer"}))).await;
        assert_eq!(status, StatusCode::CONFLICT, "{email}");
    }
    let (status, body, _) = call(&app, "PUT", path, Auth::Session(&admin), Some(json!({"role": "owner"}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"].as_str().unwrap_or_default().contains("role"), "{body}");

    // Removed from their only project, the member is signed out.
    let (status, _, _) = call(&app, "DELETE", path, Auth::Session(&admin), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(&app, "GET", "/api/projects", Auth::Session(&member), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (_, log, _) = call(&app, "GET", "/api/projects/default/audit", Auth::Session(&admin), None).await;
    let actions: Vec<String> = log["results"]
        .as_array()
        .expect("log")
        .iter()
        .map(|e| {
            format!(
                "{} {} {}",
                e["actor"].as_str().unwrap_or_default(),
                e["action"].as_str().unwrap_or_default(),
                e["target"].as_str().unwrap_or_default()
            )
        })
        .collect();
    for expected in [
        "user:owner@t.test member.invite viewer@t.test",
        "user:viewer@t.test member.join viewer@t.test",
        "user:admin@t.test settings.general default",
        "user:admin@t.test key.create k-admin",
        "user:admin@t.test person.erase nobody",
        "user:admin@t.test member.role member@t.test",
        "user:admin@t.test member.remove member@t.test",
    ] {
        assert!(actions.iter().any(|a| a == expected), "audit log has '{expected}': {actions:#?}");
    }
    assert_eq!(actions[0], "user:admin@t.test member.remove member@t.test", "newest first");
}

#[tokio::test]
async fn secret_keys_have_scopes_expire_and_are_revoked() {
    let app = common::app().await;
    let mut secrets = std::collections::HashMap::new();
    for scope in ["read", "query", "admin"] {
        let (status, body, _) = call(
            &app,
            "POST",
            "/api/projects/default/keys",
            Auth::Key(SECRET),
            Some(json!({"name": format!("{scope} key"), "scope": scope})),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(body.get("hash").is_none());
        secrets.insert(scope, body["secret"].as_str().expect("secret shown once").to_string());
    }
    let (_, listing, _) = call(&app, "GET", "/api/projects/default/keys", Auth::Key(SECRET), None).await;
    let text = listing.to_string();
    assert!(secrets.values().all(|s| !text.contains(s.as_str())), "secrets are never listed");
    assert_eq!(listing["secret"].as_array().map(Vec::len), Some(4), "default + 3: {listing}");
    assert!(listing["secret"].as_array().expect("keys").iter().all(|k| k.get("hash").is_none()));

    let trend = json!({"kind": "trends", "series": [{"event": "x"}], "date_range": {"from": "-7d"}});
    let cases = [
        ("read", "GET", "/api/projects/default/persons", None, true),
        ("read", "POST", "/api/projects/default/query", Some(trend.clone()), false),
        ("query", "POST", "/api/projects/default/query", Some(trend.clone()), true),
        ("query", "POST", "/api/projects/default/insights", Some(json!({"name": "n", "query": trend})), false),
        ("query", "PUT", "/api/projects/default/settings/general", Some(json!({"timezone": "UTC"})), false),
        ("admin", "PUT", "/api/projects/default/settings/general", Some(json!({"timezone": "UTC"})), true),
        ("admin", "GET", "/api/projects/default/audit", None, true),
    ];
    for (scope, method, path, body, allowed) in cases {
        let (status, answer, _) = call(&app, method, path, Auth::Key(&secrets[scope]), body).await;
        if allowed {
            assert!(status.is_success(), "{scope} key may {method} {path}: {status} {answer}");
        } else {
            assert_eq!(status, StatusCode::FORBIDDEN, "{scope} key may not {method} {path}: {answer}");
        }
    }
    // A key opens its own project only.
    let (status, _, _) = call(&app, "GET", "/api/projects/other/persons", Auth::Key(&secrets["admin"]), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Bad requests name the problem.
    for (body, field) in [
        (json!({"name": "x", "scope": "root"}), "scope"),
        (json!({"name": "", "scope": "read"}), "name"),
        (json!({"name": "y", "scope": "read", "expires_in_days": 0}), "expires_in_days"),
        (json!({"name": "read key", "scope": "read"}), "read key"),
    ] {
        let (status, answer, _) = call(&app, "POST", "/api/projects/default/keys", Auth::Key(SECRET), Some(body)).await;
        assert!(status.is_client_error(), "{answer}");
        assert!(answer["error"].as_str().unwrap_or_default().contains(field), "{answer} names {field}");
    }

    // Revoked: refused at once.
    let (status, _, _) = call(&app, "DELETE", "/api/projects/default/keys/read%20key", Auth::Key(SECRET), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(&app, "GET", "/api/projects/default/persons", Auth::Key(&secrets["read"]), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Expiring: works until its time, refused after.
    let expires_at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let (_, body, _) = call(
        &app,
        "POST",
        "/api/projects/default/keys",
        Auth::Key(SECRET),
        Some(json!({"name": "short", "scope": "read", "expires_at": expires_at})),
    )
    .await;
    let short = body["secret"].as_str().expect("secret").to_string();
    let (status, _, _) = call(&app, "GET", "/api/projects/default/persons", Auth::Key(&short), None).await;
    assert_eq!(status, StatusCode::OK);
    tokio::time::sleep(std::time::Duration::from_millis(1700)).await;
    let (status, body, _) = call(&app, "GET", "/api/projects/default/persons", Auth::Key(&short), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["error"].as_str().unwrap_or_default().contains("expired"));

    // The default key revoked too: the project is opened by the named keys alone.
    let (status, _, _) =
        call(&app, "DELETE", "/api/projects/default/keys/default", Auth::Key(&secrets["admin"]), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(&app, "GET", "/api/projects/default/persons", Auth::Key(SECRET), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (_, log, _) =
        call(&app, "GET", "/api/projects/default/audit?limit=2", Auth::Key(&secrets["admin"]), None).await;
    let first = &log["results"][0];
    assert_eq!(
        (first["actor"].as_str(), first["action"].as_str(), first["target"].as_str()),
        (Some("key:admin key"), Some("key.revoke"), Some("default"))
    );
    let before = log["next_before"].as_str().expect("more pages").to_string();
    let (_, older, _) = call(
        &app,
        "GET",
        &format!("/api/projects/default/audit?limit=500&before={before}"),
        Auth::Key(&secrets["admin"]),
        None,
    )
    .await;
    let total = older["results"].as_array().map_or(0, Vec::len) + 2;
    assert_eq!(total, 1 /* settings */ + 4 /* creates */ + 2 /* revokes */, "{older}");
    let (status, _, _) =
        call(&app, "GET", "/api/projects/default/audit?limit=0", Auth::Key(&secrets["admin"]), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn ingest_with(app: &App, key: &str, id: &str) -> StatusCode {
    let body = json!({"event_name": "Rotated", "user_id": "u", "event_id": id}).to_string();
    app.post_raw("/api/events", key, body.into_bytes(), None).await.status
}

#[tokio::test]
async fn the_ingestion_key_rotates_with_an_overlap_then_the_old_key_is_refused() {
    let app = common::app().await;
    let (status, rotation, _) = call(
        &app,
        "POST",
        "/api/projects/default/ingestion-keys/rotate",
        Auth::Key(SECRET),
        Some(json!({"overlap_hours": 0.0005})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{rotation}");
    let new_key = rotation["key"].as_str().expect("new key").to_string();
    assert_eq!(rotation["retiring"], json!([SITE]));
    // During the overlap (1.8 s) both keys write.
    assert_eq!(ingest_with(&app, SITE, "old-1").await, StatusCode::OK);
    assert_eq!(ingest_with(&app, &new_key, "new-1").await, StatusCode::OK);
    let (_, projects, _) = call(&app, "GET", "/api/projects", Auth::Key(SECRET), None).await;
    assert_eq!(projects["results"][0]["ingestion_key"].as_str(), Some(new_key.as_str()), "the current key is listed");
    tokio::time::sleep(std::time::Duration::from_millis(2000)).await;
    assert_eq!(
        ingest_with(&app, SITE, "old-2").await,
        StatusCode::UNAUTHORIZED,
        "the old key is refused after the overlap"
    );
    assert_eq!(ingest_with(&app, &new_key, "new-2").await, StatusCode::OK);
    let (_, events, _) = call(&app, "GET", "/api/projects/default/events?limit=10", Auth::Key(SECRET), None).await;
    let mut ids: Vec<_> =
        events["results"].as_array().expect("events").iter().filter_map(|e| e["uuid"].as_str()).collect();
    ids.sort();
    assert_eq!(ids, ["new-1", "new-2", "old-1"]);

    // A second rotation with a long overlap; the retiring key can be ended early.
    let (_, second, _) =
        call(&app, "POST", "/api/projects/default/ingestion-keys/rotate", Auth::Key(SECRET), None).await;
    let newest = second["key"].as_str().expect("key").to_string();
    assert_eq!(ingest_with(&app, &new_key, "mid-1").await, StatusCode::OK, "the default overlap is a week");
    let (status, _, _) =
        call(&app, "DELETE", &format!("/api/projects/default/ingestion-keys/{new_key}"), Auth::Key(SECRET), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(ingest_with(&app, &new_key, "mid-2").await, StatusCode::UNAUTHORIZED);
    assert_eq!(ingest_with(&app, &newest, "newest").await, StatusCode::OK);
    let (status, body, _) =
        call(&app, "DELETE", &format!("/api/projects/default/ingestion-keys/{newest}"), Auth::Key(SECRET), None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the current key is rotated, not retired: {body}");
    let (status, _, _) = call(
        &app,
        "POST",
        "/api/projects/default/ingestion-keys/rotate",
        Auth::Key(SECRET),
        Some(json!({"overlap_hours": -1})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (_, log, _) = call(&app, "GET", "/api/projects/default/audit", Auth::Key(SECRET), None).await;
    let rotations =
        log["results"].as_array().expect("log").iter().filter(|e| e["action"] == "ingestion_key.rotate").count();
    assert_eq!(rotations, 2);
}

#[tokio::test]
async fn sessions_are_listed_revoked_and_purged_when_expired() {
    let app = common::app().await;
    let first = owner(&app).await;
    let (_, body, cookie) = call(
        &app,
        "POST",
        "/api/login",
        Auth::None,
        Some(json!({"email": "owner@t.test", "password": "owner-password"})),
    )
    .await;
    let second = session_of(&body, &cookie);
    let (status, list, _) = call(&app, "GET", "/api/sessions", Auth::Session(&first), None).await;
    assert_eq!(status, StatusCode::OK);
    let sessions = list["results"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let other = sessions.iter().find(|s| s["current"] == false).expect("the other");
    let (status, _, _) = call(
        &app,
        "DELETE",
        &format!("/api/sessions/{}", other["id"].as_str().unwrap_or_default()),
        Auth::Session(&first),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(&app, "GET", "/api/projects", Auth::Session(&second), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a revoked session ends at once");
    let (status, _, _) = call(&app, "GET", "/api/projects", Auth::Session(&first), None).await;
    assert_eq!(status, StatusCode::OK);

    // A password change keeps this session and ends the others; the old password stops working.
    let (_, body, cookie) = call(
        &app,
        "POST",
        "/api/login",
        Auth::None,
        Some(json!({"email": "owner@t.test", "password": "owner-password"})),
    )
    .await;
    let third = session_of(&body, &cookie);
    let change = json!({"current_password": "owner-password", "new_password": "a-new-password"});
    let (status, _, _) = call(&app, "POST", "/api/password", Auth::Session(&first), Some(change)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _, _) = call(&app, "GET", "/api/projects", Auth::Session(&third), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = call(
        &app,
        "POST",
        "/api/login",
        Auth::None,
        Some(json!({"email": "owner@t.test", "password": "owner-password"})),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // An expired session is deleted from the store when the server starts (and every hour).
    let expired = json!({"email": "owner@t.test", "csrf": "c", "expires_at": "2020-01-01T00:00:00Z"});
    app.store
        .put_document(
            INSTANCE,
            Document {
                kind: "session".into(),
                id: "expired-hash".into(),
                body: expired,
                updated_at: chrono::Utc::now(),
            },
        )
        .await
        .expect("put");
    let _restarted = troupe_server::AppState::new(app.store.clone(), Default::default()).await.expect("state");
    let mut left = usize::MAX;
    for _ in 0..100 {
        left = app
            .store
            .documents(INSTANCE, "session")
            .await
            .expect("docs")
            .iter()
            .filter(|d| d.id == "expired-hash")
            .count();
        if left == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(left, 0, "the expired session was purged");
    let (_, log, _) = call(&app, "GET", "/api/audit", Auth::Session(&first), None).await;
    let actions: Vec<_> = log["results"].as_array().expect("log").iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["user.password", "session.revoke", "user.setup"]);
}

#[tokio::test]
async fn group_type_changes_and_erasures_are_audited_with_who_did_them() {
    let app = common::app().await;
    for (user, company) in [("ana", "acme"), ("bo", "globex")] {
        let r = app
            .post("/api/sdk/groups/set_group", json!({"userId": user, "groupKey": "company", "groupId": company}))
            .await;
        assert_eq!(r.status, StatusCode::OK);
    }
    app.post("/api/sdk/groups/set_group", json!({"userId": "ana", "groupKey": "team", "groupId": "core"})).await;
    let (_, body, _) = call(
        &app,
        "POST",
        "/api/projects/default/keys",
        Auth::Key(SECRET),
        Some(json!({"name": "ops", "scope": "admin"})),
    )
    .await;
    let ops = body["secret"].as_str().expect("secret").to_string();
    let steps: [(&str, &str, Option<Value>); 5] = [
        ("PATCH", "/api/projects/default/group-types/company", Some(json!({"display_name": "Companies"}))),
        ("DELETE", "/api/projects/default/groups/company/globex?events=delete", None),
        ("DELETE", "/api/projects/default/group-types/team", None),
        ("POST", "/api/projects/default/persons/bo/anonymize", None),
        ("PUT", "/api/projects/default/settings/ingestion", Some(json!({"segment_group": "add"}))),
    ];
    for (method, path, body) in steps {
        let (status, answer, _) = call(&app, method, path, Auth::Key(&ops), body).await;
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
    }
    let (_, log, _) = call(&app, "GET", "/api/projects/default/audit", Auth::Key(&ops), None).await;
    let entries: Vec<(String, String, String)> = log["results"]
        .as_array()
        .expect("log")
        .iter()
        .map(|e| {
            (
                e["actor"].as_str().unwrap_or_default().into(),
                e["action"].as_str().unwrap_or_default().into(),
                e["target"].as_str().unwrap_or_default().into(),
            )
        })
        .collect();
    let expected: Vec<(String, String, String)> = [
        ("key:ops", "settings.ingestion", "default"),
        ("key:ops", "person.anonymize", "bo"),
        ("key:ops", "group_type.delete", "team"),
        ("key:ops", "group.erase", "company/globex"),
        ("key:ops", "group_type.change", "company"),
        ("key:default", "key.create", "ops"),
    ]
    .iter()
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
    .collect();
    assert_eq!(entries, expected);
    assert_eq!(log["results"][1]["details"], json!({"found": true}));
    assert_eq!(log["results"][3]["details"], json!({"events": "delete"}));
    assert_eq!(log["results"][4]["details"]["display_name"], json!("Companies"));
    // Refused actions leave no entry: a query-scoped key cannot erase.
    let (_, body, _) = call(
        &app,
        "POST",
        "/api/projects/default/keys",
        Auth::Key(SECRET),
        Some(json!({"name": "q", "scope": "query"})),
    )
    .await;
    let query_key = body["secret"].as_str().expect("secret").to_string();
    let (status, _, _) = call(&app, "DELETE", "/api/projects/default/persons/ana", Auth::Key(&query_key), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, log, _) = call(&app, "GET", "/api/projects/default/audit", Auth::Key(&ops), None).await;
    assert_eq!(log["results"][0]["action"], json!("key.create"), "the refused erasure is not logged");
}
