//! The OpenPanel adapter against the requests the real @openpanel/sdk 1.3.1 sent (`fixtures/`).

use serde_json::{json, Value};
use troupe_core::{Command, Limits, ProfileOp};

/// One call's commands or its error, as the route answers.
fn translate(body: &Value, device_id: &str, limits: &Limits) -> crate::ItemResult {
    super::translate(body, device_id, limits).and_then(crate::Translated::into_single)
}

fn captured() -> Vec<Value> {
    include_str!("../../fixtures/openpanel-sdk-1.3.1.jsonl")
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["body"].clone())
        .collect()
}

fn one(body: Value) -> Command {
    let mut commands = translate(&body, "device-1", &Limits::default()).expect("translates");
    assert_eq!(commands.len(), 1);
    commands.remove(0).into_unguarded()
}

#[test]
fn the_captured_session_translates() {
    let all: Vec<Command> =
        captured().into_iter().flat_map(|b| translate(&b, "device-1", &Limits::default()).expect("valid")).collect();
    let untyped: Vec<_> = all
        .iter()
        .filter_map(|c| match c {
            Command::Track(e) if !e.untyped_groups.is_empty() => Some(e.untyped_groups.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(untyped, vec![vec!["acme_inc".to_string()], vec!["acme_inc".to_string(), "globex".to_string()]]);
    assert!(all.iter().any(|c| matches!(c, Command::GroupProfile { name: Some(n), group_type, .. } if n == "Acme Inc" && group_type == "company")));
    assert!(all.iter().any(|c| matches!(c, Command::JoinUntypedGroups { group_keys, .. } if group_keys.len() == 2)));
    assert!(all.iter().any(|c| matches!(c, Command::PersonProfile { op: ProfileOp::Set(p), .. } if p["email"] == json!("ada@example.com") && p["plan"] == json!("pro"))));
}

#[test]
fn anonymous_payloads_use_the_device_id_and_decrement_negates() {
    let Command::Track(e) = one(
        json!({"type": "track", "payload": {"name": "Viewed", "properties": {"__timestamp": "2026-11-01T10:00:00Z"}}}),
    ) else {
        panic!("a track")
    };
    assert_eq!(e.distinct_id, "device-1");
    assert!(e.timestamp.is_some() && !e.properties.contains_key("__timestamp"));
    let Command::PersonProfile { op: ProfileOp::Increment(pairs), .. } =
        one(json!({"type": "decrement", "payload": {"profileId": 7, "property": "credits", "value": 2}}))
    else {
        panic!("an increment")
    };
    assert_eq!(pairs[0].1.as_i64(), Some(-2));
    assert!(translate(&json!({"type": "replay", "payload": {}}), "d", &Limits::default()).expect("ok").is_empty());
}

#[test]
fn bad_payloads_name_the_field() {
    let cases = [
        (json!({"payload": {}}), "type"),
        (json!({"type": "track", "payload": {"profileId": "u"}}), "name"),
        (json!({"type": "group", "payload": {"id": "acme"}}), "type"),
        (json!({"type": "identify", "payload": {"firstName": "Ada"}}), "profileId"),
        (json!({"type": "increment", "payload": {"profileId": "u", "property": "n", "value": "x"}}), "value"),
        (json!({"type": "nope", "payload": {}}), "type"),
        (json!({"type": "track"}), "payload"),
    ];
    for (body, field) in cases {
        let err = translate(&body, "d", &Limits::default()).expect_err("an error");
        assert_eq!(err.field(), field, "{body}");
    }
}
