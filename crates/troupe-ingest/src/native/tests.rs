//! The native adapter against the requests the real `trodo-python` 2.26.2 sent (captured in
//! `fixtures/`), and its error answers.

use serde_json::{json, Value};
use troupe_core::{Command, Limits, MembershipOp, ProfileOp};

use super::batch_items;

/// One write's commands or its error, as the single routes answer.
fn translate(kind: &str, body: &Value, limits: &Limits) -> crate::ItemResult {
    super::translate(kind, body, limits).and_then(crate::Translated::into_single)
}

/// Each captured request as (route kind, body).
fn captured() -> Vec<(String, Value)> {
    include_str!("../../fixtures/trodo-python-2.26.2.jsonl")
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .map(|req| {
            let path = req["path"].as_str().unwrap_or_default();
            let kind = path.trim_start_matches("/api/").trim_start_matches("sdk/").to_string();
            (kind, req["body"].clone())
        })
        .collect()
}

fn one(kind: &str, body: Value) -> Command {
    let mut commands = translate(kind, &body, &Limits::default()).expect("translates");
    assert_eq!(commands.len(), 1, "{kind}");
    let command = commands.remove(0);
    // Only writes that would count twice carry a resend guard (events have their own ids).
    let unguarded = command.clone().into_unguarded();
    let needs_guard = !unguarded.is_idempotent() && !matches!(unguarded, Command::Track(_));
    assert_eq!(matches!(command, Command::Once { .. }), needs_guard, "{kind}");
    command.into_unguarded()
}

#[test]
fn every_captured_request_translates_without_error() {
    let requests = captured();
    assert!(requests.len() >= 14, "fixture holds the whole session");
    for (kind, body) in requests {
        let result = if kind == "events/bulk" {
            batch_items(&body, "events", &Limits::default())
                .map(|batch| batch.items.into_iter().map(|i| i.map(|_| ())).collect())
        } else {
            translate(&kind, &body, &Limits::default()).map(|_| vec![Ok(())])
        };
        let items = result.unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert!(items.iter().all(Result::is_ok), "{kind}");
    }
}

#[test]
fn a_captured_event_becomes_a_track_of_the_user_with_its_properties() {
    let (_, body) = captured().into_iter().find(|(k, _)| k == "events").expect("an event");
    let Command::Track(e) = one("events", body) else { panic!("a track") };
    assert_eq!((e.event.as_str(), e.distinct_id.as_str()), ("Signed In", "user_42"));
    assert_eq!(e.properties["method"], json!("password"));
    assert_eq!(e.properties["$session_id"], json!("server:user_42"));
    assert!(e.id.is_none() && e.timestamp.is_none() && e.groups.is_empty());
}

#[test]
fn group_routes_become_memberships_and_group_profile_ops() {
    let c = one("groups/set_group", json!({"userId": "u", "groupKey": "team", "groupId": ["t1", "t2"]}));
    assert_eq!(
        c,
        Command::Membership {
            distinct_id: "u".into(),
            group_type: "team".into(),
            op: MembershipOp::Set(vec!["t1".into(), "t2".into()])
        }
    );
    let c = one("groups/add_group", json!({"userId": "u", "groupKey": "team", "groupId": "t3"}));
    assert!(matches!(c, Command::Membership { op: MembershipOp::Add(ref id), .. } if id == "t3"));
    let c = one(
        "groups/profile/union",
        json!({"userId": "u", "groupKey": "company", "groupId": "acme", "listName": "features", "values": ["sso"]}),
    );
    assert_eq!(
        c,
        Command::GroupProfile {
            group_type: "company".into(),
            group_key: "acme".into(),
            name: None,
            op: ProfileOp::Union(vec![("features".into(), vec![json!("sso")])])
        }
    );
    let c = one(
        "groups/profile/remove",
        json!({"groupKey": "company", "groupId": "acme", "listName": "features", "value": "sso"}),
    );
    assert!(matches!(c, Command::GroupProfile { op: ProfileOp::Remove(_), .. }));
}

