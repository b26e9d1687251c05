//! The rules of DESIGN.md "Semantics", one test (or a few) per rule.

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde_json::{json, Value};

use crate::*;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).single().unwrap_or_default()
}

fn state() -> ProjectState {
    ProjectState::new(1, Limits::default(), Duration::seconds(30))
}

fn props(v: Value) -> Properties {
    v.as_object().cloned().unwrap_or_default()
}

fn track(distinct_id: &str, name: &str) -> TrackEvent {
    TrackEvent { event: name.into(), distinct_id: distinct_id.into(), ..TrackEvent::default() }
}

fn member(s: &mut ProjectState, who: &str, group_type: &str, op: MembershipOp) {
    s.apply(Command::Membership { distinct_id: who.into(), group_type: group_type.into(), op }, t0())
        .expect("membership op applies");
}

fn stored(s: &mut ProjectState, event: TrackEvent) -> StoredEvent {
    s.apply(Command::Track(event), t0()).expect("event is stored");
    s.take_changes().events.pop().expect("one event")
}

fn slot(s: &ProjectState, name: &str) -> Slot {
    s.group_types().slot_of(name).expect("group type exists")
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn events_are_stamped_with_the_persons_current_memberships_of_every_type() {
    let mut s = state();
    member(&mut s, "u1", "company", MembershipOp::Set(ids(&["acme"])));
    member(&mut s, "u1", "team", MembershipOp::Add("t1".into()));
    member(&mut s, "u1", "team", MembershipOp::Add("t2".into()));
    let e = stored(&mut s, track("u1", "Report Exported"));
    assert_eq!(e.groups[&slot(&s, "company")], ids(&["acme"]));
    assert_eq!(e.groups[&slot(&s, "team")], ids(&["t1", "t2"]), "several ids per type");
}

#[test]
fn an_explicit_group_on_the_event_wins_for_its_type_only() {
    let mut s = state();
    member(&mut s, "u1", "company", MembershipOp::Set(ids(&["acme"])));
    member(&mut s, "u1", "team", MembershipOp::Set(ids(&["t1"])));
    let mut e = track("u1", "Chart Viewed");
    e.groups.push(("company".into(), ids(&["globex"])));
    let e = stored(&mut s, e);
    assert_eq!(e.groups[&slot(&s, "company")], ids(&["globex"]));
    assert_eq!(e.groups[&slot(&s, "team")], ids(&["t1"]));
    assert!(s.group(slot(&s, "company"), "globex").is_some(), "an explicit group exists as an entity");
}

#[test]
fn attribution_is_never_rewritten_by_later_membership_changes() {
    let mut s = state();
    member(&mut s, "u1", "company", MembershipOp::Set(ids(&["acme"])));
    let before = stored(&mut s, track("u1", "A"));
    member(&mut s, "u1", "company", MembershipOp::Set(ids(&["globex"])));
    let after = stored(&mut s, track("u1", "B"));
    let company = slot(&s, "company");
    assert_eq!(before.groups[&company], ids(&["acme"]));
    assert_eq!(after.groups[&company], ids(&["globex"]));
    assert!(s.take_changes().events.is_empty(), "no event is rewritten");
}

#[test]
fn remove_group_stops_attribution_to_that_group() {
    let mut s = state();
    member(&mut s, "u1", "company", MembershipOp::Set(ids(&["acme", "globex"])));
    member(&mut s, "u1", "company", MembershipOp::Remove("acme".into()));
    let e = stored(&mut s, track("u1", "A"));
    assert_eq!(e.groups[&slot(&s, "company")], ids(&["globex"]));
    member(&mut s, "u1", "company", MembershipOp::Remove("globex".into()));
    let e = stored(&mut s, track("u1", "A2"));
    assert!(e.groups.is_empty(), "an emptied type stamps nothing");
}

#[test]
fn untyped_group_ids_are_kept_for_resolution_at_query_time() {
    let mut s = state();
    let mut e = track("u1", "A");
    e.untyped_groups = ids(&["org_acme"]);
    let e = stored(&mut s, e);
    assert_eq!(e.untyped_groups, ids(&["org_acme"]));
    assert!(s.group_types().all().is_empty(), "no type is invented for an untyped id");
}

#[test]
fn group_type_limit_rejects_the_command_and_creates_nothing() {
    let mut s = ProjectState::new(1, Limits { max_group_types: 1, ..Limits::default() }, Duration::seconds(30));
    member(&mut s, "u1", "company", MembershipOp::Set(ids(&["acme"])));
    let mut e = track("u1", "A");
    e.groups.push(("team".into(), ids(&["t1"])));
    let err = s.apply(Command::Track(e), t0()).unwrap_err();
    assert_eq!(err.code(), "group_type_limit");
    assert_eq!(s.group_types().all().len(), 1);
    s.take_changes();
    let err = s
        .apply(
            Command::GroupProfile {
                group_type: "team".into(),
                group_key: "t1".into(),
                name: None,
                op: ProfileOp::Set(props(json!({"a": 1}))),
            },
            t0(),
        )
        .unwrap_err();
    assert_eq!(err.code(), "group_type_limit");
    assert!(s.take_changes().is_empty());
}

#[test]
fn group_only_writes_never_create_a_person() {
    let mut s = state();
    s.apply(
        Command::GroupProfile {
            group_type: "company".into(),
            group_key: "acme".into(),
            name: Some("Acme Inc".into()),
            op: ProfileOp::Set(props(json!({"plan": "enterprise"}))),
        },
        t0(),
    )
    .expect("group write applies");
    let changes = s.take_changes();
    assert!(changes.persons.is_empty() && changes.distinct_ids.is_empty());
    let g = s.group(slot(&s, "company"), "acme").expect("group exists");
    assert_eq!(g.name.as_deref(), Some("Acme Inc"));
    assert_eq!(g.properties["plan"], json!("enterprise"));
}

#[test]
fn group_name_follows_the_name_property_unless_given_explicitly() {
    let mut s = state();
    let set = |name: Option<&str>, p: Value| Command::GroupProfile {
        group_type: "company".into(),
        group_key: "acme".into(),
        name: name.map(String::from),
        op: ProfileOp::Set(props(p)),
    };
    s.apply(set(None, json!({"name": "Acme Inc"})), t0()).expect("applies");
    assert_eq!(s.group(0, "acme").and_then(|g| g.name.clone()).as_deref(), Some("Acme Inc"));
    s.apply(set(None, json!({"plan": "pro"})), t0()).expect("applies");
    assert_eq!(s.group(0, "acme").and_then(|g| g.name.clone()).as_deref(), Some("Acme Inc"));
}

#[test]
fn deleting_a_group_removes_its_profile_and_memberships_but_not_event_attribution() {
    let mut s = state();
    member(&mut s, "u1", "company", MembershipOp::Set(ids(&["acme", "globex"])));
    let before = stored(&mut s, track("u1", "A"));
    s.apply(
        Command::GroupProfile {
            group_type: "company".into(),
            group_key: "acme".into(),
            name: None,
            op: ProfileOp::Delete,
        },
        t0(),
    )
    .expect("delete applies");
    let company = slot(&s, "company");
    assert!(s.group(company, "acme").is_none());
    let person = s.person_by_distinct_id("u1").expect("person");
    assert_eq!(person.memberships[&company], ids(&["globex"]));
    let changes = s.take_changes();
    assert!(changes.groups.contains(&(company, "acme".to_string())));
    assert!(changes.events.is_empty());
    assert_eq!(before.groups[&company], ids(&["acme", "globex"]));
}

#[test]
fn deleting_a_group_type_frees_its_slot_and_clears_pending_attribution() {
    let mut s = state();
    member(&mut s, "u1", "org", MembershipOp::Set(ids(&["acme"])));
    s.apply(Command::Track(track("u1", "A")), t0()).expect("stored");
    s.apply(Command::DeleteGroupType { group_type: "org".into() }, t0()).expect("deleted");
    let mut e = track("u1", "B");
    e.groups.push(("team".into(), ids(&["t1"])));
    s.apply(Command::Track(e), t0()).expect("stored");
    let changes = s.take_changes();
    assert_eq!(changes.cleared_slots, vec![0]);
    assert!(changes.events[0].groups.is_empty(), "the deleted type's ids are gone");
    assert_eq!(changes.events[1].groups[&0], ids(&["t1"]), "the new type reuses slot 0");
    assert!(!s.person_by_distinct_id("u1").expect("person").memberships.contains_key(&0));
}

#[test]
fn identify_merges_the_anonymous_person_into_the_user_and_answers_memberships() {
    let mut s = state();
    s.apply(Command::Track(track("anon-1", "Landing Viewed")), t0()).expect("stored");
    s.apply(
        Command::PersonProfile {
            distinct_id: "anon-1".into(),
            op: ProfileOp::Set(props(json!({"utm": "ads", "plan": "free"}))),
        },
        t0(),
    )
    .expect("set");
    member(&mut s, "user-42", "company", MembershipOp::Set(ids(&["acme"])));
    s.apply(
        Command::PersonProfile { distinct_id: "user-42".into(), op: ProfileOp::Set(props(json!({"plan": "pro"}))) },
        t0(),
    )
    .expect("set");
    let out = s
        .apply(Command::Identify { anon_distinct_id: "anon-1".into(), distinct_id: "user-42".into() }, t0())
        .expect("identify");
    let Outcome::Identified { distinct_id, person_id, merged, group_memberships } = out else {
        panic!("identify answers Identified, got {out:?}")
    };
    assert_eq!(distinct_id, "user-42");
    assert!(merged);
    assert_eq!(group_memberships["company"], ids(&["acme"]));
    let anon = s.person_by_distinct_id("anon-1").expect("anon id still resolves");
    assert_eq!(anon.id, person_id, "both ids are one person");
    assert_eq!(anon.properties["plan"], json!("pro"), "the identified person's values win");
    assert_eq!(anon.properties["utm"], json!("ads"), "the anonymous person fills the gaps");
    assert!(anon.identified);
}

#[test]
fn two_identified_persons_are_never_merged() {
    let mut s = state();
    s.apply(Command::Identify { anon_distinct_id: "a".into(), distinct_id: "alice".into() }, t0()).expect("ok");
    s.apply(Command::Identify { anon_distinct_id: "b".into(), distinct_id: "bob".into() }, t0()).expect("ok");
    let out =
        s.apply(Command::Identify { anon_distinct_id: "alice".into(), distinct_id: "bob".into() }, t0()).expect("ok");
    assert!(matches!(out, Outcome::Identified { merged: false, .. }));
    let alice = s.person_by_distinct_id("alice").map(|p| p.id);
    assert_ne!(alice, s.person_by_distinct_id("bob").map(|p| p.id));
}

#[test]
fn identify_as_a_new_user_on_a_device_of_an_identified_user_creates_a_new_person() {
    let mut s = state();
    s.apply(Command::Identify { anon_distinct_id: "device".into(), distinct_id: "alice".into() }, t0()).expect("ok");
    s.apply(Command::Identify { anon_distinct_id: "device".into(), distinct_id: "bob".into() }, t0()).expect("ok");
    let alice = s.person_by_distinct_id("alice").map(|p| p.id);
    let bob = s.person_by_distinct_id("bob").map(|p| p.id);
    assert!(bob.is_some());
    assert_ne!(alice, bob);
    assert_eq!(s.person_by_distinct_id("device").map(|p| p.id), alice);
}

#[test]
fn alias_links_a_new_id_and_merges_an_anonymous_one() {
    let mut s = state();
    s.apply(Command::Track(track("user-1", "A")), t0()).expect("stored");
    s.apply(Command::Alias { distinct_id: "user-1".into(), alias: "email@x.io".into() }, t0()).expect("alias");
    let p = s.person_by_distinct_id("email@x.io").expect("alias resolves");
    assert_eq!(p.distinct_ids, ids(&["user-1", "email@x.io"]));
}

#[test]
fn a_merge_moves_charges_and_fills_missing_memberships() {
    let mut s = state();
    member(&mut s, "anon", "team", MembershipOp::Set(ids(&["t9"])));
    s.apply(
        Command::TrackCharge { distinct_id: "anon".into(), amount: 9.5, properties: Properties::new(), time: None },
        t0(),
    )
    .expect("charge");
    member(&mut s, "user", "company", MembershipOp::Set(ids(&["acme"])));
    s.take_changes();
    s.apply(Command::Identify { anon_distinct_id: "anon".into(), distinct_id: "user".into() }, t0()).expect("ok");
    let user = s.person_by_distinct_id("user").expect("person").clone();
    assert_eq!(s.memberships_by_type(&user).len(), 2);
    let changes = s.take_changes();
    assert!(changes.charges.iter().any(|c| matches!(c, ChargeChange::Move { to, .. } if *to == user.id)));
}

fn member_at(s: &mut ProjectState, who: &str, group_type: &str, op: MembershipOp, minutes: i64) {
    let command = Command::Membership { distinct_id: who.into(), group_type: group_type.into(), op };
    s.apply(command, t0() + Duration::minutes(minutes)).expect("membership op applies");
}

fn identify_at(s: &mut ProjectState, anon: &str, user: &str, minutes: i64) -> Person {
    let command = Command::Identify { anon_distinct_id: anon.into(), distinct_id: user.into() };
    s.apply(command, t0() + Duration::minutes(minutes)).expect("identify");
    assert!(s.invariant_violations().is_empty(), "{:?}", s.invariant_violations());
    s.person_by_distinct_id(user).expect("person").clone()
}

#[test]
fn a_merge_unions_the_groups_of_a_type_both_persons_joined_with_add_group() {
    let mut s = state();
    member_at(&mut s, "user", "team", MembershipOp::Add("design".into()), 0);
    // A team joined before signing in, on a new device.
    member_at(&mut s, "anon", "team", MembershipOp::Add("growth".into()), 5);
    member_at(&mut s, "anon", "team", MembershipOp::Add("design".into()), 6);
    let user = identify_at(&mut s, "anon", "user", 10);
    assert_eq!(s.memberships_by_type(&user)["team"], ids(&["design", "growth"]), "the user's first, once each");
    assert!(user.replaced_at.is_empty());
    let event = stored(&mut s, track("anon", "Clicked"));
    assert_eq!(event.groups[&slot(&s, "team")], ids(&["design", "growth"]), "events of either id carry both");
}

#[test]
fn a_merge_keeps_the_most_recent_set_group_of_a_type_whole() {
    let mut s = state();
    member_at(&mut s, "user", "workspace", MembershipOp::Set(ids(&["acme"])), 0);
    member_at(&mut s, "anon", "workspace", MembershipOp::Set(ids(&["globex"])), 5);
    let user = identify_at(&mut s, "anon", "user", 10);
    assert_eq!(s.memberships_by_type(&user)["workspace"], ids(&["globex"]), "the anonymous switch was later");

    member_at(&mut s, "anon-2", "workspace", MembershipOp::Set(ids(&["initech"])), 11);
    member_at(&mut s, "user", "workspace", MembershipOp::Set(ids(&["acme"])), 12);
    let user = identify_at(&mut s, "anon-2", "user", 13);
    assert_eq!(s.memberships_by_type(&user)["workspace"], ids(&["acme"]), "the user's switch was later");
}

#[test]
fn a_set_group_wins_a_type_over_add_groups_and_other_types_merge_separately() {
    let mut s = state();
    member_at(&mut s, "user", "workspace", MembershipOp::Add("acme".into()), 0);
    member_at(&mut s, "user", "workspace", MembershipOp::Add("globex".into()), 1);
    member_at(&mut s, "user", "team", MembershipOp::Add("design".into()), 1);
    member_at(&mut s, "anon", "workspace", MembershipOp::Set(ids(&["initech"])), 2);
    member_at(&mut s, "anon", "team", MembershipOp::Add("growth".into()), 2);
    let user = identify_at(&mut s, "anon", "user", 3);
    let by_type = s.memberships_by_type(&user);
    assert_eq!(by_type["workspace"], ids(&["initech"]), "a set_group states the whole set");
    assert_eq!(by_type["team"], ids(&["design", "growth"]));
    // The merged person remembers the set_group: a later merge of adds does not undo it.
    member_at(&mut s, "anon-2", "workspace", MembershipOp::Add("acme".into()), 4);
    let user = identify_at(&mut s, "anon-2", "user", 5);
    assert_eq!(s.memberships_by_type(&user)["workspace"], ids(&["initech"]));
}

#[test]
fn an_emptied_type_forgets_its_set_group_and_a_repeated_set_group_writes_nothing() {
    let mut s = state();
    member_at(&mut s, "user", "workspace", MembershipOp::Set(ids(&["acme"])), 0);
    s.take_changes();
    member_at(&mut s, "user", "workspace", MembershipOp::Set(ids(&["acme"])), 1);
    assert!(s.take_changes().persons.is_empty(), "the same set again changes nothing");
    member_at(&mut s, "user", "workspace", MembershipOp::Remove("acme".into()), 2);
    let user = s.person_by_distinct_id("user").expect("person");
    assert!(user.replaced_at.is_empty() && user.memberships.is_empty());
    member_at(&mut s, "anon", "workspace", MembershipOp::Add("globex".into()), 3);
    let user = identify_at(&mut s, "anon", "user", 4);
    assert_eq!(s.memberships_by_type(&user)["workspace"], ids(&["globex"]));
}

#[test]
fn a_failing_profile_op_does_not_create_the_person() {
    let mut s = state();
    s.apply(
        Command::PersonProfile { distinct_id: "u1".into(), op: ProfileOp::Set(props(json!({"plan": "pro"}))) },
        t0(),
    )
    .expect("set");
    s.take_changes();
    let op = ProfileOp::increment_from("value", [("plan".to_string(), json!(1))]).expect("a number");
    let err = s.apply(Command::PersonProfile { distinct_id: "u1".into(), op: op.clone() }, t0()).unwrap_err();
    assert_eq!(err.code(), "not_a_number");
    assert!(s
        .apply(
            Command::PersonProfile {
                distinct_id: "u2".into(),
                op: ProfileOp::Append(vec![("x".into(), vec![json!(1)])])
            },
            t0()
        )
        .is_ok());
    assert!(s.take_changes().persons.len() == 1, "only u2 was created");
}

#[test]
fn delete_person_removes_profile_ids_and_charges() {
    let mut s = state();
    s.apply(
        Command::TrackCharge { distinct_id: "u1".into(), amount: 5.0, properties: Properties::new(), time: None },
        t0(),
    )
    .expect("charge");
    s.apply(Command::PersonProfile { distinct_id: "u1".into(), op: ProfileOp::Delete }, t0()).expect("delete");
    assert!(s.person_by_distinct_id("u1").is_none());
    let changes = s.take_changes();
    assert!(matches!(changes.charges.last(), Some(ChargeChange::Clear(_))));
    assert!(changes.distinct_ids.contains("u1"));
}

#[test]
fn erasing_a_person_marks_every_one_of_its_ids_events_and_drops_pending_ones() {
    let mut s = state();
    s.apply(Command::Track(track("anon-1", "Visited")), t0()).expect("event");
    s.apply(Command::Identify { anon_distinct_id: "anon-1".into(), distinct_id: "ann".into() }, t0())
        .expect("identify");
    member(&mut s, "ann", "company", MembershipOp::Set(ids(&["acme"])));
    s.apply(Command::Track(track("bob", "Visited")), t0()).expect("someone else's event");
    s.apply(Command::ErasePerson { distinct_id: "anon-1".into(), keep_out: false }, t0())
        .expect("erase by any of its ids");
    assert!(s.person_by_distinct_id("ann").is_none() && s.person_by_distinct_id("anon-1").is_none());
    let changes = s.take_changes();
    assert_eq!(changes.erased_distinct_ids.iter().collect::<Vec<_>>(), ["ann", "anon-1"]);
    let pending: Vec<&str> = changes.events.iter().map(|e| e.distinct_id.as_str()).collect();
    assert_eq!(pending, ["bob"], "the erased person's pending event is dropped, others stay");
    assert!(changes.distinct_ids.contains("ann") && changes.distinct_ids.contains("anon-1"));

    // A retry, or an erase of an id whose person was deleted before, still erases its events.
    s.apply(Command::ErasePerson { distinct_id: "ann".into(), keep_out: false }, t0()).expect("retry");
    assert_eq!(s.take_changes().erased_distinct_ids.iter().collect::<Vec<_>>(), ["ann"]);
    assert!(s.invariant_violations().is_empty(), "{:?}", s.invariant_violations());
}

#[test]
fn anonymizing_a_person_keeps_it_and_its_events_under_one_pseudonym() {
    let mut s = state();
    s.apply(Command::Track(track("anon-1", "Visited")), t0()).expect("event");
    s.apply(Command::Identify { anon_distinct_id: "anon-1".into(), distinct_id: "ann".into() }, t0())
        .expect("identify");
    member(&mut s, "ann", "company", MembershipOp::Set(ids(&["acme"])));
    s.apply(
        Command::PersonProfile { distinct_id: "ann".into(), op: ProfileOp::Set(props(json!({"email": "a@x"}))) },
        t0(),
    )
    .expect("profile");
    let mut e = track("ann", "Paid");
    e.properties = props(json!({"email": "a@x", "plan": "pro"}));
    s.apply(Command::Track(e), t0()).expect("event");
    let person_id = s.person_by_distinct_id("ann").map(|p| p.id).expect("ann");
    let fields = vec!["email".to_string()];
    s.apply(Command::AnonymizePerson { distinct_id: "ann".into(), personal_fields: fields.clone() }, t0())
        .expect("anonymize");
    let pseudonym = crate::pseudonym(person_id);
    assert!(s.person_by_distinct_id("ann").is_none() && s.person_by_distinct_id("anon-1").is_none());
    let person = s.person_by_distinct_id(&pseudonym).cloned().expect("the person stays");
    assert_eq!(person.id, person_id);
    assert_eq!(person.distinct_ids, vec![pseudonym.clone()]);
    assert!(person.properties.is_empty());
    assert_eq!(person.memberships[&slot(&s, "company")], ids(&["acme"]), "memberships stay for group counts");
    let changes = s.take_changes();
    let pending: Vec<(&str, &str)> =
        changes.events.iter().map(|e| (e.distinct_id.as_str(), e.properties_json.as_str())).collect();
    assert_eq!(pending, [(pseudonym.as_str(), "{}"), (pseudonym.as_str(), r#"{"plan":"pro"}"#)]);
    assert_eq!(changes.anonymized.len(), 1);
    let mut former = changes.anonymized[0].former_ids.clone();
    former.sort();
    assert_eq!(former, ["ann", "anon-1"]);
    // Stable: anonymizing again changes nothing and gives the same pseudonym.
    s.apply(Command::AnonymizePerson { distinct_id: pseudonym.clone(), personal_fields: fields }, t0()).expect("again");
    assert_eq!(s.take_changes().anonymized[0].former_ids, Vec::<String>::new());
    assert!(s.invariant_violations().is_empty(), "{:?}", s.invariant_violations());
}

#[test]
fn a_retried_event_is_stored_once() {
    let mut s = state();
    let mut e = track("u1", "A");
    e.id = Some("evt-1".into());
    assert!(matches!(s.apply(Command::Track(e.clone()), t0()), Ok(Outcome::Stored { .. })));
    assert_eq!(s.apply(Command::Track(e), t0() + Duration::days(3)), Ok(Outcome::Duplicate));
    let id_less = track("u1", "B");
    assert!(matches!(s.apply(Command::Track(id_less.clone()), t0()), Ok(Outcome::Stored { .. })));
    assert_eq!(s.apply(Command::Track(id_less), t0() + Duration::seconds(2)), Ok(Outcome::Duplicate));
    assert_eq!(s.take_changes().events.len(), 2);
}

#[test]
fn a_historical_event_moves_the_persons_first_seen_back() {
    let mut s = state();
    s.apply(Command::Track(track("u1", "now")), t0()).expect("stored");
    let mut old = track("u1", "then");
    old.timestamp = Some(t0() - Duration::days(30));
    s.apply(Command::Track(old), t0()).expect("stored");
    assert_eq!(s.person_by_distinct_id("u1").map(|p| p.created_at), Some(t0() - Duration::days(30)));
}

#[test]
fn invalid_events_are_rejected_naming_the_field() {
    let mut s = state();
    let err = s.apply(Command::Track(track("u1", &"x".repeat(201))), t0()).unwrap_err();
    assert_eq!((err.code(), err.field()), ("too_long", "event"));
    let err = s.apply(Command::Track(track("", "A")), t0()).unwrap_err();
    assert_eq!((err.code(), err.field()), ("missing_field", "distinct_id"));
    assert!(s.take_changes().is_empty());
}

#[test]
fn untyped_group_ids_join_the_groups_with_that_key_of_any_type() {
    let mut s = state();
    for (group_type, key) in [("company", "acme"), ("workspace", "acme"), ("team", "t1")] {
        s.apply(
            Command::GroupProfile {
                group_type: group_type.into(),
                group_key: key.into(),
                name: None,
                op: ProfileOp::Set(Properties::new()),
            },
            t0(),
        )
        .expect("group");
    }
    s.apply(Command::JoinUntypedGroups { distinct_id: "u1".into(), group_keys: ids(&["acme", "unknown"]) }, t0())
        .expect("joins");
    let person = s.person_by_distinct_id("u1").expect("the person exists").clone();
    assert_eq!(
        s.memberships_by_type(&person).into_iter().collect::<Vec<_>>(),
        vec![("company".to_string(), ids(&["acme"])), ("workspace".to_string(), ids(&["acme"]))]
    );
    let e = stored(&mut s, track("u1", "A"));
    assert_eq!(e.groups.len(), 2, "later events are attributed through the memberships");
}

fn group(s: &mut ProjectState, group_type: &str, key: &str) {
    let op = ProfileOp::Set(props(json!({"name": key})));
    let command = Command::GroupProfile { group_type: group_type.into(), group_key: key.into(), name: None, op };
    s.apply(command, t0()).expect("group");
}

#[test]
fn a_key_joined_without_a_type_before_its_group_exists_becomes_a_membership_when_it_is_created() {
    let mut s = state();
    s.apply(Command::JoinUntypedGroups { distinct_id: "hedy".into(), group_keys: ids(&["org_wonka"]) }, t0())
        .expect("joins");
    let hedy = s.person_by_distinct_id("hedy").expect("person").clone();
    assert!(hedy.memberships.is_empty());
    assert_eq!(hedy.pending_groups, ids(&["org_wonka"]));
    let e = stored(&mut s, track("hedy", "Opened"));
    assert_eq!(e.untyped_groups, ids(&["org_wonka"]), "meanwhile events carry the key untyped");

    // An anonymous device's wait is merged into the user too.
    s.apply(Command::JoinUntypedGroups { distinct_id: "anon".into(), group_keys: ids(&["lab-9"]) }, t0())
        .expect("joins");
    s.apply(Command::Identify { anon_distinct_id: "anon".into(), distinct_id: "hedy".into() }, t0()).expect("merge");
    s.take_changes();

    group(&mut s, "company", "org_wonka");
    let changes = s.take_changes();
    let hedy = s.person_by_distinct_id("hedy").expect("person").clone();
    assert!(changes.persons.contains(&hedy.id), "the joined person is written");
    assert_eq!(s.memberships_by_type(&hedy)["company"], ids(&["org_wonka"]));
    assert_eq!(hedy.pending_groups, ids(&["lab-9"]));
    group(&mut s, "team", "lab-9");
    group(&mut s, "workspace", "org_wonka");
    let hedy = s.person_by_distinct_id("hedy").expect("person").clone();
    let by_type = s.memberships_by_type(&hedy);
    assert_eq!(by_type["team"], ids(&["lab-9"]));
    assert!(!by_type.contains_key("workspace"), "the key went to the first group created with it");
    assert!(hedy.pending_groups.is_empty());
    let e = stored(&mut s, track("hedy", "Signed In"));
    assert!(e.untyped_groups.is_empty());
    assert_eq!(e.groups.len(), 2, "typed attribution from then on");
    assert!(s.invariant_violations().is_empty());
}

#[test]
fn a_person_restored_while_waiting_for_a_key_joins_its_group_when_created() {
    let mut first = state();
    first
        .apply(Command::JoinUntypedGroups { distinct_id: "hedy".into(), group_keys: ids(&["org_wonka"]) }, t0())
        .expect("joins");
    let stored_person = first.person_by_distinct_id("hedy").expect("person").clone();
    let mut s = state();
    s.restore_person(stored_person);
    group(&mut s, "company", "org_wonka");
    let hedy = s.person_by_distinct_id("hedy").expect("person").clone();
    assert_eq!(s.memberships_by_type(&hedy)["company"], ids(&["org_wonka"]));
}

#[test]
fn properties_are_stored_as_json_text_whether_prepared_before_the_writer_or_not() {
    let mut event = track("u1", "Plan Chosen");
    event.id = Some("e-1".into());
    event.properties = props(json!({"plan": "pro", "seats": 3}));
    let plain = stored(&mut state(), event.clone());
    let mut s = state();
    s.apply(PreparedCommand::from(Command::Track(event)), t0()).expect("prepared event is stored");
    let prepared = s.take_changes().events.pop().expect("one event");
    assert_eq!(plain.properties_json, r#"{"plan":"pro","seats":3}"#);
    assert_eq!(prepared, plain);
}

#[test]
fn a_prepared_event_over_the_properties_limit_is_refused_and_leaves_nothing() {
    let mut s = ProjectState::new(1, Limits { max_properties_bytes: 20, ..Limits::default() }, Duration::seconds(30));
    let mut event = track("u1", "Plan Chosen");
    event.properties = props(json!({"note": "more than twenty bytes of text"}));
    let refused = s.apply(PreparedCommand::from(Command::Track(event)), t0());
    assert!(matches!(refused, Err(CoreError::TooLarge { ref field, .. }) if field == "properties"), "{refused:?}");
    assert!(s.take_changes().is_empty(), "no person, no event");
}

#[test]
fn identical_id_less_events_are_one_event_within_the_retry_window_when_prepared() {
    let mut s = state();
    let mut event = track("u1", "Saved");
    event.properties = props(json!({"k": 1}));
    let first = s.apply(PreparedCommand::from(Command::Track(event.clone())), t0());
    let retry = s.apply(PreparedCommand::from(Command::Track(event.clone())), t0() + Duration::seconds(2));
    event.properties = props(json!({"k": 2}));
    let other = s.apply(PreparedCommand::from(Command::Track(event)), t0() + Duration::seconds(2));
    assert!(matches!(first, Ok(Outcome::Stored { .. })));
    assert_eq!(retry, Ok(Outcome::Duplicate));
    assert!(matches!(other, Ok(Outcome::Stored { .. })), "other properties: another event");
}

#[test]
fn a_type_named_twice_on_an_event_gets_the_ids_of_both_once_each_in_order() {
    let mut s = state();
    member(&mut s, "u1", "company", MembershipOp::Set(ids(&["acme"])));
    let mut e = track("u1", "Invite Sent");
    e.groups.push(("team".into(), ids(&["t1", "t2", "t1"])));
    e.groups.push(("team".into(), ids(&["t3", "t2"])));
    e.groups.push(("company".into(), Vec::new()));
    let e = stored(&mut s, e);
    assert_eq!(e.groups[&slot(&s, "team")], ids(&["t1", "t2", "t3"]));
    assert!(!e.groups.contains_key(&slot(&s, "company")), "an empty explicit list clears the type on the event");
    assert!(s.group(slot(&s, "team"), "t3").is_some(), "named groups exist");
}

fn increment(who: &str, by: i64) -> Command {
    Command::PersonProfile {
        distinct_id: who.into(),
        op: ProfileOp::Increment(vec![("logins".into(), serde_json::Number::from(by))]),
    }
}

fn logins(s: &ProjectState, who: &str) -> Value {
    s.person_by_distinct_id(who).and_then(|p| p.properties.get("logins").cloned()).unwrap_or(Value::Null)
}

#[test]
fn a_resent_guarded_write_applies_once_by_client_id_forever_and_by_content_within_the_window() {
    let mut s = state();
    let by_id = increment("u1", 1).once(Some("req-1"), "");
    assert_eq!(s.apply(by_id.clone(), t0()), Ok(Outcome::Applied));
    assert_eq!(s.apply(by_id.clone(), t0() + Duration::days(30)), Ok(Outcome::Duplicate));
    assert_eq!(logins(&s, "u1"), json!(1));
    // Another id is another write.
    assert_eq!(s.apply(increment("u1", 1).once(Some("req-2"), ""), t0()), Ok(Outcome::Applied));
    assert_eq!(logins(&s, "u1"), json!(2));

    let by_content = increment("u2", 5).once(None, "");
    assert_eq!(s.apply(by_content.clone(), t0()), Ok(Outcome::Applied));
    assert_eq!(s.apply(by_content.clone(), t0() + Duration::seconds(29)), Ok(Outcome::Duplicate));
    assert_eq!(logins(&s, "u2"), json!(5));
    assert_eq!(s.apply(by_content.clone(), t0() + Duration::seconds(31)), Ok(Outcome::Applied));
    assert_eq!(logins(&s, "u2"), json!(10), "past the window it is a new write");
    // A nonce (Mixpanel's $time) tells genuine repeats apart.
    assert_eq!(s.apply(increment("u2", 5).once(None, "1795421785.5431"), t0()), Ok(Outcome::Applied));
    assert_eq!(logins(&s, "u2"), json!(15));
}

#[test]
fn idempotent_writes_are_not_guarded_and_a_refused_guarded_write_can_be_resent() {
    let set = Command::PersonProfile { distinct_id: "u".into(), op: ProfileOp::Set(props(json!({"logins": "x"}))) };
    assert_eq!(set.clone().once(None, ""), set, "a set needs no guard");
    let mut s = state();
    s.apply(set, t0()).expect("set");
    let guarded = increment("u", 1).once(Some("r"), "");
    assert!(s.apply(guarded.clone(), t0()).is_err(), "logins is text: the increment is refused");
    s.apply(Command::PersonProfile { distinct_id: "u".into(), op: ProfileOp::Unset(vec!["logins".into()]) }, t0())
        .expect("unset");
    assert_eq!(s.apply(guarded, t0()), Ok(Outcome::Applied), "the refused write was not remembered");
}

#[test]
fn retry_keys_are_persisted_and_restored_so_a_resend_after_a_restart_applies_once() {
    let mut s = state();
    let charge =
        Command::TrackCharge { distinct_id: "u".into(), amount: 49.0, properties: Properties::new(), time: None };
    s.apply(charge.clone().once(None, ""), t0()).expect("charge");
    s.apply(increment("u", 1).once(Some("req-9"), ""), t0()).expect("increment");
    s.apply(Command::Track(track("u", "id-less")), t0()).expect("event");
    let records = s.take_changes().retry_keys;
    assert_eq!(records.len(), 3, "two guarded writes and one id-less event: {records:?}");
    assert_eq!(records.iter().filter(|r| r.forever).count(), 1, "only the client id is kept forever");

    // A new process: the same records loaded, then the client's resends.
    let mut restarted = state();
    restarted.restore_retry_keys(records.clone(), t0() + Duration::seconds(5));
    let now = t0() + Duration::seconds(5);
    assert_eq!(restarted.apply(charge.clone().once(None, ""), now), Ok(Outcome::Duplicate));
    assert_eq!(restarted.apply(increment("u", 1).once(Some("req-9"), ""), now), Ok(Outcome::Duplicate));
    assert_eq!(restarted.apply(Command::Track(track("u", "id-less")), now), Ok(Outcome::Duplicate));
    // Restored after the window: content keys are gone, ids are not.
    let mut later = state();
    let much_later = t0() + Duration::minutes(5);
    later.restore_retry_keys(records, much_later);
    assert_eq!(later.apply(charge.once(None, ""), much_later), Ok(Outcome::Applied));
    assert_eq!(later.apply(increment("u", 1).once(Some("req-9"), ""), much_later), Ok(Outcome::Duplicate));
}
