//! Privacy over HTTP: erasing a person through the read API and Trodo's `/api/sdk/gdpr/delete`,
//! exporting one (streamed, every event once), the privacy settings and policy.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{Duration, TimeZone, Utc};
use common::{app, App, Reply, SECRET, SITE};
use serde_json::{json, Value};
use troupe_core::{Command, TrackEvent};

async fn with_secret(app: &App, method: &str, path: &str, body: Option<Value>) -> Reply {
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {SECRET}"))
        .header("content-type", "application/json");
    let body = body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty);
    app.send(request.body(body).expect("request")).await
}

/// `anon-1` identified as `ann`, with an email, a company, two events; `bob` beside her; a static
/// cohort naming ann.
async fn ann_and_bob(app: &App) {
    app.post("/api/sdk/track", json!({"sessionData": {"user_id": "anon-1", "distinct_id": "anon-1"}})).await;
    app.post("/api/events", json!({"event_name": "Visited", "user_id": "anon-1"})).await;
    let r =
        app.post("/api/sdk/identify", json!({"userId": "anon-1", "distinctId": "anon-1", "identifyId": "ann"})).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    app.post("/api/sdk/people/set", json!({"userId": "ann", "properties": {"email": "ann@example.com"}})).await;
    app.post("/api/sdk/groups/set_group", json!({"userId": "ann", "groupKey": "company", "groupId": "acme"})).await;
    app.post("/api/events", json!({"event_name": "Report Exported", "user_id": "ann"})).await;
    app.post("/api/events", json!({"event_name": "Report Exported", "user_id": "bob"})).await;
    let cohort = json!({"name": "vip", "type": "static", "ids": ["ann", "bob"]});
    let r = with_secret(app, "POST", "/api/projects/default/cohorts", Some(cohort)).await;
    assert!(r.status.is_success(), "{:?}", r.body);
}

fn distinct_ids_of_events(reply: &Reply) -> Vec<String> {
    let events = reply.body["results"].as_array().cloned().unwrap_or_default();
    events.iter().filter_map(|e| e["distinct_id"].as_str().map(String::from)).collect()
}