#[test]
fn people_routes_cover_every_operation() {
    let base = |extra: Value| {
        let mut b = json!({"siteId": "s", "userId": "u"});
        if let (Some(b), Some(extra)) = (b.as_object_mut(), extra.as_object()) {
            b.extend(extra.clone());
        }
        b
    };
    let ops = [
        ("set", json!({"properties": {"a": 1}}), "set"),
        ("set_once", json!({"properties": {"a": 1}}), "set_once"),
        ("unset", json!({"keys": ["a"]}), "unset"),
        ("increment", json!({"key": "logins", "amount": 2}), "increment"),
        ("append", json!({"key": "l", "values": [1, 1]}), "append"),
        ("union", json!({"key": "l", "values": [1]}), "union"),
        ("remove", json!({"key": "l", "values": [1]}), "remove"),
        ("delete_user", json!({}), "delete"),
    ];
    for (route, extra, op_name) in ops {
        let Command::PersonProfile { distinct_id, op } = one(&format!("people/{route}"), base(extra)) else {
            panic!("{route}")
        };
        assert_eq!((distinct_id.as_str(), op.name()), ("u", op_name));
    }
    let charge = one("people/track_charge", base(json!({"amount": 9.99, "properties": {"sku": "x"}})));
    assert!(matches!(charge, Command::TrackCharge { amount, .. } if amount == 9.99));
    assert!(matches!(one("people/clear_charges", base(json!({}))), Command::ClearCharges { .. }));
}

#[test]
fn identify_merges_the_current_id_into_the_identified_one() {
    let c =
        one("identify", json!({"siteId": "s", "userId": "anon-1", "distinctId": "anon-1", "identifyId": "user_42"}));
    assert_eq!(c, Command::Identify { anon_distinct_id: "anon-1".into(), distinct_id: "user_42".into() });
}

#[test]
fn users_upsert_sets_and_sets_once() {
    let body = json!({"distinctId": "u", "properties": {"plan": "pro"}, "setOnce": {"first": 1}});
    assert_eq!(translate("users/upsert", &body, &Limits::default()).expect("ok").len(), 2);
    let only = translate("users/upsert", &json!({"distinctId": "u"}), &Limits::default()).expect("ok");
    assert!(
        matches!(&only[..], [Command::PersonProfile { op: ProfileOp::Set(p), .. }] if p.is_empty()),
        "ensures the user exists"
    );
}

#[test]
fn users_upsert_keeps_only_the_allow_listed_fixed_properties() {
    let fixed =
        json!({"last_location_country": "IN", "first_location_city": "Pune", "browser": "Chrome", "utm_source": "x"});
    let body = json!({"distinctId": "u", "fixedProperties": fixed});
    let commands = translate("users/upsert", &body, &Limits::default()).expect("ok");
    let ops: Vec<&ProfileOp> = commands
        .iter()
        .filter_map(|c| match c {
            Command::PersonProfile { op, .. } => Some(op),
            _ => None,
        })
        .collect();
    assert!(
        matches!(ops[0], ProfileOp::Set(p) if *p == json!({"last_location_country": "IN"}).as_object().cloned().unwrap_or_default())
    );
    assert!(
        matches!(ops[1], ProfileOp::SetOnce(p) if *p == json!({"first_location_city": "Pune"}).as_object().cloned().unwrap_or_default())
    );
    let (applied, skipped) = super::upsert_fixed_keys(&body);
    assert_eq!(
        (applied, skipped),
        (
            vec!["last_location_country".to_string(), "first_location_city".to_string()],
            vec!["browser".to_string(), "utm_source".to_string()]
        )
    );
}

#[test]
fn a_wallet_address_is_the_latest_and_one_of_the_users_wallets() {
    let body = json!({"siteId": "s", "sessionId": "x", "userId": "u", "distinctId": "u", "walletAddress": "0xA11CE"});
    let commands = translate("wallet-address", &body, &Limits::default()).expect("ok");
    assert!(
        matches!(&commands[0], Command::PersonProfile { op: ProfileOp::Set(p), .. } if p["wallet_address"] == json!("0xA11CE"))
    );
    assert!(
        matches!(&commands[1], Command::PersonProfile { op: ProfileOp::Union(u), .. } if u[0].0 == "wallet_addresses")
    );
    let missing = translate("wallet-address", &json!({"userId": "u"}), &Limits::default());
    assert!(missing.is_err_and(|e| e.field() == "walletAddress"));
}

