//! The Segment adapter against the batches the real analytics-python 2.4.0 and
//! @segment/analytics-node 3.1.0 sent (`fixtures/`).

use serde_json::{json, Value};
use troupe_core::{Command, Limits, MembershipOp, ProfileOp};

use super::translate;

fn captured(file: &str) -> Value {
    let text = match file {
        "python" => include_str!("../../fixtures/segment-python-2.4.0.jsonl"),
        _ => include_str!("../../fixtures/segment-node-3.1.0.jsonl"),
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|r| r["body"].clone())
        .next()
        .unwrap_or_default()
}

fn commands(body: &Value, route: Option<&str>) -> Vec<Command> {
    let request = translate(body, route, "company", &Limits::default()).expect("a request");
    request.items.into_iter().flat_map(|i| i.expect("every message is valid")).collect()
}

#[test]
fn both_clients_batches_become_the_same_commands() {
    for file in ["python", "node"] {
        let all = commands(&captured(file), None);
        let joined = all.iter().filter(|c| matches!(c, Command::Membership { op: MembershipOp::Add(g), group_type, .. } if g == "acme_inc" && group_type == "company")).count();
        assert_eq!(joined, 2, "{file}: each group call joins the user");
        let grouped = all.iter().find_map(|c| match c {
            Command::Track(e) if !e.groups.is_empty() => Some(e.groups.clone()),
            _ => None,
        });
        assert_eq!(grouped, Some(vec![("company".to_string(), vec!["acme_inc".to_string()])]), "{file}");
        assert!(all.iter().any(|c| matches!(c, Command::PersonProfile { op: ProfileOp::Set(t), .. } if t["email"] == json!("ada@example.com"))));
        assert!(all.iter().all(|c| !matches!(c, Command::Track(e) if e.id.is_none())), "{file}: messageId dedupes");
    }
}

#[test]
fn the_write_key_is_read_from_the_body() {
    let request = translate(&captured("python"), None, "company", &Limits::default()).expect("ok");
    assert_eq!(request.write_key.as_deref(), Some("seg_write_key_abc"));
}

#[test]
fn single_routes_identify_page_alias_and_group_without_a_user() {
    let identify = json!({"userId": "u", "anonymousId": "a", "traits": {"plan": "pro"}});
    assert!(
        matches!(&commands(&identify, Some("identify"))[0], Command::Identify { anon_distinct_id, .. } if anon_distinct_id == "a")
    );
    let page = json!({"anonymousId": "a", "name": "Pricing", "properties": {"url": "/pricing"}});
    let Command::Track(e) = &commands(&page, Some("page"))[0] else { panic!("a track") };
    assert_eq!(
        (e.event.as_str(), e.distinct_id.as_str(), e.properties["name"].clone()),
        ("$pageview", "a", json!("Pricing"))
    );
    let alias = json!({"userId": "u", "previousId": "a"});
    assert!(matches!(&commands(&alias, Some("alias"))[0], Command::Alias { alias, .. } if alias == "a"));
    let group = json!({"type": "group", "groupId": "acme", "traits": {"name": "Acme"}});
    let cmds = commands(&json!({"batch": [group]}), None);
    assert!(matches!(&cmds[..], [Command::GroupProfile { .. }]), "a group call without a user names no person");
}

#[test]
fn bad_messages_are_rejected_one_by_one_naming_the_field() {
    let body = json!({"batch": [
        {"type": "track", "userId": "u", "event": "ok"},
        {"type": "track", "event": "no user"},
        {"type": "track", "userId": "u"},
        {"type": "group", "userId": "u"},
        {"type": "nope", "userId": "u"},
        {"userId": "u", "event": "no type"},
    ]});
    let request = translate(&body, None, "company", &Limits::default()).expect("a batch");
    let fields: Vec<_> = request.items.iter().map(|i| i.as_ref().err().map(|e| e.field().to_string())).collect();
    assert_eq!(
        fields,
        vec![
            None,
            Some("userId".into()),
            Some("event".into()),
            Some("groupId".into()),
            Some("type".into()),
            Some("type".into())
        ]
    );
    assert!(translate(&json!({"sentAt": "x"}), None, "company", &Limits::default()).is_err());
}
