//! Fuzzing of every protocol decoder and import line reader, in the test suite (proptest,
//! bounded cases so `./scripts/test` stays fast; `PROPTEST_CASES=100000` for a long run).
//!
//! The corpus is the requests the real clients sent (`fixtures/`) plus hostile seeds
//! (`fuzz/seeds.jsonl`); each case takes one of them and replaces values at random paths with
//! generated ones (extreme numbers and times, odd strings, wrong types, nesting), or mangles
//! its bytes. Asserted for every case: no panic; a decoder answers commands or a typed error;
//! the commands, applied to a project's state as the writer applies them, never panic and never
//! break the state's invariants. Failing cases are kept by proptest in
//! `proptest-regressions/` (committed) and replayed first.

use chrono::{TimeZone, Utc};
use proptest::prelude::*;
use serde_json::{json, Value};
use troupe_core::{Command, Limits, PreparedCommand, ProjectState};
use troupe_ingest::{json as body_json, mixpanel, native, openpanel, posthog, segment};

/// (protocol, route path, body) of every seed.
fn seeds() -> Vec<(String, String, Value)> {
    let fixtures = [
        ("native", include_str!("../fixtures/trodo-python-2.26.2.jsonl")),
        ("posthog", include_str!("../fixtures/posthog-python-7.91.1.jsonl")),
        ("posthog", include_str!("../fixtures/posthog-node-5.70.0.jsonl")),
        ("segment", include_str!("../fixtures/segment-python-2.4.0.jsonl")),
        ("segment", include_str!("../fixtures/segment-node-3.1.0.jsonl")),
        ("mixpanel", include_str!("../fixtures/mixpanel-python-5.4.1.jsonl")),
        ("mixpanel", include_str!("../fixtures/mixpanel-python-5.4.1-buffered.jsonl")),
        ("openpanel", include_str!("../fixtures/openpanel-sdk-1.3.1.jsonl")),
    ];
    let mut out = Vec::new();
    for (protocol, text) in fixtures {
        for line in text.lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
            let path = line["path"].as_str().unwrap_or_default().to_string();
            let body = match line.get("data").and_then(Value::as_str) {
                Some(data) => mixpanel::decode_data(data).unwrap_or(Value::Null),
                None => line["body"].clone(),
            };
            out.push((protocol.to_string(), path, body));
        }
    }
    for line in include_str!("../fuzz/seeds.jsonl").lines().filter_map(|l| serde_json::from_str::<Value>(l).ok()) {
        let field = |k: &str| line[k].as_str().unwrap_or_default().to_string();
        out.push((field("protocol"), field("path"), line["body"].clone()));
    }
    out
}

/// Field names the protocols read, so generated objects hit the decoders' paths.
const KEYS: &[&str] = &[
    "event",
    "event_name",
    "distinct_id",
    "user_id",
    "userId",
    "distinctId",
    "identifyId",
    "properties",
    "custom_properties",
    "$set",
    "$set_once",
    "$unset",
    "$groups",
    "$group_type",
    "$group_key",
    "$group_id",
    "$group_set",
    "$anon_distinct_id",
    "alias",
    "timestamp",
    "sent_at",
    "sentAt",
    "time",
    "$time",
    "type",
    "payload",
    "batch",
    "events",
    "items",
    "token",
    "$token",
    "$distinct_id",
    "$add",
    "$append",
    "$union",
    "$remove",
    "$delete",
    "$insert_id",
    "uuid",
    "messageId",
    "context",
    "groupId",
    "traits",
    "anonymousId",
    "previousId",
    "groupKey",
    "amount",
    "key",
    "keys",
    "values",
    "request_id",
    "event_id",
    "__timestamp",
    "groups",
    "profileId",
    "name",
    "value",
    "property",
    "id",
    "api_key",
    "writeKey",
    "siteId",
    "company",
];

fn key() -> impl Strategy<Value = String> {
    prop_oneof![4 => prop::sample::select(KEYS).prop_map(str::to_string), 1 => "\\PC{0,12}"]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f).map(Value::Number)),
        prop::sample::select(vec![
            json!(8_210_000_000_000_000_i64),
            json!(-1),
            json!(0),
            json!(1e300),
            json!(-1e300),
            json!(i64::MAX),
            json!(i64::MIN),
            json!(u64::MAX),
            json!(1_795_421_762_985_i64),
            json!(99_999_999_999_i64),
            json!("2026-11-23T08:16:02.985Z"),
            json!("+262143-12-31T23:59:59Z"),
            json!("-262143-01-01T00:00:00Z"),
            json!("1e308"),
            json!("NaN"),
            json!(""),
            json!(" "),
            json!("$set"),
            json!("track"),
            json!("identify"),
            json!("group"),
            json!("alias"),
            json!("increment"),
            json!("decrement"),
            json!("company"),
        ]),
        "\\PC{0,24}".prop_map(Value::from),
        (0usize..260).prop_map(|n| Value::from("é".repeat(n))),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6).prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

/// Replace the node that `path` leads to (each step picks a child by index modulo the count;
/// in an object, a step past the last key adds `new_key`).
fn mutate(target: &mut Value, path: &[usize], new_key: &str, replacement: Value) {
    let Some((&step, rest)) = path.split_first() else {
        *target = replacement;
        return;
    };
    match target {
        Value::Array(items) if !items.is_empty() => {
            let n = items.len();
            mutate(&mut items[step % n], rest, new_key, replacement)
        }
        Value::Object(map) => {
            let n = map.len();
            if step % (n + 1) == n {
                map.insert(new_key.to_string(), replacement);
            } else if let Some((_, child)) = map.iter_mut().nth(step % (n + 1)) {
                mutate(child, rest, new_key, replacement)
            }
        }
        _ => *target = replacement,
    }
}

