//! The pickers' API: event names, property keys with their kinds and top values, read from the
//! data of each source; bad parameters are 400s naming them; the project's timezone.

mod common;

use axum::http::StatusCode;
use common::{app, App};
use serde_json::{json, Value};

async fn seed(app: &App) {
    for (user, plan, seats) in [("ada", "pro", 5), ("bob", "pro", 3), ("cy", "free", 1)] {
        let r = app
            .post(
                "/api/sdk/people/set",
                json!({"userId": user, "properties": {"plan": plan, "email": format!("{user}@x.io")}}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        app.post("/api/sdk/groups/set_group", json!({"userId": user, "groupKey": "company", "groupId": "acme"})).await;
        for n in 0..seats {
            let properties = json!({"plan": plan, "seats": seats, "beta": true});
            let event = json!({"event_name": "Signed In", "user_id": user, "event_id": format!("{user}-{n}"), "custom_properties": properties});
            assert_eq!(app.post("/api/events", event).await.status, StatusCode::OK);
        }
    }
    app.post(
        "/api/events",
        json!({"event_name": "Project Created", "user_id": "ada", "custom_properties": {"template": "crm"}}),
    )
    .await;
    app.post(
        "/api/sdk/groups/profile/set",
        json!({"groupKey": "company", "groupId": "acme", "properties": {"industry": "Retail", "employees": 40}}),
    )
    .await;
}

fn keys(body: &Value) -> Vec<(String, String)> {
    body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|k| {
            (k["key"].as_str().unwrap_or_default().to_string(), k["type"].as_str().unwrap_or_default().to_string())
        })
        .collect()
}

#[tokio::test]
async fn event_names_come_with_counts_most_frequent_first_and_fuzzy_search() {
    let app = app().await;
    seed(&app).await;
    let names = app.get("/api/projects/default/catalog/events").await;
    assert_eq!(names.status, StatusCode::OK, "{}", names.body);
    let listed: Vec<(Value, Value)> = names.body["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| (n["name"].clone(), n["count"].clone()))
        .collect();
    assert_eq!(listed, vec![(json!("Signed In"), json!(9)), (json!("Project Created"), json!(1))]);
    assert!(names.body["results"][0]["last_seen"].is_string());
    assert_eq!(names.body["window_days"], json!(90));

    // "prj" is not a substring of anything but its letters are in order in "Project Created".
    let found = app.get("/api/projects/default/catalog/events?search=prj").await;
    assert_eq!(found.body["results"].as_array().map(Vec::len), Some(1), "{}", found.body);
    assert_eq!(found.body["results"][0]["name"], json!("Project Created"));
    let none = app.get("/api/projects/default/catalog/events?search=zzz").await;
    assert_eq!(none.body["results"], json!([]));
    let one = app.get("/api/projects/default/catalog/events?limit=1").await;
    assert_eq!(one.body["results"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn properties_of_events_persons_and_groups_carry_their_kinds() {
    let app = app().await;
    seed(&app).await;
    let event = app.get("/api/projects/default/catalog/properties").await;
    assert_eq!(event.status, StatusCode::OK, "{}", event.body);
    let event_keys = keys(&event.body);
    for expected in [("plan", "string"), ("seats", "number"), ("beta", "boolean"), ("template", "string")] {
        assert!(event_keys.contains(&(expected.0.into(), expected.1.into())), "{expected:?} in {event_keys:?}");
    }
    // Narrowed to one event: only its keys.
    let created = app.get("/api/projects/default/catalog/properties?event=Project%20Created").await;
    assert_eq!(keys(&created.body), vec![("template".to_string(), "string".to_string())]);

    let person = app.get("/api/projects/default/catalog/properties?source=person").await;
    let person_keys = keys(&person.body);
    assert!(person_keys.contains(&("email".into(), "string".into())), "{person_keys:?}");
    assert!(!person_keys.iter().any(|(k, _)| k == "seats"), "event keys are not person keys");

    let group = app.get("/api/projects/default/catalog/properties?source=group&group_type=company").await;
    assert_eq!(
        keys(&group.body),
        vec![("employees".to_string(), "number".to_string()), ("industry".to_string(), "string".to_string())]
    );
}

#[tokio::test]
async fn top_values_are_counted_and_searchable() {
    let app = app().await;
    seed(&app).await;
    let plans = app.get("/api/projects/default/catalog/values?key=plan").await;
    assert_eq!(plans.status, StatusCode::OK, "{}", plans.body);
    assert_eq!(
        plans.body["results"],
        json!([{"value": "pro", "count": 8}, {"value": "free", "count": 1}]),
        "ada 5 + bob 3 sign-ins on pro"
    );
    let person_plans = app.get("/api/projects/default/catalog/values?source=person&key=plan").await;
    assert_eq!(person_plans.body["results"], json!([{"value": "pro", "count": 2}, {"value": "free", "count": 1}]));
    let searched = app.get("/api/projects/default/catalog/values?source=person&key=email&search=bob").await;
    assert_eq!(searched.body["results"], json!([{"value": "bob@x.io", "count": 1}]));
    let numbers = app.get("/api/projects/default/catalog/values?key=seats&limit=1").await;
    assert_eq!(numbers.body["results"], json!([{"value": 5, "count": 5}]));
}

#[tokio::test]
async fn bad_parameters_are_400s_naming_them_and_keys_are_needed() {
    let app = app().await;
    seed(&app).await;
    for (path, field) in [
        ("/api/projects/default/catalog/properties?source=cohort", "source"),
        ("/api/projects/default/catalog/properties?source=group", "group_type"),
        ("/api/projects/default/catalog/properties?source=group&group_type=planet", "group_type"),
        ("/api/projects/default/catalog/values?source=person", "key"),
        ("/api/projects/default/catalog/values?key=plan&limit=100000", "limit"),
        ("/api/projects/default/catalog/events?limit=0", "limit"),
    ] {
        let r = app.get(path).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert!(r.body["error"].as_str().unwrap_or_default().contains(field), "{path}: {}", r.body);
    }
    let unknown = app.get("/api/projects/default/catalog/events?colour=red").await;
    assert_eq!(unknown.status, StatusCode::BAD_REQUEST, "{}", unknown.body);
    assert!(unknown.body["error"].as_str().unwrap_or_default().contains("colour"), "{}", unknown.body);
    assert_eq!(app.get_as("/api/projects/default/catalog/events", None).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_erased_persons_values_are_not_offered_after_the_erasure() {
    let app = app().await;
    seed(&app).await;
    let before = app.get("/api/projects/default/catalog/values?source=person&key=email&search=cy").await;
    assert_eq!(before.body["results"], json!([{"value": "cy@x.io", "count": 1}]));
    let erased = app.send(
        axum::http::Request::delete("/api/projects/default/persons/cy")
            .header("authorization", format!("Bearer {}", common::SECRET))
            .body(axum::body::Body::empty())
            .expect("request"),
    );
    assert_eq!(erased.await.status, StatusCode::OK);
    // Within the cache's minute, too.
    let after = app.get("/api/projects/default/catalog/values?source=person&key=email&search=cy").await;
    assert_eq!(after.body["results"], json!([]));
}

#[tokio::test]
async fn the_projects_timezone_cuts_days_unless_a_question_names_its_own() {
    let app = app().await;
    let general = app.get("/api/projects/default/settings/general").await;
    assert_eq!(general.body, json!({"timezone": "UTC"}));
    // 23:30 UTC on 1 March is 08:30 on 2 March in Tokyo.
    let event = json!({"event_name": "Signed In", "user_id": "ada", "timestamp": "2026-03-01T23:30:00Z"});
    assert_eq!(app.post("/api/events", event).await.status, StatusCode::OK);
    let question = json!({"kind": "trends", "date_range": {"from": "2026-03-01", "to": "2026-03-02"}, "series": [{"event": "Signed In"}]});
    assert_eq!(days(&app, question.clone()).await, json!([1.0, 0.0]));

    let bad = app.put("/api/projects/default/settings/general", json!({"timezone": "Mars/Olympus"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body["error"].as_str().unwrap_or_default().contains("timezone"), "{}", bad.body);
    let set = app.put("/api/projects/default/settings/general", json!({"timezone": "Asia/Tokyo"})).await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_eq!(app.get("/api/projects/default/settings/general").await.body, json!({"timezone": "Asia/Tokyo"}));
    assert_eq!(days(&app, question.clone()).await, json!([0.0, 1.0]), "the event is on 2 March in Tokyo");
    let mut own = question.clone();
    own["timezone"] = json!("UTC");
    assert_eq!(days(&app, own).await, json!([1.0, 0.0]), "a question's own timezone wins");
}

async fn days(app: &App, question: Value) -> Value {
    app_query(app, question).await["series"][0]["data"].clone()
}

async fn app_query(app: &App, question: Value) -> Value {
    let r = app
        .send(
            axum::http::Request::post("/api/projects/default/query")
                .header("authorization", format!("Bearer {}", common::SECRET))
                .header("content-type", "application/json")
                .body(axum::body::Body::from(question.to_string()))
                .expect("request"),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}
