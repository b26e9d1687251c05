//! The Mixpanel adapter against what the real mixpanel-python 5.4.1 sent (`fixtures/`).

use serde_json::{json, Value};
use troupe_core::{Command, Limits, MembershipOp, ProfileOp};

use super::{decode_data, translate, Endpoint};

fn endpoint(path: &str) -> Endpoint {
    match path {
        "/engage" => Endpoint::Engage,
        "/groups" => Endpoint::Groups,
        "/import" => Endpoint::Import,
        _ => Endpoint::Track,
    }
}

fn captured(file: &str) -> Vec<(Endpoint, Value)> {
    let text = match file {
        "plain" => include_str!("../../fixtures/mixpanel-python-5.4.1.jsonl"),
        _ => include_str!("../../fixtures/mixpanel-python-5.4.1-buffered.jsonl"),
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| {
            (
                endpoint(r["path"].as_str().unwrap_or_default()),
                decode_data(r["data"].as_str().unwrap_or_default()).expect("JSON data"),
            )
        })
        .collect()
}

fn commands(requests: &[(Endpoint, Value)]) -> Vec<Command> {
    let keys = vec!["company".to_string()];
    requests
        .iter()
        .flat_map(|(e, data)| translate(*e, data, &keys, &Limits::default()).expect("a request").items)
        .flat_map(|i| i.expect("every message is valid"))
        .map(Command::into_unguarded)
        .collect()
}

#[test]
fn plain_and_buffered_consumers_give_the_same_commands() {
    let plain = commands(&captured("plain"));
    let buffered = commands(&captured("buffered"));
    assert_eq!(plain.len(), buffered.len());
    for all in [plain, buffered] {
        assert!(all.iter().any(|c| matches!(c, Command::Membership { op: MembershipOp::Set(ids), group_type, .. } if group_type == "company" && ids == &vec!["acme_inc".to_string()])));
        let grouped: Vec<_> = all
            .iter()
            .filter_map(|c| match c {
                Command::Track(e) if !e.groups.is_empty() => Some(e.event.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(grouped, vec!["Report Exported".to_string()]);
        assert!(all.iter().any(|c| matches!(c, Command::GroupProfile { op: ProfileOp::Union(_), .. })));
        assert!(all.iter().any(|c| matches!(c, Command::PersonProfile { op: ProfileOp::Increment(_), .. })));
        assert!(all.iter().all(|c| !matches!(c, Command::Track(e) if e.id.is_none() || e.timestamp.is_none() || e.properties.contains_key("token"))));
    }
}

#[test]
fn the_token_is_found_in_every_kind_of_message() {
    for (e, data) in captured("plain") {
        let request = translate(e, &data, &[], &Limits::default()).expect("a request");
        assert_eq!(request.key.as_deref(), Some("mp_project_token_123"), "{e:?}");
    }
}

#[test]
fn base64_data_decodes_like_plain_json() {
    let plain = json!({"event": "A", "properties": {"token": "t", "distinct_id": "u"}});
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, plain.to_string());
    assert_eq!(decode_data(&encoded).expect("decodes"), plain);
    assert_eq!(decode_data("%%%").unwrap_err().field(), "data");
}

#[test]
fn identity_events_become_identity_commands() {
    let keys: Vec<String> = vec![];
    let alias = json!({"event": "$create_alias", "properties": {"token": "t", "distinct_id": "u", "alias": "a"}});
    let items = translate(Endpoint::Track, &alias, &keys, &Limits::default()).expect("ok").items;
    assert!(matches!(items[0].as_deref(), Ok([Command::Alias { .. }])));
    let identify = json!({"event": "$identify", "properties": {"token": "t", "distinct_id": "u", "$identified_id": "u", "$anon_id": "a"}});
    let items = translate(Endpoint::Track, &identify, &keys, &Limits::default()).expect("ok").items;
    assert!(matches!(items[0].as_deref(), Ok([Command::Identify { anon_distinct_id, .. }]) if anon_distinct_id == "a"));
}

#[test]
fn group_key_properties_drive_memberships() {
    let keys = vec!["company".to_string()];
    let engage = |op: Value| {
        let mut m = json!({"$token": "t", "$distinct_id": "u"});
        if let (Some(m), Some(op)) = (m.as_object_mut(), op.as_object()) {
            m.extend(op.clone());
        }
        translate(Endpoint::Engage, &m, &keys, &Limits::default()).expect("ok").items.remove(0).expect("valid")
    };
    assert!(matches!(
        &engage(json!({"$union": {"company": ["a", "b"]}}))[1..],
        [Command::Membership { op: MembershipOp::Add(_), .. }, Command::Membership { .. }]
    ));
    assert!(matches!(
        &engage(json!({"$remove": {"company": "a"}}))[1..],
        [Command::Membership { op: MembershipOp::Remove(_), .. }]
    ));
    assert!(
        matches!(&engage(json!({"$unset": ["company"]}))[1..], [Command::Membership { op: MembershipOp::Set(ids), .. }] if ids.is_empty())
    );
    assert_eq!(engage(json!({"$set": {"plan": "pro"}})).len(), 1, "other properties are only properties");
}

#[test]
fn bad_messages_name_the_field() {
    let keys: Vec<String> = vec![];
    let cases = [
        (Endpoint::Track, json!({"properties": {"distinct_id": "u"}}), "event"),
        (Endpoint::Track, json!({"event": "A", "properties": {"token": "t"}}), "distinct_id"),
        (Endpoint::Engage, json!({"$token": "t", "$distinct_id": "u"}), "operation"),
        (Endpoint::Engage, json!({"$token": "t", "$distinct_id": "u", "$add": {"n": "x"}}), "$add"),
        (Endpoint::Groups, json!({"$token": "t", "$group_key": "company", "$set": {}}), "$group_id"),
    ];
    for (e, data, field) in cases {
        let items = translate(e, &data, &keys, &Limits::default()).expect("a request").items;
        assert_eq!(items[0].as_ref().err().map(|e| e.field().to_string()), Some(field.to_string()), "{data}");
    }
}

#[test]
fn form_data_is_percent_decoded_and_refuses_invalid_utf8() {
    use super::form_data;
    assert_eq!(form_data(b"verbose=1&data=%7B%22a%22%3A+1%7D").ok().as_deref(), Some("{\"a\": 1}"));
    assert_eq!(form_data(b"data=caf%C3%A9").ok().as_deref(), Some("café"));
    let err = form_data(b"data=%FF%FE").expect_err("not UTF-8");
    assert_eq!((err.field(), err.code()), ("data", "invalid_field"));
    assert_eq!(form_data(b"data=%4").expect_err("short escape").field(), "data");
    assert_eq!(form_data(b"ip=1").expect_err("no data").code(), "missing_field");
}
