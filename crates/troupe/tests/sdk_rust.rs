//! troupe's Rust SDK (`troupe-sdk`) against a running troupe: every call's effect as the read API
//! reports it; retries through a fault-injecting proxy that stores every write once (events,
//! increments and charges included); a full queue refusing new writes and saying so; the
//! blocking client.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::proxy::{Fault, FaultProxy};
use common::{get, Server, SITE};
use serde_json::{json, Value};
use troupe_sdk::{Client, Config, SdkError};

fn fast(host: &str) -> Config {
    Config::new(host, SITE).flush_interval(Duration::from_millis(50)).retries(
        12,
        Duration::from_millis(20),
        Duration::from_millis(200),
    )
}

async fn person(server: &Server, id: &str) -> Value {
    get(server, &format!("/api/projects/default/persons/{id}?events=1000")).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_lands_as_the_read_api_reports_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    let troupe = Client::new(fast(&server.base));

    let ada = troupe.for_user("ada");
    ada.set_group("company", ["acme"]).expect("queued");
    ada.add_group("team", "eng").expect("queued");
    ada.add_group("team", "ops").expect("queued");
    ada.remove_group("team", "ops").expect("queued");
    ada.track("Signed In", json!({"method": "sso"})).expect("queued");
    ada.track_in("Report Exported", json!({"format": "pdf"}), json!({"project": "p-1"})).expect("queued");
    let people = ada.people();
    people.set(json!({"plan": "pro", "email": "ada@acme.io", "name": "Ada"})).expect("queued");
    people.set_once(json!({"first_plan": "free"})).expect("queued");
    people.set_once(json!({"first_plan": "pro"})).expect("queued");
    people.unset(["email"]).expect("queued");
    people.increment("visits", 1).expect("queued");
    people.increment("visits", 2).expect("queued");
    people.append("tags", vec![json!("a")]).expect("queued");
    people.union("tags", vec![json!("a"), json!("b")]).expect("queued");
    people.remove("tags", vec![json!("a")]).expect("queued");
    people.track_charge(9.5, json!({"sku": "seat"})).expect("queued");
    // An anonymous visitor who signs up as bob: one person, both ids.
    let visitor = troupe.for_user("anon-7");
    visitor.track("Landing Page Viewed", json!({})).expect("queued");
    visitor.identify("bob").expect("queued");
    troupe.for_user("bob").people().track_charge(3.0, json!({})).expect("queued");
    troupe.for_user("bob").people().clear_charges().expect("queued");
    let acme = ada.get_group("company", "acme");
    acme.set_named("Acme Inc", json!({"tier": "gold"})).expect("queued");
    acme.increment("seats", 5).expect("queued");
    acme.increment("seats", 2).expect("queued");
    acme.union("features", vec![json!("sso"), json!("audit")]).expect("queued");
    acme.remove("features", json!("audit")).expect("queued");
    troupe.get_group("company", "initech").set(json!({"tier": "silver"})).expect("queued");
    troupe.get_group("company", "initech").delete().expect("queued");
    troupe.flush().await;

    let ada = person(&server, "ada").await;
    assert_eq!(
        ada["properties"],
        json!({"plan": "pro", "name": "Ada", "first_plan": "free", "visits": 3, "tags": ["b"]}),
        "{ada}"
    );
    assert_eq!(ada["group_memberships"], json!({"company": ["acme"], "team": ["eng"]}));
    assert_eq!(ada["charges"].as_array().map(Vec::len), Some(1));
    assert_eq!(ada["charges"][0]["amount"], json!(9.5));
    let events: Vec<(Value, Value)> = ada["recent_events"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["event"].clone(), e["groups"].clone()))
        .collect();
    assert_eq!(events.len(), 2, "{events:?}");
    assert!(events.contains(&(json!("Signed In"), json!({"company": ["acme"], "team": ["eng"]}))), "{events:?}");
    assert!(
        events.contains(&(json!("Report Exported"), json!({"company": ["acme"], "project": ["p-1"], "team": ["eng"]}))),
        "{events:?}"
    );
    let bob = person(&server, "bob").await;
    assert_eq!(bob["distinct_ids"].as_array().map(Vec::len), Some(2), "anon-7 and bob are one person: {bob}");
    assert_eq!(bob["charges"], json!([]), "cleared");
    assert_eq!(bob["recent_events"][0]["event"], json!("Landing Page Viewed"));
    let acme = get(&server, "/api/projects/default/groups/company/acme").await;
    assert_eq!(acme["name"], json!("Acme Inc"));
    assert_eq!(acme["properties"], json!({"tier": "gold", "seats": 7, "features": ["sso"]}));
    let initech = common::status_of(&server, "/api/projects/default/groups/company/initech").await;
    assert_eq!(initech, 404, "deleted");
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_through_a_failing_proxy_store_every_write_once() {
    for fault in [Fault::Status503, Fault::DropConnection] {
        let dir = tempfile::tempdir().expect("temp dir");
        let server = Server::start(dir.path(), &[]);
        let proxy = FaultProxy::with_fault(&server.base, fault).await;
        let lost = Arc::new(AtomicUsize::new(0));
        let seen = lost.clone();
        let troupe = Client::new(fast(&proxy.base).batch_size(7).on_error(move |_| {
            seen.fetch_add(1, Ordering::SeqCst);
        }));
        for n in 0..60 {
            let user = troupe.for_user(format!("u{}", n % 4));
            user.track("Chart Created", json!({"n": n})).expect("queued");
            user.people().increment("charts", 1).expect("queued");
            if n % 6 == 0 {
                user.people().track_charge(2.0, json!({"n": n})).expect("queued");
            }
            troupe.get_group("company", "acme").increment("charts", 1).expect("queued");
        }
        troupe.flush().await;
        assert!(proxy.failed() > 0, "{fault:?}: the proxy failed some requests");
        assert_eq!(lost.load(Ordering::SeqCst), 0, "{fault:?}: nothing reported lost");

        let mut events = 0;
        let mut charts = 0;
        let mut charges = 0;
        for u in 0..4 {
            let p = person(&server, &format!("u{u}")).await;
            events += p["recent_events"].as_array().map_or(0, Vec::len);
            charts += p["properties"]["charts"].as_u64().unwrap_or(0);
            charges += p["charges"].as_array().map_or(0, Vec::len);
        }
        assert_eq!((events, charts, charges), (60, 60, 10), "{fault:?}: 0 lost, 0 doubled");
        let acme = get(&server, "/api/projects/default/groups/company/acme").await;
        assert_eq!(acme["properties"]["charts"], json!(60), "{fault:?}: group increments once each");
        drop(proxy);
        server.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_new_writes_and_says_so() {
    // Nothing listens there: the sender is stuck retrying its first batch while the queue fills.
    let unreachable = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("port");
        format!("http://{}", listener.local_addr().expect("address"))
    };
    let reported = Arc::new(AtomicUsize::new(0));
    let seen = reported.clone();
    let config = Config::new(&unreachable, SITE)
        .batch_size(1)
        .queue_capacity(5)
        .retries(1000, Duration::from_secs(5), Duration::from_secs(5))
        .on_error(move |e| {
            if matches!(e, SdkError::QueueFull { .. }) {
                seen.fetch_add(1, Ordering::SeqCst);
            }
        });
    let troupe = Client::new(config);
    let user = troupe.for_user("ada");
    let mut refused = 0;
    for n in 0..20 {
        match user.track("Clicked", json!({"n": n})) {
            Ok(()) => {}
            Err(SdkError::QueueFull { capacity }) => {
                assert_eq!(capacity, 5);
                refused += 1;
            }
            Err(other) => panic!("unexpected {other}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // One write is with the sender, five wait: the rest are refused, each one reported.
    assert!(refused >= 13, "refused {refused}");
    assert_eq!(reported.load(Ordering::SeqCst), refused);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_blocking_client_works_without_a_runtime() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    let base = server.base.clone();
    let sent = std::thread::spawn(move || {
        let troupe = troupe_sdk::blocking::Client::new(fast(&base)).expect("client");
        let cy = troupe.for_user("cy");
        cy.set_group("company", ["globex"])?;
        cy.track("Signed In", json!({}))?;
        cy.people().increment("logins", 1)?;
        troupe.shutdown();
        Ok::<(), SdkError>(())
    })
    .join()
    .expect("thread");
    sent.expect("queued");
    let cy = person(&server, "cy").await;
    assert_eq!(cy["properties"]["logins"], json!(1));
    assert_eq!(cy["recent_events"][0]["groups"], json!({"company": ["globex"]}));
    server.stop();
}
