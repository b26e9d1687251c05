//! The Segment adapter against the batches the real analytics-python 2.4.0 and
//! @segment/analytics-node 3.1.0 sent (`fixtures/`).

use serde_json::{json, Value};
use troupe_core::{Command, Limits, MembershipOp, ProfileOp};

use super::{translate, SegmentOptions};
use troupe_core::JoinRule;

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
    let request = translate(body, route, &SegmentOptions::default(), &Limits::default()).expect("a request");
    request.items.into_iter().flat_map(|i| i.expect("every message is valid")).collect()
}

#[test]
fn both_clients_batches_become_the_same_commands() {
    for file in ["python", "node"] {
        let all = commands(&captured(file), None);
        let joined = all.iter().filter(|c| matches!(c, Command::Membership { op: MembershipOp::Set(g), group_type, .. } if g == &["acme_inc"] && group_type == "company")).count();
        assert_eq!(joined, 2, "{file}: each group call makes the group the user's (replace, the default)");
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
    let request = translate(&captured("python"), None, &SegmentOptions::default(), &Limits::default()).expect("ok");
    assert_eq!(request.key.as_deref(), Some("seg_write_key_abc"));
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
    let request = translate(&body, None, &SegmentOptions::default(), &Limits::default()).expect("a batch");
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
    assert!(translate(&json!({"sentAt": "x"}), None, &SegmentOptions::default(), &Limits::default()).is_err());
}

fn tracked(commands: &[Command]) -> Vec<&troupe_core::TrackEvent> {
    commands.iter().filter_map(|c| if let Command::Track(t) = c { Some(t) } else { None }).collect()
}

/// A page call as analytics.js sends it (Segment's spec, full context): every context field is
/// kept as an event property under its documented name; the message's own properties win.
#[test]
fn a_page_keeps_its_context_as_event_properties() {
    let page = json!({
        "type": "page", "userId": "u1", "name": "Pricing", "messageId": "m1",
        "properties": {"title": "Pricing (own title)", "plan": "pro"},
        "context": {
            "page": {"url": "https://app.example.com/pricing?x=1", "path": "/pricing", "referrer": "https://google.com/",
                     "title": "Pricing", "search": "?x=1"},
            "screen": {"width": 1440, "height": 900, "density": 2},
            "locale": "en-GB", "timezone": "Europe/London", "ip": "203.0.113.9",
            "userAgent": "Mozilla/5.0 (Macintosh)",
            "library": {"name": "analytics.js", "version": "5.2.0"},
            "campaign": {"name": "launch", "source": "newsletter", "medium": "email"},
            "os": {"name": "macOS", "version": "15.1"},
            "device": {"type": "desktop", "model": {"nested": "left out"}}
        }
    });
    let all = commands(&json!({"batch": [page]}), None);
    let [event] = tracked(&all)[..] else { panic!("one event: {all:?}") };
    assert_eq!(event.event, "$pageview");
    let p = &event.properties;
    for (name, want) in [
        ("$current_url", json!("https://app.example.com/pricing?x=1")),
        ("$pathname", json!("/pricing")),
        ("$referrer", json!("https://google.com/")),
        ("$title", json!("Pricing")),
        ("$search", json!("?x=1")),
        ("$screen_width", json!(1440)),
        ("$screen_height", json!(900)),
        ("$screen_density", json!(2)),
        ("$locale", json!("en-GB")),
        ("$timezone", json!("Europe/London")),
        ("$ip", json!("203.0.113.9")),
        ("$user_agent", json!("Mozilla/5.0 (Macintosh)")),
        ("$lib", json!("analytics.js")),
        ("$lib_version", json!("5.2.0")),
        ("utm_campaign", json!("launch")),
        ("utm_source", json!("newsletter")),
        ("utm_medium", json!("email")),
        ("$os", json!("macOS")),
        ("$os_version", json!("15.1")),
        ("$device_type", json!("desktop")),
        ("plan", json!("pro")),
        ("title", json!("Pricing (own title)")),
        ("name", json!("Pricing")),
    ] {
        assert_eq!(p.get(name), Some(&want), "{name} in {p:?}");
    }
    assert!(!p.contains_key("$device_model"), "an object where a scalar belongs is left out");
}

/// The real clients' context (library name and version) lands on their events, and a track
/// call's top-level `groupId` attributes the event like `context.groupId`.
#[test]
fn the_clients_library_and_a_top_level_group_id_are_kept() {
    for (file, library) in [("python", "analytics-python"), ("node", "@segment/analytics-node")] {
        let all = commands(&captured(file), None);
        let events = tracked(&all);
        assert!(!events.is_empty());
        for e in events {
            assert_eq!(e.properties.get("$lib"), Some(&json!(library)), "{file}: {e:?}");
            assert!(e.properties.get("$lib_version").is_some_and(Value::is_string), "{file}: {e:?}");
        }
    }
    let track = json!({"type": "track", "userId": "u1", "event": "Report Exported", "groupId": "acme_inc"});
    let all = commands(&json!({"batch": [track]}), None);
    let [event] = tracked(&all)[..] else { panic!("one event: {all:?}") };
    assert_eq!(event.groups, vec![("company".to_string(), vec!["acme_inc".to_string()])]);
}

#[test]
fn a_group_call_replaces_or_adds_as_the_project_says() {
    let body = json!({"type": "group", "userId": "ada", "groupId": "globex", "traits": {"plan": "pro"}});
    for (join, expected) in [
        (JoinRule::Replace, MembershipOp::Set(vec!["globex".into()])),
        (JoinRule::Add, MembershipOp::Add("globex".into())),
    ] {
        let options = SegmentOptions { group_type: "workspace".into(), join };
        let request = translate(&body, Some("group"), &options, &Limits::default()).expect("a request");
        let all: Vec<Command> = request.items.into_iter().flat_map(|i| i.expect("valid")).collect();
        assert!(
            matches!(&all[0], Command::Membership { distinct_id, group_type, op } if distinct_id == "ada" && group_type == "workspace" && *op == expected),
            "{join:?}: {all:?}"
        );
        assert!(
            matches!(&all[1], Command::GroupProfile { group_type, group_key, .. } if group_type == "workspace" && group_key == "globex")
        );
    }
}
