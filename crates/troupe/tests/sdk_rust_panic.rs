//! A panic in a program using `troupe-sdk`'s panic hook becomes exactly one `server_error` event
//! (in a test binary of its own: the hook is process-wide).

mod common;

use std::time::Duration;

use common::{get, Server, SITE};
use serde_json::json;
use troupe_sdk::{Client, Config, SERVER_DISTINCT_ID};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_is_reported_once_as_a_server_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    let troupe = Client::new(Config::new(&server.base, SITE).flush_interval(Duration::from_millis(50)));
    let hook = troupe.install_panic_hook();
    let crashed = std::thread::Builder::new()
        .name("worker-7".into())
        .spawn(|| panic!("invoice 42 has no customer"))
        .expect("thread")
        .join();
    assert!(crashed.is_err());
    hook.remove();
    // After the hook is removed, panics are not reported.
    let _ = std::thread::spawn(|| panic!("not reported")).join();
    // A client with panics switched off installs nothing.
    let quiet = Client::new(Config::new(&server.base, SITE).capture_panics(false));
    let off = quiet.install_panic_hook();
    let _ = std::thread::spawn(|| panic!("not reported either")).join();
    drop(off);
    troupe.flush().await;
    quiet.flush().await;

    let events = get(&server, &format!("/api/projects/default/events?person={SERVER_DISTINCT_ID}")).await;
    let reported: Vec<&serde_json::Value> = events["results"].as_array().into_iter().flatten().collect();
    assert_eq!(reported.len(), 1, "{events}");
    let event = reported[0];
    assert_eq!(event["event"], json!("server_error"));
    assert_eq!(event["distinct_id"], json!(SERVER_DISTINCT_ID));
    let properties = &event["properties"];
    assert_eq!(properties["runtime"], json!("rust"));
    assert_eq!(properties["message"], json!("invoice 42 has no customer"));
    assert_eq!(properties["thread"], json!("worker-7"));
    assert!(properties["location"].as_str().is_some_and(|l| l.contains("sdk_rust_panic.rs")), "{properties}");
    assert!(properties["backtrace"].as_str().is_some_and(|b| !b.is_empty()), "{properties}");
    server.stop();
}
