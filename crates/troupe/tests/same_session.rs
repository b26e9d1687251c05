//! One B2B session — three users at two companies, a team, profiles and six events — sent through
//! each of troupe's SDKs and through the real trodo-python client, each into a troupe of its own:
//! every insight answers the same. (Issue 28's closing check.)

mod common;

use std::time::Duration;

use common::{browser_flow_with, post_query, run_flow, sdk_site, Server, SITE};
use serde_json::{json, Value};
use troupe_sdk::{Client, Config};

/// The session through troupe-sdk (same_session_trodo.py and same_session.cjs send the same).
async fn through_rust_sdk(base: &str) {
    let troupe = Client::new(Config::new(base, SITE).flush_interval(Duration::from_millis(50)));
    for (user, company) in [("ada", "acme"), ("bob", "acme"), ("cy", "globex")] {
        let u = troupe.for_user(user);
        u.set_group("company", [company]).expect("queued");
        u.people().set(json!({"role": if user == "ada" { "admin" } else { "member" }})).expect("queued");
    }
    troupe.for_user("ada").add_group("team", "acme-eng").expect("queued");
    troupe.get_group("company", "acme").set(json!({"plan": "pro"})).expect("queued");
    troupe.get_group("company", "globex").set(json!({"plan": "free"})).expect("queued");
    for (user, event, props) in [
        ("ada", "Signed In", json!({"method": "sso"})),
        ("ada", "Report Exported", json!({"format": "pdf"})),
        ("ada", "Report Exported", json!({"format": "csv"})),
        ("bob", "Signed In", json!({"method": "password"})),
        ("cy", "Signed In", json!({"method": "google"})),
        ("cy", "Chart Created", json!({"chart_type": "line"})),
    ] {
        troupe.for_user(user).track(event, props).expect("queued");
    }
    troupe.shutdown().await;
}

/// The questions, and the part of each answer that must agree (times of sending differ by
/// seconds, so whole-range values rather than per-bucket series).
fn questions() -> Vec<(&'static str, Value)> {
    vec![
        (
            "unique users signing in",
            json!({"kind": "trends", "date_range": {"from": "-1d"}, "series": [{"event": "Signed In", "math": "unique"}]}),
        ),
        (
            "companies signing in, by plan",
            json!({"kind": "trends", "date_range": {"from": "-1d"}, "count_by": {"group_type": "company"},
            "series": [{"event": "Signed In", "math": "unique"}], "breakdown": {"type": "group", "group_type": "company", "key": "plan"}}),
        ),
        (
            "reports by team",
            json!({"kind": "trends", "date_range": {"from": "-1d"}, "count_by": {"group_type": "team"},
            "series": [{"event": "Report Exported", "math": "total"}, {"event": "Report Exported", "math": "unique"}]}),
        ),
        (
            "users by role",
            json!({"kind": "trends", "date_range": {"from": "-1d"}, "series": [{"math": "unique"}],
            "breakdown": {"type": "person", "key": "role"}}),
        ),
        (
            "companies from sign-in to report",
            json!({"kind": "funnel", "date_range": {"from": "-1d"}, "count_by": {"group_type": "company"},
            "steps": [{"event": "Signed In"}, {"event": "Report Exported"}], "window": {"value": 1, "unit": "day"}}),
        ),
    ]
}

fn essence(answer: &Value) -> Value {
    match answer["kind"].as_str() {
        Some("funnel") => {
            json!(answer["steps"].as_array().into_iter().flatten().map(|s| s["count"].clone()).collect::<Vec<_>>())
        }
        _ => {
            let mut lines: Vec<Value> = answer["series"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|l| json!([l["label"], l["breakdown_value"], l["aggregated_value"]]))
                .collect();
            lines.sort_by_key(|l| l.to_string());
            json!(lines)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_through_every_sdk_answers_every_insight_the_same() {
    let dirs: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().expect("temp dir")).collect();
    let trodo = Server::start(dirs[0].path(), &[]);
    let rust = Server::start(dirs[1].path(), &[]);
    let browser = Server::start(dirs[2].path(), &[]);

    run_flow("same_session_trodo.py", &[&trodo.base, SITE]).await;
    through_rust_sdk(&rust.base).await;
    let (site, site_task) = sdk_site(&browser.base).await;
    let seen = browser_flow_with("same_session.cjs", &[&site]).await;
    assert_eq!(seen["left_queued"], json!([0, 0, 0]), "every browser sent everything");

    for (name, question) in questions() {
        let expected = essence(&post_query(&trodo, question.clone()).await);
        let by_rust = essence(&post_query(&rust, question.clone()).await);
        let by_browser = essence(&post_query(&browser, question.clone()).await);
        println!("{name}: trodo-python {expected} · troupe-sdk {by_rust} · browser {by_browser}");
        assert_ne!(expected, json!([]), "{name}: the session answers something");
        assert_eq!(by_rust, expected, "{name}: troupe-sdk vs trodo-python");
        assert_eq!(by_browser, expected, "{name}: the browser SDK vs trodo-python");
    }
    site_task.abort();
    for server in [trodo, rust, browser] {
        server.stop();
    }
}
