//! Roles in the dashboard, in Debian's headless Chromium against a running troupe with demo data
//! (tests/acceptance/roles.cjs): invitations, a secret key and a key rotation made on the
//! settings page, what a viewer and a member are offered and refused, a role change, and the
//! audit log — each checked here against the API. Screenshots in
//! `<target>/tmp/roles-screenshots/`.

mod common;

use common::{browser_flow, get, Server, SITE};
use serde_json::json;

async fn ingest(server: &Server, key: &str) -> u16 {
    reqwest::Client::new()
        .post(server.url("/api/events"))
        .header("x-trodo-site-id", key)
        .json(&json!({"event_name": "Key Check", "user_id": "ops"}))
        .send()
        .await
        .expect("answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_role_sees_and_may_do_what_it_should_in_the_dashboard() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &["--demo"]);
    let (seen, shots) = browser_flow(&server, "roles.cjs", "roles-screenshots").await;
    assert_eq!(seen["page_errors"], json!([]));

    // Invitations listed until accepted.
    let invited: Vec<String> = serde_json::from_value(seen["invited"].clone()).expect("list");
    assert!(invited.iter().any(|r| r.contains("viewer@example.com") && r.contains("viewer (invited)")), "{invited:?}");
    assert!(invited.iter().any(|r| r.contains("member@example.com") && r.contains("member (invited)")), "{invited:?}");

    // The secret key shown once works with its scope: it asks questions, it does not edit.
    let secret = seen["secret"].as_str().expect("secret");
    assert!(secret.starts_with("trs_"));
    assert_eq!(seen["secret_rows"], json!(["default", "metabase"]));
    let client = reqwest::Client::new();
    let asked = client
        .post(server.url("/api/projects/default/query"))
        .bearer_auth(secret)
        .json(&json!({"kind": "trends", "series": [{"event": "Signed In"}], "date_range": {"from": "-7d"}}))
        .send()
        .await
        .expect("answers");
    assert_eq!(asked.status(), 200);
    let saved = client
        .post(server.url("/api/projects/default/insights"))
        .bearer_auth(secret)
        .json(&json!({"name": "x", "query": {}}))
        .send()
        .await
        .expect("answers");
    assert_eq!(saved.status(), 403);
    let keys = get(&server, "/api/projects/default/keys").await;
    assert!(!keys.to_string().contains(secret), "the secret is not kept");

    // Both ingestion keys work during the overlap the page set.
    let shown: Vec<(String, String)> = serde_json::from_value(seen["ingestion_keys"].clone()).expect("keys");
    assert_eq!(shown.len(), 2);
    assert_eq!(shown[0].0, SITE);
    assert!(shown[0].1.starts_with("works until"), "{shown:?}");
    assert_eq!(shown[1].1, "current");
    assert_eq!(ingest(&server, SITE).await, 200);
    assert_eq!(ingest(&server, &shown[1].0).await, 200);
    let listed = keys["ingestion"].as_array().expect("ingestion keys");
    let retires =
        listed.iter().find(|k| k["key"] == json!(SITE)).and_then(|k| k["retires_at"].as_str()).expect("retiring");
    let retires: chrono::DateTime<chrono::Utc> = retires.parse().expect("time");
    let hours = (retires - chrono::Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.0..=24.0).contains(&hours), "a day's overlap: {hours}");

    // The viewer: reads and asks, is offered no edit, and the API refuses one.
    assert_eq!(
        seen["viewer_invite_text"],
        json!("viewer@example.com is invited as viewer. Choose a password (at least 8 characters).")
    );
    assert_eq!(seen["viewer_new_group_buttons"], json!(0));
    assert_eq!(seen["viewer_save_buttons"], json!(0));
    assert_eq!(seen["viewer_chart_drawn"], json!(true));
    assert_eq!(seen["viewer_api_save"]["status"], json!(403));
    assert!(seen["viewer_api_save"]["error"].as_str().unwrap_or_default().contains("your role (viewer)"));
    assert_eq!(seen["viewer_api_query"], json!(200));
    assert_eq!(seen["viewer_api_keys"]["status"], json!(403));
    let sections = |name: &str| -> Vec<String> { serde_json::from_value(seen[name].clone()).expect("sections") };
    for name in ["viewer_settings_sections", "member_settings_sections"] {
        let s = sections(name);
        assert!(s.contains(&"Your account".to_string()), "{s:?}");
        assert!(!s.iter().any(|h| h == "Members" || h == "Keys" || h == "Audit log"), "{name}: {s:?}");
    }
    assert_eq!(seen["viewer_account"], json!("Signed in as viewer@example.com (viewer)"));
    assert_eq!(seen["viewer_settings_locked"], json!([true, false, true]), "a viewer's settings are read-only");

    // The member: edits (an insight saved from the page), erases nothing, changes no settings.
    assert_eq!(seen["member_new_group_buttons"], json!(1));
    let saved_id = seen["member_saved"].as_str().expect("saved id");
    let insight = get(&server, &format!("/api/projects/default/insights/{saved_id}")).await;
    assert_eq!(insight["name"], json!("Member sign-ins"));
    assert_eq!(seen["member_erase_buttons"], json!(0));
    assert_eq!(seen["member_api_settings"]["status"], json!(403));
    // Made a viewer, the member's next save is refused.
    assert_eq!(seen["member_api_save_after"], json!(403));

    // The audit log on the page is the API's, newest first.
    let audit = get(&server, "/api/projects/default/audit").await;
    let from_api: Vec<(String, String, String)> = audit["results"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            let text = |k: &str| e[k].as_str().unwrap_or_default().to_string();
            (text("actor"), text("action"), text("target"))
        })
        .collect();
    let on_page: Vec<(String, String, String)> = serde_json::from_value(seen["audit"].clone()).expect("audit rows");
    assert_eq!(on_page, from_api);
    let actions: Vec<&str> = from_api.iter().map(|(_, a, _)| a.as_str()).collect();
    assert_eq!(
        actions,
        [
            "member.role",
            "member.join",
            "member.join",
            "ingestion_key.rotate",
            "key.create",
            "member.invite",
            "member.invite"
        ]
    );
    assert_eq!(from_api[0], ("user:owner@example.com".into(), "member.role".into(), "member@example.com".into()));
    // Sessions: the second browser's was listed, ended from the first, and signed out.
    assert_eq!(seen["sessions_before"], json!(2));
    let after: Vec<String> = serde_json::from_value(seen["sessions_after"].clone()).expect("rows");
    assert_eq!(after.len(), 1);
    assert!(after[0].starts_with("this browser"), "{after:?}");
    assert_eq!(seen["other_browser_signed_out"], json!(true));
    println!("screenshots: {}", shots.display());
}