#[tokio::test]
async fn a_person_is_erased_with_the_secret_key_and_a_retry_is_harmless() {
    let app = app().await;
    ann_and_bob(&app).await;
    let r = with_secret(&app, "DELETE", "/api/projects/default/persons/anon-1", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!((r.body["found"].clone(), r.body["documents_changed"].clone()), (json!(true), json!(1)));
    let mut ids: Vec<String> = serde_json::from_value(r.body["distinct_ids"].clone()).expect("ids");
    ids.sort();
    assert_eq!(ids, ["ann", "anon-1"]);

    assert_eq!(app.get("/api/projects/default/persons/ann").await.status, StatusCode::NOT_FOUND);
    assert_eq!(distinct_ids_of_events(&app.get("/api/projects/default/events").await), ["bob"]);
    let cohorts = app.get("/api/projects/default/cohorts").await;
    assert_eq!(cohorts.body["results"][0]["ids"], json!(["bob"]), "{:?}", cohorts.body);
    let acme = app.get("/api/projects/default/groups/company/acme").await;
    assert_eq!(acme.body["members"], json!([]));

    let again = with_secret(&app, "DELETE", "/api/projects/default/persons/ann", None).await;
    assert_eq!((again.status, again.body["found"].clone()), (StatusCode::OK, json!(false)));
    assert_eq!(distinct_ids_of_events(&app.get("/api/projects/default/events").await), ["bob"]);

    let request = Request::delete("/api/projects/default/persons/bob").body(Body::empty()).expect("request");
    assert_eq!(app.send(request).await.status, StatusCode::UNAUTHORIZED, "no key, no erasure");
    let request = Request::delete("/api/projects/default/persons/bob")
        .header("authorization", "Bearer trs_other")
        .body(Body::empty())
        .expect("request");
    assert_eq!(app.send(request).await.status, StatusCode::UNAUTHORIZED, "another project's key");
    assert_eq!(app.get("/api/projects/default/persons/bob").await.status, StatusCode::OK);
}

#[tokio::test]
async fn trodo_gdpr_routes_follow_the_projects_privacy_settings() {
    let app = app().await;
    ann_and_bob(&app).await;
    let policy = app.get_as("/api/sdk/privacy/policy", None).await;
    assert_eq!(policy.status, StatusCode::UNAUTHORIZED, "the policy needs the site id");
    let request = Request::get("/api/sdk/privacy/policy").header("x-trodo-site-id", SITE);
    let policy = app.send(request.body(Body::empty()).expect("request")).await;
    assert_eq!(policy.body["policy"], json!({"text": null, "url": null}));

    let settings = json!({"ingestion_key_may": ["export"], "policy_text": "We keep events 13 months.",
                          "policy_url": "https://example.com/privacy", "personal_fields": ["email"],
                          "event_retention_days": 400, "recreate_erased": true});
    let r = with_secret(&app, "PUT", "/api/projects/default/settings/privacy", Some(settings.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(app.get("/api/projects/default/settings/privacy").await.body, settings);
    let request = Request::get("/api/sdk/privacy/policy").header("x-trodo-site-id", SITE);
    let policy = app.send(request.body(Body::empty()).expect("request")).await;
    assert_eq!(policy.body["policy"]["url"], json!("https://example.com/privacy"));

    let r = app.post("/api/sdk/gdpr/delete", json!({"siteId": SITE, "userId": "ann"})).await;
    assert_eq!((r.status, r.body["code"].clone()), (StatusCode::FORBIDDEN, json!("forbidden")), "{:?}", r.body);
    assert_eq!(app.get("/api/projects/default/persons/ann").await.status, StatusCode::OK, "nothing erased");
    let export = app.post("/api/sdk/gdpr/export", json!({"siteId": SITE, "userId": "ann"})).await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.body["person"]["properties"]["email"], json!("ann@example.com"));

    let r = with_secret(&app, "PUT", "/api/projects/default/settings/privacy", Some(json!({}))).await;
    assert_eq!(r.body["ingestion_key_may"], json!(["delete", "anonymize"]), "the defaults");
    let export = app.post("/api/sdk/gdpr/export", json!({"userId": "ann"})).await;
    assert_eq!(export.status, StatusCode::FORBIDDEN, "the public site id reads nobody's data by default");
    let r = app.post("/api/sdk/gdpr/delete", json!({"userId": "ann"})).await;
    assert_eq!((r.status, r.body["found"].clone()), (StatusCode::OK, json!(true)), "{:?}", r.body);
    assert_eq!(app.get("/api/projects/default/persons/anon-1").await.status, StatusCode::NOT_FOUND);
    let r = app.post("/api/sdk/gdpr/delete", json!({})).await;
    assert_eq!((r.status, r.body["field"].clone()), (StatusCode::BAD_REQUEST, json!("userId")));
    let r = app.post_raw("/api/sdk/gdpr/delete", "site_nope", b"{\"userId\": \"bob\"}".to_vec(), None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    for (bad, field) in [
        (json!({"policy_url": "javascript:alert(1)"}), "policy_url"),
        (json!({"ingestion_key_may": ["erase_everything"]}), ""),
        (json!({"polcy_text": "typo"}), ""),
        (json!({"personal_fields": [""]}), "personal_fields"),
    ] {
        let r = with_secret(&app, "PUT", "/api/projects/default/settings/privacy", Some(bad.clone())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {:?}", r.body);
        if !field.is_empty() {
            assert_eq!(r.body["field"], json!(field));
        }
    }
}

#[tokio::test]
async fn an_export_holds_every_event_once_even_when_many_share_a_timestamp() {
    let app = app().await;
    let project = app.store.projects().await.expect("projects").into_iter().find(|p| p.name == "default");
    let project = project.expect("default project").id;
    let base = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().expect("a time");
    // 1,200 events at one instant (more than a page), 1,300 at distinct instants around it, and
    // someone else's.
    let mut commands = Vec::new();
    for i in 0..2500_i64 {
        let at = if i < 1200 { base } else { base + Duration::seconds(i - 1800) };
        commands.push(Command::Track(TrackEvent {
            event: "Tick".into(),
            distinct_id: if i % 2 == 0 { "zed".into() } else { "zed-phone".into() },
            id: Some(format!("tick-{i}")),
            timestamp: Some(at),
            ..TrackEvent::default()
        }));
    }
    commands.push(Command::Alias { distinct_id: "zed".into(), alias: "zed-phone".into() });
    commands.push(Command::Track(TrackEvent {
        event: "Tick".into(),
        distinct_id: "yan".into(),
        ..TrackEvent::default()
    }));
    for r in app.store.apply(project, commands).await.expect("stored") {
        r.expect("valid");
    }
    let export = app.get("/api/projects/default/persons/zed-phone/export").await;
    assert_eq!(export.status, StatusCode::OK);
    let mut ids: Vec<String> = export.body["person"]["distinct_ids"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v.as_str().map(String::from))
        .collect();
    ids.sort();
    assert_eq!(ids, ["zed", "zed-phone"]);
    let events = export.body["events"].as_array().cloned().unwrap_or_default();
    let mut uuids: Vec<&str> = events.iter().filter_map(|e| e["uuid"].as_str()).collect();
    uuids.sort_unstable();
    uuids.dedup();
    assert_eq!((events.len(), uuids.len()), (2500, 2500), "every event once, none of yan's");
    let times: Vec<&str> = events.iter().filter_map(|e| e["timestamp"].as_str()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");
    assert_eq!(app.get("/api/projects/default/persons/nobody/export").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn anonymizing_keeps_events_under_a_pseudonym_without_the_personal_fields() {
    let app = app().await;
    ann_and_bob(&app).await;
    app.post("/api/events", json!({"event_name": "Paid", "user_id": "ann", "custom_properties": {"email": "ann@example.com", "plan": "pro"}}))
        .await;
    let r = with_secret(&app, "POST", "/api/projects/default/persons/ann/anonymize", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let pseudonym = r.body["pseudonym"].as_str().unwrap_or_default().to_string();
    assert!(pseudonym.starts_with("anonymized-") && r.body["documents_changed"] == json!(1), "{:?}", r.body);
    assert_eq!(app.get("/api/projects/default/persons/ann").await.status, StatusCode::NOT_FOUND);
    let person = app.get(&format!("/api/projects/default/persons/{pseudonym}")).await;
    assert_eq!(person.body["properties"], json!({}), "{:?}", person.body);
    let events = app.get("/api/projects/default/events").await;
    let results = events.body["results"].as_array().cloned().unwrap_or_default();
    let of_pseudonym: Vec<&Value> = results.iter().filter(|e| e["distinct_id"] == json!(pseudonym)).collect();
    assert_eq!(of_pseudonym.len(), 3, "every event of both ids stays: {results:?}");
    let paid = of_pseudonym.iter().find(|e| e["event"] == json!("Paid")).expect("the paid event");
    assert_eq!(paid["properties"], json!({"plan": "pro"}));
    let cohorts = app.get("/api/projects/default/cohorts").await;
    assert_eq!(cohorts.body["results"][0]["ids"], json!(["bob"]));

    let r = app.post("/api/sdk/gdpr/anonymize", json!({"userId": "bob"})).await;
    assert_eq!((r.status, r.body["found"].clone()), (StatusCode::OK, json!(true)), "{:?}", r.body);
    let r = app.post("/api/sdk/gdpr/anonymize", json!({"userId": "nobody"})).await;
    assert_eq!((r.status, r.body["found"].clone()), (StatusCode::OK, json!(false)));
}

#[tokio::test]
async fn a_group_is_erased_from_events_attribution_or_with_its_events() {
    let app = app().await;
    for (user, company) in [("ann", "acme"), ("bob", "globex")] {
        app.post("/api/sdk/groups/set_group", json!({"userId": user, "groupKey": "company", "groupId": company})).await;
        app.post("/api/events", json!({"event_name": "Signed In", "user_id": user})).await;
    }
    let r = with_secret(&app, "DELETE", "/api/projects/default/groups/company/acme?events=everything", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = with_secret(&app, "DELETE", "/api/projects/default/groups/company/acme", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let events = app.get("/api/projects/default/events").await;
    let groups: Vec<Value> =
        events.body["results"].as_array().into_iter().flatten().map(|e| e["groups"].clone()).collect();
    assert_eq!(groups, [json!({"company": ["globex"]}), json!({})], "ann's event stays, without acme");
    let r = with_secret(&app, "DELETE", "/api/projects/default/groups/company/globex?events=delete", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(distinct_ids_of_events(&app.get("/api/projects/default/events").await), ["ann"]);
    let r = with_secret(&app, "DELETE", "/api/projects/default/groups/company/globex", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// A project's event retention, set in its privacy settings, is applied by the server's
/// background sweep: older events go, newer ones and other projects' stay.
#[tokio::test]
async fn the_background_sweep_drops_events_past_the_projects_retention() {
    let settings = troupe_server::ServerSettings {
        retention_sweep_every: Some(std::time::Duration::from_millis(200)),
        ..troupe_server::ServerSettings::default()
    };
    let app = common::app_with(settings).await;
    let projects = app.store.projects().await.expect("projects");
    let (default, other) = (projects[0].id, projects[1].id);
    let old = Utc::now() - Duration::days(40);
    let recent = Utc::now() - Duration::days(5);
    for project in [default, other] {
        let commands = [("Old", old), ("Recent", recent)].map(|(name, at)| {
            Command::Track(TrackEvent {
                event: name.into(),
                distinct_id: "u1".into(),
                timestamp: Some(at),
                ..TrackEvent::default()
            })
        });
        for r in app.store.apply(project, commands.to_vec()).await.expect("stored") {
            r.expect("valid");
        }
    }
    let r =
        with_secret(&app, "PUT", "/api/projects/default/settings/privacy", Some(json!({"event_retention_days": 0})))
            .await;
    assert_eq!((r.status, r.body["field"].clone()), (StatusCode::BAD_REQUEST, json!("event_retention_days")));
    let r =
        with_secret(&app, "PUT", "/api/projects/default/settings/privacy", Some(json!({"event_retention_days": 30})))
            .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let names = |reply: Reply| -> Vec<String> {
        reply.body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["event"].as_str().map(String::from))
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while names(app.get("/api/projects/default/events").await) != ["Recent"] {
        assert!(std::time::Instant::now() < deadline, "the sweep never dropped the old event");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let request = Request::get("/api/projects/other/events").header("authorization", "Bearer trs_other");
    let others = app.send(request.body(Body::empty()).expect("request")).await;
    assert_eq!(names(others), ["Recent", "Old"], "a project without retention keeps everything");
}

/// With `recreate_erased: false`, an erased person's ids stay out: a later event under one is
/// answered as a success that stored nothing.
#[tokio::test]
async fn a_project_can_keep_erased_persons_out() {
    let app = app().await;
    ann_and_bob(&app).await;
    let r = with_secret(&app, "PUT", "/api/projects/default/settings/privacy", Some(json!({"recreate_erased": false})))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(with_secret(&app, "DELETE", "/api/projects/default/persons/ann", None).await.status, StatusCode::OK);
    let r = app.post("/api/events", json!({"event_name": "Came Back", "user_id": "anon-1"})).await;
    assert_eq!((r.status, r.body["dropped"].clone()), (StatusCode::OK, json!(true)), "{:?}", r.body);
    assert_eq!(app.get("/api/projects/default/persons/anon-1").await.status, StatusCode::NOT_FOUND);
    assert_eq!(distinct_ids_of_events(&app.get("/api/projects/default/events").await), ["bob"]);
}

#[tokio::test]
async fn a_group_is_exported_with_its_members_and_every_event_attributed_to_it() {
    let app = app().await;
    ann_and_bob(&app).await;
    app.post("/api/sdk/groups/set_group", json!({"userId": "bob", "groupKey": "company", "groupId": "globex"})).await;
    app.post("/api/events", json!({"event_name": "Invited", "user_id": "bob"})).await;
    let export = app.get("/api/projects/default/groups/company/acme/export").await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.body["group"]["key"], json!("acme"));
    let members: Vec<Value> =
        export.body["members"].as_array().into_iter().flatten().map(|m| m["distinct_ids"].clone()).collect();
    assert_eq!(members.len(), 1, "{members:?}");
    let events: Vec<(Value, Value)> = export.body["events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["event"].clone(), e["distinct_id"].clone()))
        .collect();
    assert_eq!(events, [(json!("Report Exported"), json!("ann"))], "only events attributed to acme");
    assert_eq!(app.get("/api/projects/default/groups/company/nope/export").await.status, StatusCode::NOT_FOUND);
}

/// Privacy calls with the public site id count against the id's ingestion rate limit: a flood of
/// erasures of one user is answered 429 with Retry-After before it rewrites stored rows again.
#[tokio::test]
async fn site_id_privacy_calls_are_rate_limited() {
    let mut settings = troupe_server::ServerSettings::default();
    settings.rate_limits.distinct_id = troupe_server::rate_limit::Rate { per_second: 1, burst: 2 };
    let app = common::app_with(settings).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(app.post("/api/sdk/gdpr/delete", json!({"userId": "ann"})).await.status);
    }
    assert_eq!(&statuses[..2], [StatusCode::OK, StatusCode::OK]);
    assert!(statuses[2..].contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
}
