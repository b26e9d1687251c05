//! The read API over HTTP: authentication, group lists, profiles, persons, events.

mod common;

use axum::http::StatusCode;
use common::{app, SECRET};
use serde_json::{json, Value};

#[tokio::test]
async fn reads_need_the_projects_secret_key() {
    let app = app().await;
    assert_eq!(app.get_as("/api/projects/default/group-types", None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        app.get_as("/api/projects/default/group-types", Some("trs_wrong")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.get_as("/api/projects/default/group-types", Some("trs_other")).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(app.get_as("/api/projects/default/group-types", Some(SECRET)).await.status, StatusCode::OK);
    // An unknown project answers as a wrong key does: names cannot be probed.
    assert_eq!(app.get("/api/projects/nope/group-types").await.status, StatusCode::UNAUTHORIZED);
    let projects = app.get("/api/projects").await;
    assert_eq!(projects.body["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(projects.body["results"][0]["name"], json!("default"));
    assert!(projects.body["results"][0].get("secret_key_hash").is_none(), "hashes are never served");
}

#[tokio::test]
async fn groups_are_listed_by_type_searched_sorted_and_paginated() {
    let app = app().await;
    for (key, name) in [("acme", "Acme Inc"), ("globex", "Globex"), ("initech", "Initech")] {
        app.post(
            "/api/sdk/groups/profile/set",
            json!({"groupKey": "company", "groupId": key, "properties": {"name": name, "tier": key.len()}}),
        )
        .await;
    }
    let page = app.get("/api/projects/default/groups?type=company&sort=key&limit=2").await;
    assert_eq!(page.status, StatusCode::OK);
    assert_eq!(page.body["total"], json!(3));
    let keys: Vec<_> = page.body["results"].as_array().into_iter().flatten().map(|g| g["key"].clone()).collect();
    assert_eq!(keys, vec![json!("acme"), json!("globex")]);
    assert_eq!(page.body["results"][0]["name"], json!("Acme Inc"));
    assert!(page.body["results"][0]["updated_at"].is_string());
    let found = app.get("/api/projects/default/groups?type=company&search=glob").await;
    assert_eq!(found.body["results"][0]["key"], json!("globex"));
    let r = app.get("/api/projects/default/groups").await;
    assert_eq!((r.status, r.body["field"].clone()), (StatusCode::BAD_REQUEST, json!("type")));
    let r = app.get("/api/projects/default/groups?type=company&limit=5000").await;
    assert_eq!((r.status, r.body["field"].clone()), (StatusCode::BAD_REQUEST, json!("limit")));
    let types = app.get("/api/projects/default/group-types").await;
    assert_eq!(
        types.body["results"][0],
        json!({"index": 0, "group_type": "company", "display_name": "company", "group_count": 3})
    );
}

#[tokio::test]
async fn a_group_profile_shows_members_and_recent_events() {
    let app = app().await;
    for user in ["ada", "bob"] {
        app.post("/api/sdk/groups/set_group", json!({"userId": user, "groupKey": "company", "groupId": "acme"})).await;
        app.post("/api/events", json!({"event_name": "Signed In", "user_id": user})).await;
    }
    let g = app.get("/api/projects/default/groups/company/acme?events=10").await;
    assert_eq!(g.status, StatusCode::OK);
    let members: Vec<_> =
        g.body["members"].as_array().into_iter().flatten().map(|m| m["distinct_ids"][0].clone()).collect();
    assert_eq!(members, vec![json!("ada"), json!("bob")]);
    assert_eq!(g.body["recent_events"].as_array().map(Vec::len), Some(2));
    assert_eq!(app.get("/api/projects/default/groups/company/nope").await.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn persons_and_events_can_be_filtered() {
    let app = app().await;
    app.post("/api/sdk/people/set", json!({"userId": "ada", "properties": {"email": "ada@acme.io"}})).await;
    app.post("/api/sdk/groups/set_group", json!({"userId": "ada", "groupKey": "company", "groupId": "acme"})).await;
    app.post("/api/events", json!({"event_name": "A", "user_id": "ada"})).await;
    app.post("/api/events", json!({"event_name": "B", "user_id": "bob"})).await;
    let persons = app.get("/api/projects/default/persons?search=ACME.IO").await;
    assert_eq!(persons.body["total"], json!(1));
    assert_eq!(persons.body["results"][0]["group_memberships"], json!({"company": ["acme"]}));
    let person = app.get("/api/projects/default/persons/ada").await;
    assert_eq!(person.body["properties"]["email"], json!("ada@acme.io"));
    assert_eq!(person.body["recent_events"][0]["event"], json!("A"));
    let by_name = app.get("/api/projects/default/events?event=B").await;
    assert_eq!(by_name.body["results"].as_array().map(Vec::len), Some(1));
    let by_group = app.get("/api/projects/default/events?group_type=company&group_key=acme").await;
    assert_eq!(by_group.body["results"][0]["event"], json!("A"));
    let r = app.get("/api/projects/default/events?group_type=company").await;
    assert_eq!((r.status, r.body["field"].clone()), (StatusCode::BAD_REQUEST, json!("group_key")));
    let r = app.get("/api/projects/default/events?before=yesterday").await;
    assert_eq!((r.status, r.body["code"].clone()), (StatusCode::BAD_REQUEST, json!("invalid_query")));
}

/// Group types are renamed (key and display name) and deleted through the API: a renamed type
/// keeps its events' attribution, a deleted one frees its slot for a new type that inherits
/// nothing, and the limit error says how to make room.
#[tokio::test]
async fn group_types_are_renamed_and_deleted() {
    use axum::body::Body;
    use axum::http::Request;
    let limits = troupe_core::Limits { max_group_types: 2, ..troupe_core::Limits::default() };
    let config = troupe_duckdb::EmbeddedConfig { limits: limits.clone(), ..troupe_duckdb::EmbeddedConfig::default() };
    let settings = troupe_server::ServerSettings { limits, ..troupe_server::ServerSettings::default() };
    let app = common::app_on(config, settings).await;
    let send = |method: &str, path: &str, body: Option<serde_json::Value>| {
        Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {SECRET}"))
            .header("content-type", "application/json")
            .body(body.map(|b| Body::from(b.to_string())).unwrap_or_else(Body::empty))
            .expect("request")
    };
    app.post("/api/sdk/groups/set_group", json!({"userId": "u1", "groupKey": "org", "groupId": "acme"})).await;
    app.post("/api/sdk/groups/set_group", json!({"userId": "u1", "groupKey": "team", "groupId": "t1"})).await;
    app.post("/api/events", json!({"event_name": "Signed In", "user_id": "u1"})).await;
    let r = app.post("/api/sdk/groups/set_group", json!({"userId": "u1", "groupKey": "region", "groupId": "eu"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    let message = r.body["error"].as_str().unwrap_or_default();
    assert!(message.contains("DELETE /api/projects/<project>/group-types/<type>"), "{message}");

    let r = app.send(send("PATCH", "/api/projects/default/group-types/org", Some(json!({"name": "company"})))).await;
    assert_eq!(
        (r.status, r.body["group_type"].clone(), r.body["index"].clone()),
        (StatusCode::OK, json!("company"), json!(0))
    );
    let events = app.get("/api/projects/default/events").await;
    assert_eq!(events.body["results"][0]["groups"]["company"], json!(["acme"]), "attribution follows the rename");
    let r = app.send(send("PATCH", "/api/projects/default/group-types/company", Some(json!({"name": "team"})))).await;
    assert_eq!((r.status, r.body["field"].clone()), (StatusCode::BAD_REQUEST, json!("name")), "taken");
    let r = app.send(send("PATCH", "/api/projects/default/group-types/nope", Some(json!({"name": "x"})))).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app.send(send("PATCH", "/api/projects/default/group-types/team", Some(json!({"nmae": "x"})))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "an unknown field is named: {:?}", r.body);

    let r = app.send(send("DELETE", "/api/projects/default/group-types/company", None)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.send(send("DELETE", "/api/projects/default/group-types/company", None)).await.status,
        StatusCode::NOT_FOUND
    );
    let r = app.post("/api/sdk/groups/set_group", json!({"userId": "u1", "groupKey": "region", "groupId": "eu"})).await;
    assert_eq!(r.status, StatusCode::OK, "the freed slot takes a new type: {:?}", r.body);
    let types = app.get("/api/projects/default/group-types").await;
    let names: Vec<_> = types.body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| (t["index"].clone(), t["group_type"].clone()))
        .collect();
    assert_eq!(names, vec![(json!(0), json!("region")), (json!(1), json!("team"))]);
    let events = app.get("/api/projects/default/events").await;
    assert_eq!(
        events.body["results"][0]["groups"],
        json!({"team": ["t1"]}),
        "nothing of the old type leaks into the new one"
    );
    assert_eq!(app.get("/api/projects/default/groups/company/acme").await.status, StatusCode::NOT_FOUND);
}

/// A question with a field troupe does not have is refused with the field's path, not answered
/// as a different question; a saved insight is checked the same way.
#[tokio::test]
async fn a_question_with_an_unknown_field_is_a_400_naming_it() {
    use axum::body::Body;
    use axum::http::Request;
    let app = common::app().await;
    let post = |path: &str, body: serde_json::Value| {
        Request::post(path)
            .header("authorization", format!("Bearer {SECRET}"))
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .expect("request")
    };
    let cases = [
        (
            json!({"kind": "trends", "series": [{"event": "a"}], "cohortng": {"type": "static", "ids": ["u1"]}}),
            "cohortng",
        ),
        (json!({"kind": "trends", "series": [{"event": "a", "math": "unique", "viz": "bar"}]}), "series[0].viz"),
        (
            json!({"kind": "retention", "start": {"event": "a"}, "return": {"event": "b"}, "cumulatve": true}),
            "cumulatve",
        ),
    ];
    for (question, field) in cases {
        let r = app.send(post("/api/projects/default/query", question.clone())).await;
        assert_eq!(
            (r.status, r.body["field"].clone()),
            (StatusCode::BAD_REQUEST, json!(field)),
            "{question}: {:?}",
            r.body
        );
    }
    let saved = json!({"name": "x", "query": {"kind": "trends", "series": [{"event": "a"}], "intervall": "day"}});
    let r = app.send(post("/api/projects/default/insights", saved)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(r.body["error"].as_str().unwrap_or_default().contains("intervall"), "{:?}", r.body);
    let fine = json!({"kind": "trends", "series": [{"event": "a", "math": "unique"}], "interval": "day"});
    assert_eq!(app.send(post("/api/projects/default/query", fine)).await.status, StatusCode::OK);
}

/// A saved cohort shows its size, and its members are listed a page at a time.
#[tokio::test]
async fn cohort_members_are_listed_with_sizes() {
    use axum::body::Body;
    use axum::http::Request;
    let app = common::app().await;
    for (user, plan) in [("ann", "pro"), ("bob", "free"), ("cat", "pro"), ("dan", "pro")] {
        let r = app.post("/api/sdk/people/set", json!({"userId": user, "properties": {"plan": plan}})).await;
        assert!(r.status.is_success(), "{:?}", r.body);
    }
    let cohort = json!({"id": "pro", "name": "Pro", "type": "dynamic",
                        "criteria": [{"type": "property", "key": "plan", "value": "pro"}]});
    let created = app
        .send(
            Request::post("/api/projects/default/cohorts")
                .header("authorization", format!("Bearer {SECRET}"))
                .header("content-type", "application/json")
                .body(Body::from(cohort.to_string()))
                .expect("request"),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(app.get("/api/projects/default/cohorts/pro").await.body["size"], json!(3));
    assert_eq!(app.get("/api/projects/default/cohorts").await.body["results"][0]["size"], json!(3));
    let page = app.get("/api/projects/default/cohorts/pro/members?limit=2&offset=1").await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    assert_eq!((page.body["total"].clone(), page.body["count_by"].clone()), (json!(3), json!("users")));
    let listed = page.body["results"].as_array().map(Vec::len);
    assert_eq!(listed, Some(2));
    let all = app.get("/api/projects/default/cohorts/pro/members").await;
    let mut ids: Vec<String> = all.body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|a| a["distinct_ids"].as_array().cloned().unwrap_or_default())
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect();
    ids.sort();
    assert_eq!(ids, ["ann", "cat", "dan"]);
    assert_eq!(app.get("/api/projects/default/cohorts/nope/members").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/projects/default/cohorts/pro/members?limit=0").await.status, StatusCode::BAD_REQUEST);
    assert_eq!(app.get_as("/api/projects/default/cohorts/pro/members", None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn account_views_count_activity_members_by_last_seen_and_related_groups() {
    let app = app().await;
    let now = chrono::Utc::now();
    let at = |hours_ago: i64| (now - chrono::Duration::hours(hours_ago)).to_rfc3339();
    app.post(
        "/api/sdk/groups/profile/set",
        json!({"groupKey": "company", "groupId": "acme", "properties": {"name": "Acme"}}),
    )
    .await;
    for (team, company) in [("acme-eng", "acme"), ("acme-ops", "acme"), ("globex-eng", "globex")] {
        app.post(
            "/api/sdk/groups/profile/set",
            json!({"groupKey": "team", "groupId": team, "properties": {"company": company}}),
        )
        .await;
    }
    for user in ["ada", "bob", "cy"] {
        app.post("/api/sdk/groups/set_group", json!({"userId": user, "groupKey": "company", "groupId": "acme"})).await;
    }
    // ada: 3 events, the latest 1 hour ago; bob: 1 event 5 hours ago; cy: none.
    for (n, (user, name, hours)) in
        [("ada", "Signed In", 30), ("ada", "Chart Created", 20), ("ada", "Chart Created", 1), ("bob", "Signed In", 5)]
            .into_iter()
            .enumerate()
    {
        let event = json!({"event_name": name, "user_id": user, "event_id": format!("e{n}"), "timestamp": at(hours)});
        assert_eq!(app.post("/api/events", event).await.status, StatusCode::OK);
    }

    let activity = app.get("/api/projects/default/groups/company/acme/activity").await;
    assert_eq!(activity.status, StatusCode::OK, "{}", activity.body);
    assert_eq!(activity.body["events"], json!(4));
    assert_eq!(activity.body["active_members"], json!(2));
    assert_eq!(activity.body["member_count"], json!(3));
    assert_eq!(activity.body["days"], json!(30));
    assert_eq!(
        activity.body["top_events"],
        json!([{"event": "Chart Created", "count": 2}, {"event": "Signed In", "count": 2}])
    );
    let last_seen = activity.body["last_seen"].as_str().unwrap_or_default();
    assert!(last_seen.starts_with(&at(1)[..16]), "{last_seen} vs {}", at(1));
    let children: Vec<&Value> = activity.body["related"].as_array().into_iter().flatten().collect();
    let keys: Vec<(&str, &str)> =
        children.iter().map(|r| (r["relation"].as_str().unwrap_or(""), r["key"].as_str().unwrap_or(""))).collect();
    assert_eq!(keys, vec![("child", "acme-eng"), ("child", "acme-ops")], "globex's team is not acme's");
    let team = app.get("/api/projects/default/groups/team/acme-eng/activity").await;
    assert_eq!(
        team.body["related"],
        json!([{"relation": "parent", "group_type": "company", "key": "acme", "name": "Acme"}])
    );

    // Members most recently seen first; one never seen last.
    let members = app.get("/api/projects/default/groups/company/acme/members?limit=2").await;
    assert_eq!(members.body["total"], json!(3));
    let first_ids: Vec<&str> = members.body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["distinct_ids"][0].as_str())
        .collect();
    assert_eq!(first_ids, vec!["ada", "bob"]);
    assert_eq!(members.body["results"][0]["events"], json!(3));
    let rest = app.get("/api/projects/default/groups/company/acme/members?limit=2&offset=2").await;
    assert_eq!(rest.body["results"][0]["distinct_ids"], json!(["cy"]));
    assert_eq!(rest.body["results"][0]["last_seen"], Value::Null);

    // Lists with activity per row.
    let groups = app.get("/api/projects/default/groups?type=company&activity=true").await;
    assert_eq!(groups.body["results"][0]["member_count"], json!(3));
    assert_eq!(groups.body["results"][0]["events"], json!(4));
    assert!(groups.body["results"][0]["last_seen"].is_string());
    let persons = app.get("/api/projects/default/persons?activity=true&search=bob").await;
    assert_eq!(persons.body["results"][0]["events"], json!(1));

    for path in [
        "/api/projects/default/groups/company/acme/activity?days=0",
        "/api/projects/default/groups/company/acme/members?days=9999",
        "/api/projects/default/groups?type=company&activity=true&days=400",
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert!(r.body["error"].as_str().unwrap_or_default().contains("days"), "{path}: {}", r.body);
    }
    assert_eq!(app.get("/api/projects/default/groups/company/nope/activity").await.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get("/api/projects/default/groups/company/nope/members").await.status, StatusCode::NOT_FOUND);
}
