//! troupe's browser SDK (`/sdk.js`) on a site of another origin, in headless Chromium
//! (tests/acceptance/sdk_browser.cjs): memberships follow a user to a second browser through
//! identify, events carry the groups, logout forgets them, queued events survive the page
//! closing, and the script stays small.

mod common;

use std::io::Write;

use common::{browser_flow_with, get, sdk_site, Server, SECRET};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_browser_sdk_keeps_groups_across_browsers_and_delivers_on_unload() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    let (site_base, site_task) = sdk_site(&server.base).await;
    let seen = browser_flow_with("sdk_browser.cjs", &[&site_base, &server.base, SECRET]).await;

    // Profile A: Ada's groups as this browser keeps them, everything sent.
    let a = &seen["profile_a"];
    assert_eq!(a["user"], json!("ada"));
    assert_eq!(a["groups"], json!({"company": ["acme"], "team": ["acme-eng"]}));
    assert_eq!(a["queued"], json!(0));
    // Profile B knew nothing, then learnt Ada's memberships from troupe's identify answer.
    let b = &seen["profile_b"];
    assert_eq!(b["before"], json!({}));
    assert_eq!(b["after"], json!({"company": ["acme"], "team": ["acme-eng"]}));

    let ada = get(&server, "/api/projects/default/persons/ada?events=100").await;
    let ids: Vec<&str> = ada["distinct_ids"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    for anon in [&a["anon"], &b["anon"]] {
        assert!(ids.contains(&anon.as_str().unwrap_or("?")), "{anon} merged into ada: {ids:?}");
    }
    assert_eq!(ada["properties"], json!({"name": "Ada", "exports": 1}));
    assert_eq!(ada["group_memberships"], json!({"company": ["acme"], "team": ["acme-eng"]}));
    let events: Vec<(String, Value)> = ada["recent_events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["event"].as_str().unwrap_or_default().to_string(), e["groups"].clone()))
        .collect();
    let of = |name: &str| events.iter().filter(|(e, _)| e == name).map(|(_, g)| g.clone()).collect::<Vec<_>>();
    assert_eq!(of("$pageview").len(), 1, "{events:?}");
    assert_eq!(of("Landing Page Viewed"), vec![json!({})], "before any group");
    assert_eq!(of("Report Exported"), vec![json!({"company": ["acme"], "team": ["acme-eng"]})]);
    assert_eq!(
        of("Chart Created"),
        vec![json!({"company": ["acme"], "team": ["acme-eng"]})],
        "from the second browser"
    );
    let pageview =
        ada["recent_events"].as_array().into_iter().flatten().find(|e| e["event"] == json!("$pageview")).cloned();
    let pageview = pageview.unwrap_or_default();
    assert_eq!(pageview["properties"]["section"], json!("pricing"));
    assert!(pageview["properties"]["$current_url"].as_str().is_some_and(|u| u.starts_with(&site_base)));
    let acme = get(&server, "/api/projects/default/groups/company/acme").await;
    assert_eq!(acme["properties"], json!({"plan": "pro"}));

    // Logout: a new anonymous visitor, no groups.
    let logout = &seen["logout"];
    assert_eq!(logout["groups"], json!({}));
    let visitor = logout["user"].as_str().unwrap_or_default();
    assert!(visitor.starts_with("anon-") && visitor != b["anon"], "{visitor}");
    let after = get(&server, &format!("/api/projects/default/events?person={visitor}")).await;
    assert_eq!(after["results"].as_array().map(Vec::len), Some(1));
    assert_eq!(after["results"][0]["groups"], json!({}));

    // Leaving the page delivered both queued events by sendBeacon; the next page sent them again
    // (a beacon has no answer) and they were stored once.
    assert_eq!(seen["unload"], json!(2), "both were queued, not yet sent");
    assert_eq!(seen["after_beacon"], json!(2), "delivered by the beacon alone");
    assert_eq!(seen["after_resend"], json!(2), "the resend stored nothing twice");

    // Nobody but the site and troupe was asked for anything; no script errors; small.
    let mut hosts = vec![site_base.clone(), server.base.clone()];
    hosts.sort();
    assert_eq!(seen["hosts"], json!(hosts));
    assert_eq!(seen["page_errors"], json!([]));
    let script = reqwest::get(server.url("/sdk.js")).await.expect("served").text().await.expect("text");
    assert!(script.contains("window.troupe = troupe;") && !script.contains("export default"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(script.as_bytes()).expect("gzip");
    let size = gz.finish().expect("gzip").len();
    println!("sdk.js: {} bytes, {size} gzipped", script.len());
    assert!(size < 6 * 1024, "{size} bytes gzipped");
    site_task.abort();
    server.stop();
}
