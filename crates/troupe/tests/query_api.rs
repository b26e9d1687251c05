//! The query API and `troupe query` against a running troupe: answers, cohorts saved and used,
//! and readable errors for bad questions.

mod common;

use common::{post_query, troupe, Server, SECRET, SITE};
use serde_json::{json, Value};

/// Three users of two companies (explicit groups on each event) sign in on 2 March 2026; two export a report.
async fn load(server: &Server) {
    let client = reqwest::Client::new();
    let send = |body: Value| {
        let client = client.clone();
        let url = server.url("/api/events/bulk");
        async move {
            let r = client.post(url).header("X-Trodo-Site-Id", SITE).json(&body).send().await.expect("answers");
            assert!(r.status().is_success(), "{}", r.status());
        }
    };
    let company = |user: &str| if user == "cat" { "globex" } else { "acme" };
    let event = |user: &str, name: &str, minute: u32| {
        json!({"distinct_id": user, "event_name": name, "event_id": format!("{user}-{name}"),
               "timestamp": format!("2026-03-02T09:{minute:02}:00Z"), "groups": {"company": company(user)}})
    };
    send(json!({"events": [
        event("ann", "Signed In", 0), event("ben", "Signed In", 1), event("cat", "Signed In", 2),
        event("ann", "Report Exported", 10), event("cat", "Report Exported", 11)
    ]}))
    .await;
}

fn funnel() -> Value {
    json!({"kind": "funnel", "count_by": {"group_type": "company"}, "date_range": {"from": "2026-03-01", "to": "2026-03-03"},
           "steps": [{"event": "Signed In"}, {"event": "Report Exported"}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insights_cohorts_and_errors_over_http_and_the_cli() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    load(&server).await;

    let answer = post_query(&server, funnel()).await;
    let counts: Vec<u64> =
        answer["steps"].as_array().into_iter().flatten().filter_map(|s| s["count"].as_u64()).collect();
    assert_eq!(counts, vec![2, 2], "both companies signed in and exported");

    // A saved cohort, used as a filter: users who exported.
    let client = reqwest::Client::new();
    let cohort = json!({"id": "exporters", "name": "Exporters", "type": "dynamic",
                        "criteria": [{"type": "performed_event", "event": "Report Exported", "days": 3650}]});
    let created = client
        .post(server.url("/api/projects/default/cohorts"))
        .bearer_auth(SECRET)
        .json(&cohort)
        .send()
        .await
        .expect("answers");
    assert_eq!(created.status().as_u16(), 201);
    let listed: Value = client
        .get(server.url("/api/projects/default/cohorts"))
        .bearer_auth(SECRET)
        .send()
        .await
        .expect("answers")
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed["results"][0]["name"], json!("Exporters"));
    let users = post_query(
        &server,
        json!({"kind": "trends", "date_range": {"from": "2026-03-02", "to": "2026-03-02"},
               "series": [{"event": "Signed In", "math": "unique"}], "filters": {"cohort": "exporters"}}),
    )
    .await;
    assert_eq!(users["series"][0]["data"], json!([2.0]));

    // Bad questions: 400 with a JSON body naming the problem; unauthenticated: 401.
    for (body, needle) in [
        (json!({"kind": "funnel", "steps": [{"event": "x"}]}), "2 to 20 steps"),
        (json!({"kind": "trends", "series": [{"event": "x"}], "count_by": {"group_type": "planet"}}), "planet"),
        (json!({"kind": "histogram"}), "histogram"),
        (json!({"kind": "trends", "series": [{"event": "x"}], "filters": {"cohort": "nope"}}), "nope"),
    ] {
        let r = client
            .post(server.url("/api/projects/default/query"))
            .bearer_auth(SECRET)
            .json(&body)
            .send()
            .await
            .expect("answers");
        assert_eq!(r.status().as_u16(), 400, "{body}");
        let error: Value = r.json().await.expect("JSON error");
        assert!(error["error"].as_str().unwrap_or_default().contains(needle), "{body}: {error}");
    }
    let r = client.post(server.url("/api/projects/default/query")).json(&funnel()).send().await.expect("answers");
    assert_eq!(r.status().as_u16(), 401);

    // Funnel options over HTTP and in the CLI's table: both companies enter on 2 March and
    // convert, each in 540 s (acme from ben's sign-in, the latest entry before ann's export;
    // globex from cat's): two default bins of the least width, 1 s.
    let mut options = funnel();
    options["conversion_over_time"] = json!(true);
    options["time_to_convert"] = json!({});
    options["breakdown_attribution"] = json!("last_touch");
    let answer = post_query(&server, options.clone()).await;
    assert_eq!(answer["conversion_over_time"]["lines"][0]["converted"], json!([0, 2, 0]), "{answer}");
    assert_eq!(answer["time_to_convert"]["bins"][0], json!({"from_seconds": 540.0, "to_seconds": 541.0, "count": 2}));
    let out = troupe()
        .args(["query", "--server", &server.base, "--secret-key", SECRET, &options.to_string()])
        .output()
        .expect("troupe query runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("time to convert from step 1 to step 2") && stdout.contains("540s"), "{stdout}");
    assert!(stdout.contains("conversion from step 1 to step 2 by interval of entry"), "{stdout}");

    // Paths over HTTP and in the CLI: both companies go from Signed In to Report Exported.
    let paths = json!({"kind": "paths", "count_by": {"group_type": "company"},
                       "date_range": {"from": "2026-03-01", "to": "2026-03-03"}, "start": {"event": "Signed In"}});
    let answer = post_query(&server, paths.clone()).await;
    assert_eq!(
        answer["edges"],
        json!([{"step": 1, "source": "Signed In", "target": "Report Exported", "actors": 2}]),
        "{answer}"
    );
    let out = troupe()
        .args(["query", "--server", &server.base, "--secret-key", SECRET, &paths.to_string()])
        .output()
        .expect("troupe query runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Signed In → Report Exported"), "{stdout}");

    // The CLI asks the running server and prints a table.
    let out = troupe()
        .args(["query", "--server", &server.base, "--secret-key", SECRET, &funnel().to_string()])
        .output()
        .expect("troupe query runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("Report Exported") && stdout.contains("100.0%"), "{stdout}");
    server.stop();

    // With the server stopped, the CLI reads the data directory itself; JSON output.
    let out = troupe()
        .args(["query", "--format", "json", "--data-dir"])
        .arg(dir.path())
        .arg(funnel().to_string())
        .output()
        .expect("troupe query runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let answer: Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(answer["steps"][1]["count"], json!(2));
    let out =
        troupe().args(["query", "--data-dir"]).arg(dir.path()).arg("{\"kind\": \"funnel\"}").output().expect("runs");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("steps"), "{}", String::from_utf8_lossy(&out.stderr));
}