#[test]
fn errors_name_the_wire_field() {
    let limits = Limits::default();
    let big = "x".repeat(33_000);
    let cases = [
        ("events", json!({"user_id": "u"}), "event_name", "missing_field"),
        ("events", json!({"event_name": "x"}), "user_id", "missing_field"),
        ("events", json!({"event_name": "x", "user_id": "u".repeat(201)}), "user_id", "too_long"),
        (
            "events",
            json!({"event_name": "x", "user_id": "u", "custom_properties": {"b": big}}),
            "custom_properties",
            "too_large",
        ),
        (
            "events",
            json!({"event_name": "x", "user_id": "u", "custom_properties": [1]}),
            "custom_properties",
            "invalid_field",
        ),
        ("groups/set_group", json!({"userId": "u", "groupKey": "company"}), "groupId", "missing_field"),
        (
            "groups/profile/increment",
            json!({"groupKey": "c", "groupId": "a", "property": "seats", "value": "5"}),
            "value",
            "invalid_field",
        ),
        ("people/increment", json!({"userId": "u", "key": "n", "amount": "x"}), "amount", "invalid_field"),
        ("nope", json!({}), "type", "invalid_field"),
    ];
    for (kind, body, field, code) in cases {
        let err = translate(kind, &body, &limits).expect_err(kind);
        assert_eq!((err.field(), err.code()), (field, code), "{kind}: {err}");
    }
    assert_eq!(translate("events", &json!([1]), &limits).unwrap_err().field(), "body");
}

#[test]
fn explicit_groups_and_event_ids_are_accepted_as_extensions() {
    let body = json!({
        "event_name": "x", "user_id": "u", "event_id": "e-1", "timestamp": 1795421762985_i64,
        "groups": {"company": "acme", "team": ["t1", "t2"]}
    });
    let Command::Track(e) = one("events", body) else { panic!("a track") };
    assert_eq!(e.id.as_deref(), Some("e-1"));
    assert!(e.timestamp.is_some());
    assert_eq!(
        e.groups,
        vec![("company".into(), vec!["acme".into()]), ("team".into(), vec!["t1".into(), "t2".into()])]
    );
}

#[test]
fn a_batch_keeps_valid_items_and_rejects_agent_runs() {
    let body = json!({"items": [
        {"type": "events", "event_name": "A", "user_id": "u"},
        {"run_id": "r1", "spans": []},
        {"type": "groups/add_group", "userId": "u", "groupKey": "team", "groupId": "t1"},
        {"event_name": "no type"}
    ]});
    let items = batch_items(&body, "items", &Limits::default()).expect("a batch").items;
    let ok: Vec<bool> = items.iter().map(Result::is_ok).collect();
    assert_eq!(ok, vec![true, false, true, false]);
}

#[test]
fn every_route_name_parses_to_its_write_kind_and_nothing_else_does() {
    use super::{GroupOp, MembershipKind, PeopleOp, WriteKind};
    let known = [
        ("events", WriteKind::Event),
        ("identify", WriteKind::Identify),
        ("track", WriteKind::Session),
        ("reset", WriteKind::Session),
        ("users/upsert", WriteKind::UsersUpsert),
        ("wallet-address", WriteKind::WalletAddress),
        ("people/delete_user", WriteKind::People(PeopleOp::Delete)),
        ("people/track_charge", WriteKind::People(PeopleOp::TrackCharge)),
        ("groups/set_group", WriteKind::Membership(MembershipKind::Set)),
        ("groups/profile/union", WriteKind::GroupProfile(GroupOp::Union)),
    ];
    for (name, kind) in known {
        assert_eq!(WriteKind::parse(name), Some(kind), "{name}");
    }
    for unknown in ["people/track", "groups/profile/set_group", "groups/union", "runs", "people/", "", "events/bulk"] {
        assert_eq!(WriteKind::parse(unknown), None, "{unknown}");
        let error = translate(unknown, &json!({}), &Limits::default()).expect_err("refused");
        assert_eq!(error.field(), "type", "{unknown}: {error}");
    }
}
