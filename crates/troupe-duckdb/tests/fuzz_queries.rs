//! Fuzzing of the query spec and the insight engine (proptest, bounded cases so
//! `./scripts/test` stays fast; `PROPTEST_CASES=20000` for a long run), on the embedded store
//! with a small B2B project.
//!
//! The corpus is `crates/troupe-query/fuzz/questions.jsonl` (one question of each kind and
//! option, extreme ranges and windows among them); each case replaces values at random paths
//! with generated ones. Asserted: no panic, and the answer is a result or a typed error: a
//! question the parser refuses, or a 400-kind `QueryError` (never a store error: the data is
//! healthy).

use std::sync::OnceLock;

use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{json, Value};
use troupe_core::{Command, MembershipOp, ProfileOp, TrackEvent};
use troupe_duckdb::{DuckStore, EmbeddedConfig};
use troupe_query::{Insight, QueryError};
use troupe_store::{NewProject, Store};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).single().unwrap_or_default()
}

fn seeds() -> Vec<Value> {
    include_str!("../../troupe-query/fuzz/questions.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// A runtime and a store with three companies, their users and two months of events, shared by
/// every case.
fn fixture() -> &'static (tokio::runtime::Runtime, DuckStore) {
    static FIXTURE: OnceLock<(tokio::runtime::Runtime, DuckStore)> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let store = DuckStore::open(EmbeddedConfig::default()).expect("store");
        runtime.block_on(async {
            let new = NewProject { name: "p".into(), ingestion_key: "k".into(), secret_key_hash: String::new() };
            store.create_project(new).await.expect("project");
            let mut commands = Vec::new();
            let names = ["Signed Up", "Chart Created", "Report Exported", "Churned"];
            for (c, company) in ["acme", "globex", "initech"].iter().enumerate() {
                let plan = if c == 0 { "pro" } else { "free" };
                commands.push(Command::GroupProfile {
                    group_type: "company".into(),
                    group_key: company.to_string(),
                    name: None,
                    op: ProfileOp::Set(json!({"plan": plan}).as_object().cloned().unwrap_or_default()),
                });
                for u in 0..4 {
                    let user = format!("{company}-{u}");
                    for (t, op) in [
                        ("company", MembershipOp::Set(vec![company.to_string()])),
                        ("team", MembershipOp::Add(format!("t{u}"))),
                    ] {
                        commands.push(Command::Membership { distinct_id: user.clone(), group_type: t.into(), op });
                    }
                    let country = if u % 2 == 0 { "FR" } else { "US" };
                    let props = json!({"country": country, "plan": plan}).as_object().cloned().unwrap_or_default();
                    commands.push(Command::PersonProfile { distinct_id: user.clone(), op: ProfileOp::Set(props) });
                    for day in 0..60 {
                        if (day + u + c) % 3 == 0 {
                            let name = names[(day * 7 + u) % names.len()];
                            let properties = json!({"plan": plan, "n": day}).as_object().cloned().unwrap_or_default();
                            commands.push(Command::Track(TrackEvent {
                                event: name.into(),
                                distinct_id: user.clone(),
                                timestamp: Some(now() - Duration::days(day as i64) - Duration::minutes(u as i64)),
                                properties,
                                ..TrackEvent::default()
                            }));
                        }
                    }
                }
            }
            store.apply(1, commands).await.expect("data");
        });
        (runtime, store)
    })
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        prop::sample::select(vec![
            json!(0),
            json!(1),
            json!(2),
            json!(20),
            json!(21),
            json!(-1),
            json!(u32::MAX),
            json!(u64::MAX),
            json!("-99999999w"),
            json!("-4294967295h"),
            json!("+262143-01-01T00:00:00Z"),
            json!("9999-12-31"),
            json!("today"),
            json!("now"),
            json!("-1d"),
            json!("hour"),
            json!("week"),
            json!("month"),
            json!("unique"),
            json!("p90"),
            json!("sum"),
            json!("avg_per_actor"),
            json!("users"),
            json!({"group_type": "company"}),
            json!({"group_type": "planet"}),
            json!("Chart Created"),
            json!("A / B"),
            json!("(A"),
            json!("A / 0"),
            json!("regex"),
            json!("[unclosed"),
            json!("gt"),
            json!("in"),
            json!("is_set"),
            json!("person"),
            json!("group"),
            json!("event"),
            json!("strict"),
            json!("unordered"),
            json!("dropped"),
            json!("Pacific/Kiritimati"),
            json!("Mars/Olympus"),
            json!({"event": "Churned"}),
            json!([]),
            json!({}),
        ]),
        "\\PC{0,16}".prop_map(Value::from),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec(("\\PC{0,8}", inner), 0..4).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

/// Replace the node `path` leads to (child by index modulo the count).
fn mutate(target: &mut Value, path: &[usize], replacement: Value) {
    let Some((&step, rest)) = path.split_first() else {
        *target = replacement;
        return;
    };
    match target {
        Value::Array(items) if !items.is_empty() => {
            let n = items.len();
            mutate(&mut items[step % n], rest, replacement)
        }
        Value::Object(map) if !map.is_empty() => {
            let n = map.len();
            if let Some((_, child)) = map.iter_mut().nth(step % n) {
                mutate(child, rest, replacement)
            }
        }
        _ => *target = replacement,
    }
}

fn config() -> ProptestConfig {
    // 2,000 questions by default (about two seconds in release); the environment's PROPTEST_CASES wins.
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2_000);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mutated_questions_are_answered_or_refused_as_invalid(
        seed in any::<prop::sample::Index>(),
        edits in prop::collection::vec((prop::collection::vec(any::<usize>(), 0..5), value()), 0..3),
    ) {
        let seeds = seeds();
        let mut question = seeds[seed.index(seeds.len())].clone();
        for (at, replacement) in edits {
            mutate(&mut question, &at, replacement);
        }
        let Ok(insight) = serde_json::from_value::<Insight>(question.clone()) else { return Ok(()) };
        let (runtime, store) = fixture();
        let answer = runtime.block_on(async {
            tokio::time::timeout(std::time::Duration::from_secs(60), troupe_query::run(store, 1, &insight, now())).await
        });
        match answer {
            Err(_) => prop_assert!(false, "no answer within a minute: {}", question),
            Ok(Ok(_)) => {}
            Ok(Err(QueryError::Store(e))) => prop_assert!(false, "store error {} for {}", e, question),
            Ok(Err(_)) => {}
        }
    }
}

#[test]
fn every_seed_question_parses_and_most_are_answered() {
    let (runtime, store) = fixture();
    let mut answered = 0;
    for question in seeds() {
        let insight: Insight = serde_json::from_value(question.clone()).unwrap_or_else(|e| panic!("{question}: {e}"));
        if runtime.block_on(troupe_query::run(store, 1, &insight, now())).is_ok() {
            answered += 1;
        }
    }
    assert!(answered >= 10, "{answered} seed questions answered");
}
