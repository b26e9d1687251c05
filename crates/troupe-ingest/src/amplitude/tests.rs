//! Amplitude export rows (the Export API's shape) and HTTP API events.

use serde_json::json;
use troupe_core::{Command, Limits, ProfileOp};

use super::event;

/// A row as Amplitude's Export API writes it (fields trimmed to those troupe reads, plus a few
/// it ignores).
fn export_row() -> serde_json::Value {
    json!({
        "$insert_id": "5f1c2a9e-2d1b-4d7a-9c1e-7b2f0e3c4a11",
        "amplitude_id": 123456789,
        "app": 987654,
        "event_type": "Report Exported",
        "event_time": "2026-11-01 12:34:56.789000",
        "client_event_time": "2026-11-01 12:34:55.100000",
        "user_id": "ada@acme.io",
        "device_id": "device-7f3a",
        "event_properties": {"format": "csv", "rows": 1200},
        "user_properties": {"plan": "pro", "name": "Ada"},
        "groups": {"company": "acme", "team": ["acme-eng", "acme-data"]},
        "group_properties": {"company": {"acme": {"plan": "enterprise", "seats": 40}}},
        "uuid": "0b7e0b0e-1c1e-4c1e-8c1e-0c1e0c1e0c1e",
        "library": "amplitude-js/8.21.9"
    })
}

#[test]
fn an_export_row_becomes_an_identified_attributed_event_with_its_profile_writes() {
    let commands = event(&export_row(), &Limits::default()).expect("valid");
    assert!(matches!(&commands[0], Command::Identify { anon_distinct_id, distinct_id }
        if anon_distinct_id == "device-7f3a" && distinct_id == "ada@acme.io"));
    let Command::Track(track) = &commands[1] else { panic!("the event: {:?}", commands[1]) };
    assert_eq!(track.event, "Report Exported");
    assert_eq!(track.distinct_id, "ada@acme.io");
    assert_eq!(track.id.as_deref(), Some("5f1c2a9e-2d1b-4d7a-9c1e-7b2f0e3c4a11"), "insert_id dedupes");
    assert_eq!(track.timestamp.map(|t| t.to_rfc3339()), Some("2026-11-01T12:34:56.789+00:00".to_string()));
    assert_eq!(track.properties["rows"], json!(1200));
    assert_eq!(
        track.groups,
        vec![
            ("company".to_string(), vec!["acme".to_string()]),
            ("team".to_string(), vec!["acme-eng".to_string(), "acme-data".to_string()])
        ]
    );
    assert!(matches!(&commands[2], Command::PersonProfile { distinct_id, op: ProfileOp::Set(p) }
        if distinct_id == "ada@acme.io" && p["plan"] == json!("pro")));
    assert!(matches!(&commands[3], Command::GroupProfile { group_type, group_key, op: ProfileOp::Set(p), .. }
        if group_type == "company" && group_key == "acme" && p["seats"] == json!(40)));
    assert_eq!(commands.len(), 4);
}

#[test]
fn identify_and_group_identify_rows_are_profile_writes_only() {
    let identify = json!({"event_type": "$identify", "user_id": "u1", "time": 1793000000000_i64,
        "user_properties": {"$set": {"plan": "team"}, "$setOnce": {"first": "x"}, "$add": {"logins": 2}, "$unset": {"temp": "-"}}});
    let commands = event(&identify, &Limits::default()).expect("valid");
    assert!(commands.iter().all(|c| !matches!(c, Command::Track(_))));
    let ops: Vec<String> = commands
        .iter()
        .map(|c| match c {
            Command::PersonProfile { op, .. } => op.name().to_string(),
            Command::Once { guarded, .. } => match guarded.as_ref() {
                Command::PersonProfile { op, .. } => op.name().to_string(),
                other => format!("{other:?}"),
            },
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(ops, ["set", "set_once", "increment", "unset"], "the increment is guarded against a resend");

    let group = json!({"event_type": "$groupidentify", "user_id": "x", "groups": {"company": "acme"},
        "group_properties": {"$set": {"plan": "enterprise"}}});
    let commands = event(&group, &Limits::default()).expect("valid");
    assert!(
        matches!(&commands[..], [Command::GroupProfile { group_key, op: ProfileOp::Set(_), .. }] if group_key == "acme"),
        "never a person: {commands:?}"
    );
}

#[test]
fn bad_rows_name_the_field() {
    let limits = Limits::default();
    let cases = [
        (json!({"user_id": "u"}), "event_type"),
        (json!({"event_type": "A"}), "user_id"),
        (json!({"event_type": "A", "user_id": "u", "event_time": "yesterday"}), "event_time"),
        (json!({"event_type": "A", "user_id": "u", "groups": ["acme"]}), "groups"),
        (json!({"event_type": "A", "user_id": "u", "user_properties": {"$clearAll": {}}}), "user_properties.$clearAll"),
        (json!({"event_type": "$groupidentify", "user_id": "u"}), "groups"),
    ];
    for (row, field) in cases {
        let error = event(&row, &limits).expect_err("refused");
        assert_eq!(error.field(), field, "{row}: {error}");
    }
}

#[test]
fn an_http_api_body_names_its_key_and_set_group_is_a_membership() {
    let body = json!({"api_key": "tri_key", "events": [
        {"event_type": "$identify", "user_id": "lin", "groups": {"company": "umbrella"},
         "user_properties": {"$set": {"company": "umbrella"}}, "insert_id": "i-1"},
        {"event_type": "Clicked"}
    ]});
    let translated = super::translate(&body, &Limits::default()).expect("a body");
    assert_eq!(translated.key.as_deref(), Some("tri_key"));
    let first = translated.items[0].as_ref().expect("valid");
    assert!(
        matches!(&first[0], Command::Membership { distinct_id, group_type, op: troupe_core::MembershipOp::Set(ids) }
        if distinct_id == "lin" && group_type == "company" && ids == &["umbrella"]),
        "{first:?}"
    );
    assert!(translated.items[1].as_ref().is_err_and(|e| e.field() == "user_id"), "one bad event, the others kept");
    assert!(super::translate(&json!({"api_key": "k"}), &Limits::default()).is_err_and(|e| e.field() == "events"));
}
