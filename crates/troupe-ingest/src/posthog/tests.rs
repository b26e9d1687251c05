//! The PostHog adapter against the batches the real posthog-python 7.91.1 and posthog-node
//! 5.70.0 sent (`fixtures/`).

use serde_json::{json, Value};
use troupe_core::{Command, Limits, ProfileOp};

use super::translate;

fn captured(file: &str) -> Value {
    let text = match file {
        "python" => include_str!("../../fixtures/posthog-python-7.91.1.jsonl"),
        _ => include_str!("../../fixtures/posthog-node-5.70.0.jsonl"),
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["body"].clone())
        .next()
        .unwrap_or_default()
}

fn commands(body: &Value) -> Vec<Command> {
    let capture = translate(body.clone(), &Limits::default()).expect("a capture");
    capture.items.into_iter().flat_map(|i| i.expect("every item is valid")).collect()
}

#[test]
fn the_python_batch_becomes_person_ops_group_ops_and_attributed_events() {
    let body = captured("python");
    let capture = translate(body.clone(), &Limits::default()).expect("a capture");
    assert_eq!(capture.key.as_deref(), Some("phc_test_project_key"));
    let all = commands(&body);
    let tracks: Vec<_> = all.iter().filter_map(|c| if let Command::Track(e) = c { Some(e) } else { None }).collect();
    assert!(tracks
        .iter()
        .all(|e| !e.event.starts_with("$set") && e.event != "$groupidentify" && e.event != "$create_alias"));
    let report = tracks.iter().find(|e| e.event == "Report Exported").expect("the grouped event");
    assert_eq!(report.groups, vec![("company".to_string(), vec!["acme_inc".to_string()])]);
    assert!(report.id.is_some() && report.timestamp.is_some() && report.sent_at.is_some());
    assert!(all.iter().any(
        |c| matches!(c, Command::PersonProfile { op: ProfileOp::Set(p), .. } if p["email"] == json!("ada@example.com"))
    ));
    assert!(all.iter().any(|c| matches!(c, Command::PersonProfile { op: ProfileOp::SetOnce(_), .. })));
    let group_sets = all.iter().filter(|c| matches!(c, Command::GroupProfile { .. })).count();
    assert_eq!(group_sets, 2);
    assert!(all.iter().any(|c| matches!(c, Command::Alias { .. })));
}

#[test]
fn group_identify_never_names_a_person_whatever_distinct_id_the_client_invented() {
    for file in ["python", "node"] {
        for c in commands(&captured(file)) {
            let who = match &c {
                Command::Track(e) => Some(e.distinct_id.clone()),
                Command::PersonProfile { distinct_id, .. } | Command::Alias { distinct_id, .. } => {
                    Some(distinct_id.clone())
                }
                Command::Identify { distinct_id, .. } => Some(distinct_id.clone()),
                _ => None,
            };
            if let Some(who) = who {
                assert!(who == "user_42" || who == "anon_abc", "{file}: {c:?}");
            }
        }
    }
}

#[test]
fn the_node_identify_event_carries_set_and_set_once_in_properties() {
    let all = commands(&captured("node"));
    assert!(matches!(&all[0], Command::Identify { distinct_id, .. } if distinct_id == "user_42"));
    assert!(matches!(&all[1], Command::PersonProfile { op: ProfileOp::Set(p), .. } if p["plan"] == json!("pro")));
    assert!(matches!(&all[2], Command::PersonProfile { op: ProfileOp::SetOnce(_), .. }));
    let Command::Track(stored) = &all[3] else { panic!("$identify is stored too, as PostHog does: {:?}", all[3]) };
    assert_eq!((stored.event.as_str(), stored.distinct_id.as_str()), ("$identify", "user_42"));
    assert!(stored.id.is_some(), "its uuid dedupes a resend");
    assert!(!stored.properties.contains_key("$set"), "the person writes are not event properties");
}

#[test]
fn single_events_and_js_arrays_find_their_key() {
    let single = json!({"api_key": "k1", "event": "A", "distinct_id": "u"});
    assert_eq!(translate(single.clone(), &Limits::default()).expect("ok").key.as_deref(), Some("k1"));
    let js = json!([{"event": "A", "properties": {"token": "k2", "distinct_id": "u", "$groups": {"company": 42}}}]);
    let capture = translate(js.clone(), &Limits::default()).expect("ok");
    assert_eq!(capture.key.as_deref(), Some("k2"));
    let Ok(cmds) = &capture.items[0] else { panic!("valid") };
    let Command::Track(e) = &cmds[0] else { panic!("a track") };
    assert_eq!((e.distinct_id.as_str(), e.groups[0].1[0].as_str()), ("u", "42"));
}

