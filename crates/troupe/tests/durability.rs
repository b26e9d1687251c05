//! A 2xx means the data survives `kill -9` of the server (DESIGN.md §11).

mod common;

use common::{get, Server, SITE};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    let client = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        client.post(server.url(path)).header("X-Trodo-Site-Id", SITE).json(&body).send()
    };
    let r = post("/api/sdk/groups/set_group", json!({"userId": "u1", "groupKey": "company", "groupId": "acme"}))
        .await
        .expect("answers");
    assert!(r.status().is_success());
    let mut acknowledged = 0;
    for i in 0..200 {
        let r = post("/api/events", json!({"event_name": "Tick", "user_id": "u1", "event_id": format!("tick-{i}")}))
            .await
            .expect("answers");
        if r.status().is_success() {
            acknowledged += 1;
        }
    }
    assert_eq!(acknowledged, 200);
    server.kill_9();

    let server = Server::start(dir.path(), &[]);
    let events = get(&server, "/api/projects/default/events?limit=1000").await;
    assert_eq!(events["results"].as_array().map(Vec::len), Some(200), "every acknowledged event is there");
    // The state came back too: memberships still stamp, and ids still deduplicate.
    let client = reqwest::Client::new();
    let post = |path: &str, body: serde_json::Value| {
        client.post(server.url(path)).header("X-Trodo-Site-Id", SITE).json(&body).send()
    };
    post("/api/events", json!({"event_name": "Tick", "user_id": "u1", "event_id": "tick-0"})).await.expect("answers");
    post("/api/events", json!({"event_name": "After", "user_id": "u1"})).await.expect("answers");
    let events = get(&server, "/api/projects/default/events?limit=1000").await;
    assert_eq!(events["results"].as_array().map(Vec::len), Some(201), "the retried id was dropped");
    assert_eq!(events["results"][0]["event"], json!("After"));
    assert_eq!(events["results"][0]["groups"], json!({"company": ["acme"]}));
    server.stop();
}
