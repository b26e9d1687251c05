//! Several nodes in the URL: when the node troupe queries is down, queries go to the next one.
//! Two Debian servers are the two replicas of one shard (the Distributed table writes each row
//! to both); the first is killed and the same questions get the same answers from the second.

mod common;

use serde_json::json;
use troupe_clickhouse::testing::ClickHouseCluster;
use troupe_core::{Command, TrackEvent};
use troupe_store::conformance::project;
use troupe_store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_fail_over_to_the_next_node_of_the_url() {
    let mut cluster = ClickHouseCluster::start_replicas(2).expect("two replicas start");
    let store = common::store_on(cluster.config("troupe_failover")).await;
    let p = project(&store, "p").await;
    let track = |who: &str, n: u32| {
        Command::Track(TrackEvent {
            event: "Signed In".into(),
            distinct_id: who.into(),
            id: Some(format!("{who}-{n}")),
            timestamp: chrono::DateTime::from_timestamp(1_772_442_000 + i64::from(n) * 60, 0),
            ..TrackEvent::default()
        })
    };
    let commands: Vec<Command> = (0..30).map(|n| track(&format!("user-{}", n % 7), n)).collect();
    for r in store.apply(p, commands).await.expect("applies") {
        r.expect("valid");
    }
    let now = chrono::DateTime::from_timestamp(1_772_600_000, 0).unwrap_or_default();
    let question: troupe_query::Insight = serde_json::from_value(json!({
        "kind": "trends", "count_by": "users", "date_range": {"from": "2026-03-01", "to": "2026-03-04"},
        "series": [{"event": "Signed In", "math": "unique"}]
    }))
    .expect("a question");
    let ask = || async {
        let answer = troupe_query::run(&store, p, &question, now).await.expect("answered");
        serde_json::to_value(&answer).expect("JSON")["series"][0]["aggregated_value"].clone()
    };
    assert_eq!(ask().await, json!(7.0));

    cluster.servers[0].kill();
    assert_eq!(ask().await, json!(7.0), "answered by the second node");
    let person = store.person(p, "user-3", 10).await.expect("read").expect("the person exists");
    assert_eq!(person.person.distinct_ids, vec!["user-3".to_string()]);
    store.ready().await.expect("ready through the second node");

    // Back: the first node answers again (queries stay on the second until it fails).
    cluster.servers[0].revive().expect("the first node starts again");
    assert_eq!(ask().await, json!(7.0));
    store.close().await;
}