#[test]
fn bad_events_are_rejected_one_by_one_naming_the_field() {
    let body = json!({"api_key": "k", "batch": [
        {"event": "ok", "distinct_id": "u"},
        {"distinct_id": "u"},
        {"event": "x", "distinct_id": "u", "properties": {"$groups": "acme"}},
        {"event": "$groupidentify", "distinct_id": "x", "properties": {"$group_type": "company"}},
        {"event": "x", "distinct_id": "u".repeat(201)},
        {"event": "x", "distinct_id": "u", "timestamp": "not a time"},
    ]});
    let capture = translate(body.clone(), &Limits::default()).expect("a capture");
    let fields: Vec<_> = capture.items.iter().map(|i| i.as_ref().err().map(|e| e.field().to_string())).collect();
    assert_eq!(
        fields,
        vec![
            None,
            Some("event".into()),
            Some("$groups".into()),
            Some("$group_key".into()),
            Some("distinct_id".into()),
            Some("timestamp".into())
        ]
    );
    assert!(translate(json!("text"), &Limits::default()).is_err());
    assert!(translate(json!({"batch": {}}), &Limits::default()).is_err());
}

/// An export line read with its properties left as raw text gives exactly the commands the
/// parsed path gives — every event of the captured batches, and lines that carry person
/// writes, explicit groups, escapes or errors.
#[test]
fn export_lines_read_raw_mean_what_the_parsed_path_means() {
    use super::{event, export_line};
    use troupe_core::PreparedCommand;

    let limits = Limits::default();
    let mut lines: Vec<String> = ["python", "node"]
        .iter()
        .filter_map(|f| captured(f)["batch"].as_array().cloned())
        .flatten()
        .map(|e| e.to_string())
        .collect();
    lines.extend(
        [
            r#"{"event":"Signed In","distinct_id":"u1","timestamp":"2026-08-11T17:45:29+00:00","properties":{"$current_url":"/p/8629","duration_ms":3709,"$groups":{"company":"c10","active_team":["c10-t7","c10-t8"]}}}"#,
            r#"{"event":"Paid","uuid":"e-1","properties":{"distinct_id":"u2","$set":{"plan":"pro"},"$set_once":{"first":"x"},"amount":9.50,"note":"a\"b\\c\u00e9","a":1,"a":2}}"#,
            r#"{"event":"Paid","distinct_id":"u3","$set":{"top":"wins"},"properties":{"$set":{"top":"loses"}}}"#,
            r#"{"event":"Viewed","distinct_id":7,"properties":null}"#,
            r#"{"event":"Viewed","distinct_id":"u4"}"#,
            r#"{"event":"$identify","distinct_id":"u5","properties":{"$anon_distinct_id":"anon-5","$set":{"email":"e@x"}}}"#,
            r#"{"event":"$groupidentify","distinct_id":"x","properties":{"$group_type":"company","$group_key":"c1","$group_set":{"name":"C1"}}}"#,
        ]
        .map(str::to_string),
    );
    let derived = || "derived-id".to_string();
    for line in &lines {
        let raw: Vec<Command> = export_line(line.as_bytes(), &limits, derived)
            .unwrap_or_else(|e| panic!("{line}: {e}"))
            .into_iter()
            .map(PreparedCommand::into_command)
            .collect();
        let value: Value = serde_json::from_str(line).expect("valid JSON");
        let mut parsed = event(value, None, &limits).unwrap_or_else(|e| panic!("{line}: {e}"));
        for command in &mut parsed {
            if let Command::Track(e) = command {
                e.id.get_or_insert_with(derived);
            }
        }
        assert_eq!(raw, parsed, "{line}");
    }

    for (line, error) in [
        (r#"{"event":"X","distinct_id":"u","properties":[1]}"#, "properties: must be a JSON object"),
        (r#"{"distinct_id":"u"}"#, "event is required"),
        (r#"{"event":"X"}"#, "distinct_id is required"),
        (r#"{"event":"X","distinct_id":"u","properties":{"$set":"no"}}"#, "$set: must be a JSON object"),
    ] {
        let raw = export_line(line.as_bytes(), &limits, derived).err().map(|e| e.to_string());
        let parsed = event(serde_json::from_str(line).expect("valid JSON"), None, &limits).err().map(|e| e.to_string());
        assert_eq!(raw.as_deref(), Some(error), "{line}");
        assert_eq!(raw, parsed, "{line}");
    }
    let broken = export_line(b"{\"event\": ", &limits, derived).err().map(|e| e.to_string());
    assert!(broken.is_some_and(|e| e.starts_with("not valid JSON")));
}
