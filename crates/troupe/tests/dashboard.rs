//! End to end: the dashboard in Debian's headless Chromium (driven by playwright-core) against a
//! running troupe with demo data. The browser flow (tests/acceptance/dashboard.cjs) reports what
//! it read on each page; this test compares it with the JSON API. Screenshots of every page are
//! kept in `<target>/tmp/dashboard-screenshots/`.

mod common;

use common::{browser_flow, fmt_count, get, post_query, status_of, Server};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_user_signs_in_browses_groups_builds_a_funnel_and_saves_a_dashboard() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &["--demo"]);
    let (seen, shots) = browser_flow(&server, "dashboard.cjs", "dashboard-screenshots").await;

    // Sign-in errors are readable.
    assert_eq!(seen["wrong_password"], json!("wrong email or password"));

    // A tab per group type with its count (read before the browser created one company); the
    // columns the issue names.
    let types = get(&server, "/api/projects/default/group-types").await;
    let tabs: Vec<String> = types["results"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            let created_since = u64::from(t["group_type"] == json!("company"));
            format!(
                "{} {}",
                t["display_name"].as_str().unwrap_or_default(),
                t["group_count"].as_u64().unwrap_or(0) - created_since
            )
        })
        .collect();
    assert_eq!(seen["tabs"], json!(tabs));
    // Columns: key, name, members, last seen, events, the three properties most groups have (until
    // others are chosen), updated, created; the first row's figures are the API's.
    assert_eq!(
        seen["columns"],
        json!([
            "Key",
            "Name",
            "Members",
            "Last seen",
            "Events (30 d)",
            "country",
            "employees",
            "industry",
            "Last updated ↓",
            "Created"
        ])
    );
    let listed = get(&server, "/api/projects/default/groups?type=company&activity=true&limit=25").await;
    // (The flow created a group after reading the list: find the row's group by its key.)
    let row = seen["groups_first_row"].as_array().cloned().unwrap_or_default();
    let first =
        listed["results"].as_array().into_iter().flatten().find(|g| g["key"] == row[0]).cloned().unwrap_or_default();
    assert!(first["member_count"].as_u64().unwrap_or(0) > 0, "{row:?}");
    assert_eq!(row[2], json!(first["member_count"].to_string()));
    assert_eq!(row[4], json!(first["events"].as_u64().map(fmt_count)));
    // Sorted by name by its header, then reversed.
    let by_name = get(&server, "/api/projects/default/groups?type=company&sort=name&order=asc&limit=25").await;
    let before_created = |g: &&Value| g["key"] != json!("e2e-corp");
    let names: Vec<Value> =
        by_name["results"].as_array().into_iter().flatten().filter(before_created).map(|g| g["name"].clone()).collect();
    assert_eq!(seen["sorted_by_name"], json!(names));
    let mut reversed = get(&server, "/api/projects/default/groups?type=company&sort=name&order=desc&limit=25").await
        ["results"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    reversed.retain(|g| before_created(&g));
    assert_eq!(seen["sorted_by_name_desc"], json!(reversed.iter().map(|g| g["name"].clone()).collect::<Vec<_>>()));

    // The group created in the UI is in the API, exactly as typed.
    let created = get(&server, "/api/projects/default/groups/company/e2e-corp").await;
    assert_eq!(created["name"], json!("E2E Corp"));
    assert_eq!(created["properties"], json!({"plan": "pro"}));

    // The profile shows the group's members and its recent events.
    let key = seen["profile"]["key"].as_str().unwrap_or_default().to_string();
    let profile = get(&server, &format!("/api/projects/default/groups/company/{key}?events=20")).await;
    let member_count = profile["members"].as_array().map_or(0, Vec::len);
    assert_eq!(seen["profile"]["members"], json!(member_count.min(25)), "a page of members");
    assert_eq!(seen["profile"]["events"], json!(profile["recent_events"].as_array().map(Vec::len)));
    // The account view's figures are the activity API's.
    let activity = get(&server, &format!("/api/projects/default/groups/company/{key}/activity?days=30")).await;
    let stats = &seen["profile"]["stats"];
    assert_eq!(stats["events"], json!(fmt_count(activity["events"].as_u64().unwrap_or(0))));
    assert_eq!(stats["active"], json!(fmt_count(activity["active_members"].as_u64().unwrap_or(0))));
    assert_eq!(stats["members"], json!(fmt_count(member_count as u64)));
    let top: Vec<Value> = activity["top_events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| json!([e["event"], fmt_count(e["count"].as_u64().unwrap_or(0))]))
        .collect();
    assert_eq!(seen["profile"]["top_events"], json!(top));
    // Members most recently seen first: the page's first member is the API's.
    let members = get(&server, &format!("/api/projects/default/groups/company/{key}/members?limit=25")).await;
    assert_eq!(
        seen["profile"]["member_last_seen"].as_array().map(Vec::len),
        members["results"].as_array().map(Vec::len)
    );
    // The company's teams are linked, and a team links back to its company.
    let teams = seen["profile"]["related"].as_array().cloned().unwrap_or_default();
    assert!(
        !teams.is_empty()
            && teams
                .iter()
                .all(|t| t.as_str().is_some_and(|t| t.starts_with("team: ") || t.starts_with("active_team: "))),
        "{teams:?}"
    );
    let company_chip = format!("company: {}", profile["name"].as_str().unwrap_or_default());
    assert_eq!(seen["team_page"]["related"], json!([company_chip]));

    // Persons: email and last seen.
    assert_eq!(
        seen["persons_columns"],
        json!(["PERSON", "EMAIL", "GROUPS", "LAST SEEN (30 D)", "EVENTS (30 D)", "DISTINCT IDS"])
    );
    assert!(seen["events_rows"].as_u64().unwrap_or(0) > 0);

    // The funnel by companies reads the same numbers as the JSON API, and so does the dashboard
    // it was saved to, reopened.
    let funnel = post_query(
        &server,
        json!({"kind": "funnel", "count_by": {"group_type": "company"}, "date_range": {"from": "-30d"}, "interval": "day",
               "steps": [{"event": "Signed In"}, {"event": "Project Created"}, {"event": "Invited Teammate"}],
               "window": {"value": 14, "unit": "day"}, "order": "ordered"}),
    )
    .await;
    let counts: Vec<u64> =
        funnel["steps"].as_array().into_iter().flatten().filter_map(|s| s["count"].as_u64()).collect();
    assert!(counts[0] > 0, "the demo data has companies in the funnel");
    assert_eq!(seen["funnel_counts"], json!(counts));
    assert_eq!(seen["funnel_step3_actors"], json!(counts[2].min(25)), "a page of the actors table");
    assert_eq!(seen["funnel_after_back"], json!(counts), "Back restores the question from the URL");
    assert!(
        seen["trend_point_actors"].as_str().unwrap_or_default().starts_with("Actors:"),
        "{}",
        seen["trend_point_actors"]
    );
    assert_eq!(seen["dashboard_counts"], json!(counts));
    assert_eq!(seen["dashboard_tile"], json!("Companies activation"));

    // The saved insight and dashboard are in the API too.
    let insights = get(&server, "/api/projects/default/insights").await;
    assert_eq!(insights["results"][0]["name"], json!("Companies activation"));
    let dashboards = get(&server, "/api/projects/default/dashboards").await;
    assert_eq!(dashboards["results"][0]["name"], json!("Team health"));
    assert_eq!(dashboards["results"][0]["insights"], json!([insights["results"][0]["id"]]));

    // The person erased with the page's button is gone, with every event of its ids.
    let erased = seen["erased_person"].as_str().unwrap_or_default().to_string();
    assert!(!erased.is_empty(), "the flow read the person's id");
    assert!(seen["erase_notice"].as_str().unwrap_or_default().ends_with("was erased."), "{}", seen["erase_notice"]);
    assert_eq!(status_of(&server, &format!("/api/projects/default/persons/{erased}")).await, 404);
    let left = get(&server, &format!("/api/projects/default/events?person={erased}")).await;
    assert_eq!(left["results"], json!([]), "no event of the erased person is left");

    // Settings shows how to install the browser SDK this server serves, with the project's key.
    let snippet = seen["install_snippet"].as_str().unwrap_or_default();
    assert!(
        snippet.contains(&format!("{}/sdk.js", server.base)) && snippet.contains("troupe.init('site_acceptance'"),
        "{snippet}"
    );

    // Phone width: nothing wider than the screen; no script errors on any page.
    assert_eq!(seen["phone_overflow"], json!(0));
    assert_eq!(seen["page_errors"], json!([]));
    for page in [
        "01-setup",
        "03-groups",
        "05-group-profile",
        "07b-erase-confirm",
        "09-funnel",
        "13-dashboard",
        "15-groups-phone",
    ] {
        assert!(shots.join(format!("{page}.png")).exists(), "screenshot {page}");
    }
    server.stop();
}