/// What the writer does with commands: apply them, and check the state after each.
fn apply_all(state: &mut ProjectState, commands: Vec<Command>) {
    let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).single().unwrap_or_default();
    for command in commands {
        let _ = state.apply(command, now);
        let broken = state.invariant_violations();
        assert!(broken.is_empty(), "invariants broken: {broken:?}");
    }
}

/// Decode a body as the route of `path` does; the commands of every valid item.
fn decode(protocol: &str, path: &str, body: &Value) -> Vec<Command> {
    let limits = Limits::default();
    let items: Vec<troupe_ingest::ItemResult> = match protocol {
        "native" => {
            let kind = path.trim_start_matches("/api/").trim_start_matches("sdk/");
            match kind {
                "events/bulk" => native::batch_items(body, "events", &limits).map(|b| b.items).unwrap_or_default(),
                "batch" => native::batch_items(body, "items", &limits).map(|b| b.items).unwrap_or_default(),
                kind => vec![native::translate(kind, body, &limits).and_then(troupe_ingest::Translated::into_single)],
            }
        }
        "posthog" => posthog::translate(body.clone(), &limits).map(|c| c.items).unwrap_or_default(),
        "segment" => {
            let route = path.strip_prefix("/v1/").filter(|r| *r != "batch" && *r != "import");
            segment::translate(body, route, &segment::SegmentOptions::default(), &limits)
                .map(|r| r.items)
                .unwrap_or_default()
        }
        "mixpanel" => {
            let endpoint = match path.trim_matches('/') {
                "engage" => mixpanel::Endpoint::Engage,
                "groups" => mixpanel::Endpoint::Groups,
                "import" => mixpanel::Endpoint::Import,
                _ => mixpanel::Endpoint::Track,
            };
            mixpanel::translate(endpoint, body, &["company".to_string()], &limits).map(|r| r.items).unwrap_or_default()
        }
        "openpanel" => {
            vec![openpanel::translate(body, "device-1", &limits).and_then(troupe_ingest::Translated::into_single)]
        }
        other => panic!("no protocol {other}"),
    };
    items.into_iter().filter_map(Result::ok).flatten().collect()
}

/// The import's line readers on one line of each export format.
fn import_lines(line: &[u8]) -> Vec<Command> {
    let limits = Limits::default();
    let mut out = Vec::new();
    if let Ok(commands) = posthog::export_line(line, &limits, || "derived".into()) {
        out.extend(commands.into_iter().map(PreparedCommand::into_command));
    }
    if let Ok(value) = serde_json::from_slice::<Value>(line) {
        out.extend(mixpanel::event(&value, &["company".to_string()], &limits).unwrap_or_default());
        out.extend(
            segment::message(&value, None, None, &segment::SegmentOptions::default(), &limits).unwrap_or_default(),
        );
        out.extend(posthog::event(value, None, &limits).unwrap_or_default());
    }
    out
}

fn config() -> ProptestConfig {
    // 5,000 cases each by default (seconds in release); the environment's PROPTEST_CASES wins.
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(5_000);
    ProptestConfig { cases, ..ProptestConfig::default() }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decoders_answer_commands_or_errors_for_mutated_client_requests(
        seed in any::<prop::sample::Index>(),
        edits in prop::collection::vec((prop::collection::vec(any::<usize>(), 0..6), key(), value()), 1..4),
    ) {
        let seeds = seeds();
        let (protocol, path, mut body) = seeds[seed.index(seeds.len())].clone();
        for (at, new_key, replacement) in edits {
            mutate(&mut body, &at, &new_key, replacement);
        }
        let mut state = ProjectState::new(1, Limits::default(), chrono::Duration::seconds(30));
        apply_all(&mut state, decode(&protocol, &path, &body));
        // The same body as an export line of every import format.
        let line = serde_json::to_vec(&body).unwrap_or_default();
        apply_all(&mut state, import_lines(&line));
    }

    #[test]
    fn mangled_bytes_are_refused_or_decoded_without_panicking(
        seed in any::<prop::sample::Index>(),
        cut in any::<prop::sample::Index>(),
        noise in prop::collection::vec(any::<u8>(), 0..16),
    ) {
        let seeds = seeds();
        let (protocol, path, body) = seeds[seed.index(seeds.len())].clone();
        let mut bytes = serde_json::to_vec(&body).unwrap_or_default();
        let at = cut.index(bytes.len() + 1);
        bytes.splice(at..at, noise);
        let mut state = ProjectState::new(1, Limits::default(), chrono::Duration::seconds(30));
        apply_all(&mut state, import_lines(&bytes));
        if let Ok(value) = body_json::parse(&bytes, &body_json::JsonLimits::default()) {
            apply_all(&mut state, decode(&protocol, &path, &value));
        }
        // Mixpanel's form bodies and their `data` field.
        if let Ok(data) = mixpanel::form_data(&bytes) {
            let _ = mixpanel::data_text(&data);
        }
    }
}

#[test]
fn the_seed_corpus_decodes_as_the_clients_meant_it() {
    // The corpus must reach the decoders: every fixture request decodes to some command.
    let seeds = seeds();
    assert!(seeds.len() > 40, "{} seeds", seeds.len());
    let decoded = seeds.iter().filter(|(p, path, body)| !decode(p, path, body).is_empty()).count();
    assert!(decoded * 2 > seeds.len(), "{decoded} of {} seeds decode", seeds.len());
}
