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
    assert_eq!(capture.api_key.as_deref(), Some("phc_test_project_key"));
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
}

#[test]
fn single_events_and_js_arrays_find_their_key() {
    let single = json!({"api_key": "k1", "event": "A", "distinct_id": "u"});
    assert_eq!(translate(single.clone(), &Limits::default()).expect("ok").api_key.as_deref(), Some("k1"));
    let js = json!([{"event": "A", "properties": {"token": "k2", "distinct_id": "u", "$groups": {"company": 42}}}]);
    let capture = translate(js.clone(), &Limits::default()).expect("ok");
    assert_eq!(capture.api_key.as_deref(), Some("k2"));
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
