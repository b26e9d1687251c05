//! Cases every backend must pass with identical answers. A backend instantiates them all with
//! [`crate::store_conformance_suite!`], giving an async constructor of a fresh, empty store.

use chrono::{Duration, TimeZone, Utc};
use serde_json::{json, Value};
use troupe_core::{Command, MembershipOp, Outcome, ProfileOp, ProjectId, Properties, TrackEvent};

use crate::{EventQuery, GroupQuery, GroupSort, NewProject, PersonQuery, Store};

/// Instantiate every conformance case as a `#[tokio::test]`. `$make` is an async fn (or closure)
/// returning `(store, guard)`; the guard (e.g. a temp dir) lives until the case ends.
#[macro_export]
macro_rules! store_conformance_suite {
    ($make:expr) => {
        $crate::store_conformance_suite!(@cases $make;
            memberships_stamp_events_and_show_on_profiles,
            attribution_is_historical,
            explicit_and_several_groups_per_type,
            profile_ops_persist,
            identity_merge_counts_the_person_once,
            identity_merge_weighs_memberships_by_how_they_were_written,
            persons_are_stored_once_however_often_they_change,
            retried_events_are_stored_once,
            text_with_control_characters_round_trips,
            resent_profile_writes_apply_once,
            batches_keep_valid_items,
            group_list_search_sort_and_pages,
            deleting_a_group_removes_memberships,
            group_type_rename_and_delete,
            erasing_a_person_removes_it_and_every_event_of_its_ids,
            anonymizing_a_person_keeps_its_events_under_a_pseudonym,
            erasing_a_group_takes_it_off_events_or_deletes_them,
            expiring_events_drops_those_before_the_cutoff,
            a_person_erased_for_good_stays_out,
            an_export_holds_exactly_the_persons_data,
            projects_are_isolated);
    };
    (@cases $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let (store, _guard) = ($make)().await;
                $crate::conformance::$case(&store).await;
            }
        )*
    };
}

pub async fn project(store: &dyn Store, name: &str) -> ProjectId {
    store
        .create_project(NewProject {
            name: name.into(),
            ingestion_key: format!("ingest-{name}"),
            secret_key_hash: format!("hash-{name}"),
        })
        .await
        .expect("project is created")
        .id
}

fn props(v: Value) -> Properties {
    v.as_object().cloned().unwrap_or_default()
}

fn ids(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn event(who: &str, name: &str, minutes: i64) -> TrackEvent {
    let base = Utc.with_ymd_and_hms(2026, 11, 2, 9, 0, 0).single().unwrap_or_default();
    TrackEvent {
        event: name.into(),
        distinct_id: who.into(),
        timestamp: Some(base + Duration::minutes(minutes)),
        ..TrackEvent::default()
    }
}

fn membership(who: &str, group_type: &str, op: MembershipOp) -> Command {
    Command::Membership { distinct_id: who.into(), group_type: group_type.into(), op }
}

async fn apply_ok(store: &dyn Store, project: ProjectId, commands: Vec<Command>) -> Vec<Outcome> {
    store
        .apply(project, commands)
        .await
        .expect("store applies the batch")
        .into_iter()
        .map(|r| r.expect("every command is valid"))
        .collect()
}

async fn recent(store: &dyn Store, project: ProjectId) -> Vec<crate::EventRow> {
    store.events(project, EventQuery { limit: 100, ..EventQuery::default() }).await.expect("events")
}

pub async fn memberships_stamp_events_and_show_on_profiles(store: &dyn Store) {
    let p = project(store, "p").await;
    apply_ok(
        store,
        p,
        vec![
            membership("u1", "team", MembershipOp::Add("t1".into())),
            membership("u1", "active_team", MembershipOp::Set(ids(&["t1"]))),
            Command::Track(event("u1", "Project Created", 1)),
            Command::GroupProfile {
                group_type: "team".into(),
                group_key: "t1".into(),
                name: None,
                op: ProfileOp::Set(props(json!({"name": "Core", "size": 4}))),
            },
        ],
    )
    .await;
    let types: Vec<_> =
        store.group_types(p).await.expect("types").into_iter().map(|t| (t.group_type, t.group_count)).collect();
    assert_eq!(types, vec![("team".to_string(), 1), ("active_team".to_string(), 1)]);
    assert_eq!(store.group_type_names(p).await.expect("names"), vec!["team", "active_team"], "names by slot");

    let events = recent(store, p).await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].groups["team"], ids(&["t1"]));
    assert_eq!(events[0].groups["active_team"], ids(&["t1"]));

    let group = store.group(p, "team", "t1", 10).await.expect("read").expect("group exists");
    assert_eq!(group.group.name.as_deref(), Some("Core"));
    assert_eq!(group.group.properties, props(json!({"name": "Core", "size": 4})));
    assert_eq!(group.members.iter().map(|m| m.distinct_ids.clone()).collect::<Vec<_>>(), vec![ids(&["u1"])]);
    assert_eq!(group.recent_events.len(), 1);

    let person = store.person(p, "u1", 10).await.expect("read").expect("person exists");
    assert_eq!(person.person.group_memberships["team"], ids(&["t1"]));
    assert_eq!(person.recent_events.len(), 1);
}

pub async fn attribution_is_historical(store: &dyn Store) {
    let p = project(store, "p").await;
    apply_ok(
        store,
        p,
        vec![
            membership("u1", "company", MembershipOp::Set(ids(&["acme"]))),
            Command::Track(event("u1", "A", 1)),
            membership("u1", "company", MembershipOp::Set(ids(&["globex"]))),
            Command::Track(event("u1", "B", 2)),
        ],
    )
    .await;
    let events = recent(store, p).await;
    let by_name: Vec<_> = events.iter().map(|e| (e.event.as_str(), e.groups["company"].clone())).collect();
    assert_eq!(by_name, vec![("B", ids(&["globex"])), ("A", ids(&["acme"]))]);
    let acme = store.group(p, "company", "acme", 10).await.expect("read").expect("acme");
    assert!(acme.members.is_empty(), "u1 left acme");
    assert_eq!(acme.recent_events.len(), 1, "acme keeps the event stamped while u1 was a member");
}

pub async fn explicit_and_several_groups_per_type(store: &dyn Store) {
    let p = project(store, "p").await;
    let mut explicit = event("u1", "Invoice Sent", 2);
    explicit.groups.push(("company".into(), ids(&["initech"])));
    let mut untyped = event("u1", "Opened", 3);
    untyped.untyped_groups = ids(&["org_x"]);
    apply_ok(
        store,
        p,
        vec![
            membership("u1", "company", MembershipOp::Add("acme".into())),
            membership("u1", "company", MembershipOp::Add("globex".into())),
            Command::Track(event("u1", "Seat Added", 1)),
            Command::Track(explicit),
            Command::Track(untyped),
        ],
    )
    .await;
    let events = recent(store, p).await;
    assert_eq!(events[2].groups["company"], ids(&["acme", "globex"]));
    assert_eq!(events[1].groups["company"], ids(&["initech"]));
    assert_eq!(events[0].untyped_groups, ids(&["org_x"]));
    for key in ["acme", "globex"] {
        let g = store.group(p, "company", key, 10).await.expect("read").expect("group");
        assert_eq!(g.recent_events.iter().map(|e| e.event.as_str()).collect::<Vec<_>>(), vec!["Opened", "Seat Added"]);
    }
}

pub async fn profile_ops_persist(store: &dyn Store) {
    let p = project(store, "p").await;
    let group = |op| Command::GroupProfile { group_type: "company".into(), group_key: "acme".into(), name: None, op };
    let person = |op| Command::PersonProfile { distinct_id: "u1".into(), op };
    let results = store
        .apply(
            p,
            vec![
                group(ProfileOp::Set(props(json!({"plan": "enterprise", "seats": 5, "tags": ["a"]})))),
                group(ProfileOp::SetOnce(props(json!({"plan": "free", "created": "2020-05-01"})))),
                group(ProfileOp::increment_from("value", [("seats".into(), json!(5))]).expect("number")),
                group(ProfileOp::Union(vec![("features".into(), vec![json!("sso"), json!("audit"), json!("sso")])])),
                group(ProfileOp::Append(vec![("tags".into(), vec![json!("a")])])),
                group(ProfileOp::Remove(vec![("features".into(), vec![json!("audit")])])),
                group(ProfileOp::Unset(vec!["created".into()])),
                group(ProfileOp::increment_from("value", [("plan".into(), json!(1))]).expect("number")),
                person(ProfileOp::Set(props(json!({"email": "ada@example.com"})))),
                Command::TrackCharge {
                    distinct_id: "u1".into(),
                    amount: 30.5,
                    properties: props(json!({"sku": "x"})),
                    time: None,
                },
                Command::TrackCharge {
                    distinct_id: "u1".into(),
                    amount: 1.0,
                    properties: Properties::new(),
                    time: None,
                },
                Command::ClearCharges { distinct_id: "u1".into() },
                Command::TrackCharge {
                    distinct_id: "u1".into(),
                    amount: 12.0,
                    properties: Properties::new(),
                    time: None,
                },
            ],
        )
        .await
        .expect("applied");
    assert_eq!(results[7].as_ref().map_err(|e| e.code()), Err("not_a_number"));
    assert_eq!(results.iter().filter(|r| r.is_err()).count(), 1);
    let g = store.group(p, "company", "acme", 0).await.expect("read").expect("group");
    assert_eq!(
        Value::Object(g.group.properties),
        json!({"plan": "enterprise", "seats": 10, "tags": ["a", "a"], "features": ["sso"]})
    );
    let u = store.person(p, "u1", 0).await.expect("read").expect("person");
    assert_eq!(u.person.properties["email"], json!("ada@example.com"));
    assert_eq!(u.charges.iter().map(|c| c.amount).collect::<Vec<_>>(), vec![12.0]);
    apply_ok(store, p, vec![person(ProfileOp::Delete), group(ProfileOp::Delete)]).await;
    assert!(store.person(p, "u1", 0).await.expect("read").is_none());
    assert!(store.group(p, "company", "acme", 0).await.expect("read").is_none());
}

pub async fn identity_merge_counts_the_person_once(store: &dyn Store) {
    let p = project(store, "p").await;
    let outcomes = apply_ok(
        store,
        p,
        vec![
            Command::Track(event("anon-1", "Landing Viewed", 1)),
            membership("user-9", "company", MembershipOp::Set(ids(&["acme"]))),
            Command::Identify { anon_distinct_id: "anon-1".into(), distinct_id: "user-9".into() },
            Command::Track(event("user-9", "Signed In", 2)),
        ],
    )
    .await;
    let Outcome::Identified { group_memberships, .. } = &outcomes[2] else { panic!("identify answers memberships") };
    assert_eq!(group_memberships["company"], ids(&["acme"]));
    let by_anon = store.person(p, "anon-1", 10).await.expect("read").expect("person");
    let by_user = store.person(p, "user-9", 10).await.expect("read").expect("person");
    assert_eq!(by_anon.person.id, by_user.person.id);
    assert_eq!(by_user.person.distinct_ids, ids(&["user-9", "anon-1"]));
    assert_eq!(by_user.recent_events.len(), 2, "the anonymous event belongs to the person");
    let persons = store.persons(p, PersonQuery { limit: 10, ..PersonQuery::default() }).await.expect("persons");
    assert_eq!(persons.total, 1);
}

/// Membership sets written one batch each (so each at its own time): the user's workspace by
/// `set_group`, later the anonymous device's by `add_group`, and a team on each side by
/// `add_group`. The backends' restart tests apply these, reopen the store, then check
/// [`a_merge_weighs_the_memberships`]: how a set was written is stored with it.
pub async fn memberships_a_merge_weighs(store: &dyn Store, p: ProjectId) {
    let writes = [
        membership("user", "workspace", MembershipOp::Set(ids(&["acme"]))),
        membership("user", "team", MembershipOp::Add("design".into())),
        membership("anon", "workspace", MembershipOp::Add("globex".into())),
        membership("anon", "team", MembershipOp::Add("growth".into())),
        // OpenPanel's setGroup before the group exists.
        Command::JoinUntypedGroups { distinct_id: "anon".into(), group_keys: ids(&["org_later"]) },
    ];
    for write in writes {
        apply_ok(store, p, vec![write]).await;
    }
}

/// Identify merges the anonymous person of [`memberships_a_merge_weighs`] into the user: the
/// user's `set_group` wins the workspace whole, the teams joined by adds are united; first the
/// group the anonymous person joined without a type is created.
pub async fn a_merge_weighs_the_memberships(store: &dyn Store, p: ProjectId) {
    let waiting = store.person(p, "anon", 0).await.expect("read").expect("person");
    assert_eq!(waiting.person.pending_groups, ids(&["org_later"]), "the person's data lists the key it waits for");
    // The group the anonymous person joined without a type is created by a write that names
    // only the group: the backend finds who waited for it.
    let create = Command::GroupProfile {
        group_type: "company".into(),
        group_key: "org_later".into(),
        name: None,
        op: ProfileOp::Set(props(json!({"plan": "pro"}))),
    };
    apply_ok(store, p, vec![create]).await;
    let later = store.group(p, "company", "org_later", 0).await.expect("read").expect("group");
    let members: Vec<_> = later.members.iter().map(|m| m.distinct_ids.clone()).collect();
    assert_eq!(members, vec![ids(&["anon"])], "the waiting person is a member once the group exists");
    let identify = Command::Identify { anon_distinct_id: "anon".into(), distinct_id: "user".into() };
    let outcomes = apply_ok(store, p, vec![identify, Command::Track(event("anon", "Clicked", 3))]).await;
    let Outcome::Identified { group_memberships, .. } = &outcomes[0] else { panic!("identify answers memberships") };
    assert_eq!(group_memberships["workspace"], ids(&["acme"]), "the set_group states the whole set");
    assert_eq!(group_memberships["team"], ids(&["design", "growth"]), "adds are united, the user's first");
    assert_eq!(group_memberships["company"], ids(&["org_later"]));
    let user = store.person(p, "anon", 10).await.expect("read").expect("person");
    assert_eq!(user.person.group_memberships, group_memberships.clone());
    let stamped = &recent(store, p).await[0];
    assert_eq!(stamped.groups["team"], ids(&["design", "growth"]), "{stamped:?}");
    assert_eq!(stamped.groups["workspace"], ids(&["acme"]));
}

pub async fn identity_merge_weighs_memberships_by_how_they_were_written(store: &dyn Store) {
    let p = project(store, "p").await;
    memberships_a_merge_weighs(store, p).await;
    a_merge_weighs_the_memberships(store, p).await;
}

/// Persons created, changed, deleted and seen again within one batch and across batches: each
/// listed once, with its last values (a backend that replaces rows must not leave old ones).
pub async fn persons_are_stored_once_however_often_they_change(store: &dyn Store) {
    let p = project(store, "p").await;
    let set = |who: &str, v: Value| Command::PersonProfile { distinct_id: who.into(), op: ProfileOp::Set(props(v)) };
    let membership_of = |who: &str, key: &str| membership(who, "company", MembershipOp::Set(ids(&[key])));
    apply_ok(
        store,
        p,
        vec![
            set("u1", json!({"plan": "free"})),
            Command::Track(event("u1", "Signed Up", 0)),
            membership_of("u1", "acme"),
            set("u1", json!({"plan": "pro"})),
        ],
    )
    .await;
    apply_ok(store, p, vec![set("u1", json!({"plan": "team"})), membership_of("u1", "globex")]).await;
    apply_ok(store, p, vec![set("u2", json!({"n": 1})), membership_of("u2", "acme")]).await;
    let delete = Command::PersonProfile { distinct_id: "u2".into(), op: ProfileOp::Delete };
    apply_ok(store, p, vec![delete, Command::Track(event("u2", "Came Back", 5)), set("u2", json!({"n": 2}))]).await;
    let persons = store.persons(p, PersonQuery { limit: 10, ..PersonQuery::default() }).await.expect("persons");
    assert_eq!(persons.total, 2, "{:?}", persons.results);
    let u1 = store.person(p, "u1", 0).await.expect("read").expect("u1");
    assert_eq!(u1.person.properties["plan"], json!("team"));
    assert_eq!(u1.person.group_memberships["company"], ids(&["globex"]));
    let u2 = store.person(p, "u2", 0).await.expect("read").expect("u2");
    assert_eq!(Value::Object(u2.person.properties), json!({"n": 2}), "a new person under the old id");
    assert!(u2.person.group_memberships.is_empty(), "the deleted person's memberships went with it");
}

pub async fn retried_events_are_stored_once(store: &dyn Store) {
    let p = project(store, "p").await;
    let mut e = event("u1", "Paid", 1);
    e.id = Some("evt-1".into());
    let first = apply_ok(store, p, vec![Command::Track(e.clone()), Command::Track(e.clone())]).await;
    let again = apply_ok(store, p, vec![Command::Track(e)]).await;
    assert!(matches!(first[0], Outcome::Stored { ref uuid } if uuid == "evt-1"));
    assert_eq!((first[1].clone(), again[0].clone()), (Outcome::Duplicate, Outcome::Duplicate));
    assert_eq!(recent(store, p).await.len(), 1);
}

/// Every text an event carries — its id, name, distinct id, group keys and properties — comes
/// back exactly as sent, whatever characters it holds (tabs, line breaks, quotes, backslashes,
/// NUL, non-ASCII): a backend's row format must not cut or change it.
pub async fn text_with_control_characters_round_trips(store: &dyn Store) {
    let p = project(store, "p").await;
    let hostile = "tab\there\nline\r\\back'quote\"dq\u{0}nul ✓ 🚀 [a,b] {}";
    let mut e = event(&format!("u{hostile}"), &format!("Clicked {hostile}"), 1);
    e.id = Some(format!("evt {hostile}"));
    e.groups.push(("company".into(), vec![format!("acme{hostile}"), "plain".into()]));
    e.untyped_groups = vec![format!("org{hostile}")];
    e.properties = props(json!({ "note": hostile, format!("key{hostile}"): [hostile, 1.5], "n": 3, "neg": -0.25 }));
    let outcomes = apply_ok(store, p, vec![Command::Track(e.clone())]).await;
    assert!(matches!(&outcomes[0], Outcome::Stored { uuid } if *uuid == format!("evt {hostile}")), "{outcomes:?}");
    let events = recent(store, p).await;
    assert_eq!(events.len(), 1);
    let stored = &events[0];
    assert_eq!(stored.uuid, format!("evt {hostile}"));
    assert_eq!(stored.event, format!("Clicked {hostile}"));
    assert_eq!(stored.distinct_id, format!("u{hostile}"));
    assert_eq!(stored.properties, e.properties);
    assert_eq!(stored.groups["company"], vec![format!("acme{hostile}"), "plain".to_string()]);
    assert_eq!(stored.untyped_groups, vec![format!("org{hostile}")]);
    // Sent again, it is recognised by its id.
    let again = apply_ok(store, p, vec![Command::Track(e)]).await;
    assert_eq!(again[0], Outcome::Duplicate);
}

/// Writes a client sends without an event id, then sends again: an id-less event, guarded
/// increments and a charge (by content, and one by the client's request id). Each backend's
/// reopen test sends them, reopens the store, sends them again and checks
/// [`resent_writes_were_applied_once`]: the retry window is persisted with the data.
pub fn writes_a_client_resends() -> Vec<Command> {
    let increment = |distinct_id: &str, by: i64| Command::PersonProfile {
        distinct_id: distinct_id.into(),
        op: ProfileOp::Increment(vec![("logins".into(), serde_json::Number::from(by))]),
    };
    vec![
        Command::Track(event("u1", "Clicked", 1)),
        increment("u1", 1).once(None, ""),
        increment("u2", 1).once(Some("request-7"), ""),
        Command::TrackCharge {
            distinct_id: "u1".into(),
            amount: 49.0,
            properties: props(json!({"sku": "pro"})),
            time: None,
        }
        .once(None, ""),
        Command::GroupProfile {
            group_type: "company".into(),
            group_key: "acme".into(),
            name: None,
            op: ProfileOp::Append(vec![("milestones".into(), vec![json!("pilot")])]),
        }
        .once(None, ""),
    ]
}

/// What [`writes_a_client_resends`] leave when applied once, however often they were sent.
pub async fn resent_writes_were_applied_once(store: &dyn Store, p: ProjectId) {
    assert_eq!(recent(store, p).await.len(), 1, "the id-less event once");
    let u1 = store.person(p, "u1", 0).await.expect("reads").expect("u1 exists");
    assert_eq!(u1.person.properties["logins"], json!(1));
    assert_eq!(u1.charges.len(), 1, "one charge");
    let u2 = store.person(p, "u2", 0).await.expect("reads").expect("u2 exists");
    assert_eq!(u2.person.properties["logins"], json!(1));
    let acme = store.group(p, "company", "acme", 0).await.expect("reads").expect("acme exists");
    assert_eq!(acme.group.properties["milestones"], json!(["pilot"]));
}

pub async fn resent_profile_writes_apply_once(store: &dyn Store) {
    let p = project(store, "p").await;
    let first = apply_ok(store, p, writes_a_client_resends()).await;
    assert!(first.iter().all(|o| *o != Outcome::Duplicate), "{first:?}");
    // Resent in one batch and in the next: every one a duplicate.
    let mut twice = writes_a_client_resends();
    twice.extend(writes_a_client_resends());
    let again = apply_ok(store, p, twice).await;
    assert!(again.iter().all(|o| *o == Outcome::Duplicate), "{again:?}");
    resent_writes_were_applied_once(store, p).await;
}

pub async fn batches_keep_valid_items(store: &dyn Store) {
    let p = project(store, "p").await;
    let results = store
        .apply(
            p,
            vec![
                Command::Track(event("u1", "ok", 1)),
                Command::Track(event("", "bad", 2)),
                Command::Track(event("u2", "ok", 3)),
            ],
        )
        .await
        .expect("applied");
    assert!(results[0].is_ok() && results[2].is_ok());
    assert_eq!(results[1].as_ref().map_err(|e| e.field().to_string()), Err("distinct_id".to_string()));
    assert_eq!(recent(store, p).await.len(), 2);
}

pub async fn group_list_search_sort_and_pages(store: &dyn Store) {
    let p = project(store, "p").await;
    let mut commands = Vec::new();
    for (key, name) in
        [("acme", "Acme Inc"), ("globex", "Globex"), ("initech", "Initech"), ("umbrella", "Umbrella Corp")]
    {
        commands.push(Command::GroupProfile {
            group_type: "company".into(),
            group_key: key.into(),
            name: None,
            op: ProfileOp::Set(props(
                json!({"name": name, "plan": if key == "globex" { "enterprise" } else { "free" }}),
            )),
        });
    }
    apply_ok(store, p, commands).await;
    let q = |search: Option<&str>, sort, descending, limit, offset| GroupQuery {
        group_type: "company".into(),
        search: search.map(String::from),
        sort,
        descending,
        limit,
        offset,
    };
    let page = store.groups(p, q(None, GroupSort::Key, false, 2, 0)).await.expect("page");
    assert_eq!(page.total, 4);
    assert_eq!(page.results.iter().map(|g| g.key.as_str()).collect::<Vec<_>>(), vec!["acme", "globex"]);
    let page = store.groups(p, q(None, GroupSort::Name, true, 2, 2)).await.expect("page");
    assert_eq!(page.results.iter().map(|g| g.key.as_str()).collect::<Vec<_>>(), vec!["globex", "acme"]);
    let found = store.groups(p, q(Some("CORP"), GroupSort::Key, false, 10, 0)).await.expect("page");
    assert_eq!(found.results.iter().map(|g| g.key.as_str()).collect::<Vec<_>>(), vec!["umbrella"]);
    let found = store.groups(p, q(Some("enterprise"), GroupSort::Key, false, 10, 0)).await.expect("page");
    assert_eq!((found.total, found.results[0].key.as_str()), (1, "globex"));
    let none = store.groups(p, q(None, GroupSort::Key, false, 10, 0)).await.expect("page");
    assert_eq!(none.results[0].group_type, "company");
    let other = store
        .groups(p, GroupQuery { group_type: "team".into(), limit: 10, ..GroupQuery::default() })
        .await
        .expect("page");
    assert_eq!(other.total, 0);
}

pub async fn deleting_a_group_removes_memberships(store: &dyn Store) {
    let p = project(store, "p").await;
    apply_ok(
        store,
        p,
        vec![
            membership("u1", "company", MembershipOp::Set(ids(&["acme", "globex"]))),
            Command::GroupProfile {
                group_type: "company".into(),
                group_key: "acme".into(),
                name: None,
                op: ProfileOp::Delete,
            },
        ],
    )
    .await;
    let person = store.person(p, "u1", 0).await.expect("read").expect("person");
    assert_eq!(person.person.group_memberships["company"], ids(&["globex"]));
    assert!(store.group(p, "company", "acme", 0).await.expect("read").is_none());
}

pub async fn group_type_rename_and_delete(store: &dyn Store) {
    let p = project(store, "p").await;
    apply_ok(
        store,
        p,
        vec![
            membership("u1", "org", MembershipOp::Set(ids(&["acme"]))),
            Command::Track(event("u1", "A", 1)),
            Command::RenameGroupType { from: "org".into(), to: "company".into() },
        ],
    )
    .await;
    assert_eq!(recent(store, p).await[0].groups["company"], ids(&["acme"]), "renaming keeps attribution");
    apply_ok(store, p, vec![Command::DeleteGroupType { group_type: "company".into() }]).await;
    apply_ok(store, p, vec![membership("u1", "team", MembershipOp::Set(ids(&["t1"])))]).await;
    let types = store.group_types(p).await.expect("types");
    assert_eq!(types.iter().map(|t| (t.index, t.group_type.as_str())).collect::<Vec<_>>(), vec![(0, "team")]);
    assert_eq!(store.group_type_names(p).await.expect("names"), vec!["team"], "a deleted type's name is gone");
    let events = recent(store, p).await;
    assert!(events[0].groups.is_empty(), "the new type in the freed slot does not inherit old events");
}

/// A person who merged an anonymous id, with a profile, a membership, a charge and events under
/// both ids, erased by either id: nothing of it is left on any read, everyone else's data stays,
/// a retry changes nothing, and a later event with the id starts a new, empty person.
pub async fn erasing_a_person_removes_it_and_every_event_of_its_ids(store: &dyn Store) {
    let p = project(store, "p").await;
    let ann = "ann@example.com";
    erase_a_merged_person(store, p).await;

    for id in ["anon-1", ann] {
        assert!(store.person(p, id, 10).await.expect("read").is_none(), "{id} still finds a person");
    }
    let left: Vec<String> = recent(store, p).await.into_iter().map(|e| e.distinct_id).collect();
    assert_eq!(left, ["bob"], "only other people's events are left");
    let acme = store.group(p, "company", "acme", 10).await.expect("read").expect("the group stays");
    let members: Vec<Vec<String>> = acme.members.iter().map(|m| m.distinct_ids.clone()).collect();
    assert_eq!(members, [ids(&["bob"])]);
    assert_eq!(acme.recent_events.len(), 1, "the group keeps only bob's event");
    let persons = store.persons(p, PersonQuery { search: None, limit: 10, offset: 0 }).await.expect("persons");
    assert_eq!(persons.total, 1);
    let found = store.persons(p, PersonQuery { search: Some("ann".into()), limit: 10, offset: 0 }).await;
    assert_eq!(found.expect("search").total, 0, "no profile holds the email");

    // A retry of the erasure is harmless; a later event with the id starts from nothing.
    apply_ok(store, p, vec![Command::ErasePerson { distinct_id: ann.into(), keep_out: false }]).await;
    apply_ok(store, p, vec![Command::Track(event(ann, "Visited", 5))]).await;
    let again = store.person(p, ann, 10).await.expect("read").expect("a new person");
    assert_eq!(again.person.distinct_ids, ids(&[ann]), "the anonymous id is not linked again");
    assert!(again.person.properties.is_empty() && again.charges.is_empty());
    assert!(again.person.group_memberships.is_empty());
    assert_eq!(again.recent_events.len(), 1, "only the new event");
    assert_eq!(recent(store, p).await.len(), 2);
}

/// Load a person who merged an anonymous id (`anon-1` into `ann@example.com`, whose email is in
/// its profile), with a membership in `acme`, a charge and an event under each id, beside `bob`
/// in `acme` with an event; then erase the person by its anonymous id. Returns every text that
/// must no longer be stored anywhere: its ids, its email and its person id.
pub async fn erase_a_merged_person(store: &dyn Store, p: ProjectId) -> Vec<String> {
    let ann = "ann@example.com";
    let charge =
        Command::TrackCharge { distinct_id: ann.into(), amount: 20.0, properties: props(json!({})), time: None };
    apply_ok(
        store,
        p,
        vec![
            Command::Track(event("anon-1", "Visited", 0)),
            Command::Identify { anon_distinct_id: "anon-1".into(), distinct_id: ann.into() },
            Command::PersonProfile { distinct_id: ann.into(), op: ProfileOp::Set(props(json!({"email": ann}))) },
            membership(ann, "company", MembershipOp::Set(ids(&["acme"]))),
            charge,
            Command::Track(event(ann, "Report Exported", 1)),
            membership("bob", "company", MembershipOp::Set(ids(&["acme"]))),
            Command::Track(event("bob", "Report Exported", 2)),
        ],
    )
    .await;
    let person = store.person(p, ann, 0).await.expect("read").expect("the person exists").person.id;
    apply_ok(store, p, vec![Command::ErasePerson { distinct_id: "anon-1".into(), keep_out: false }]).await;
    vec!["anon-1".into(), ann.into(), person]
}

/// The personal fields the anonymization cases remove.
pub fn personal_fields() -> Vec<String> {
    ids(&["email", "$ip"])
}

/// Load `anon-1` identified as `ann@example.com` (email in its profile, a membership in `acme`,
/// events under both ids, some with an email and an `$ip` among their properties) beside `bob`,
/// then anonymize it. Returns every text that must no longer be stored anywhere, and the
/// pseudonym.
pub async fn anonymize_a_merged_person(store: &dyn Store, p: ProjectId) -> (Vec<String>, String) {
    let ann = "ann@example.com";
    let mut paid = event(ann, "Paid", 1);
    paid.properties = props(json!({"email": ann, "$ip": "203.0.113.7", "plan": "pro"}));
    let mut visited = event("anon-1", "Visited", 0);
    visited.properties = props(json!({"$ip": "203.0.113.7"}));
    let mut bobs = event("bob", "Paid", 2);
    bobs.properties = props(json!({"email": "bob@example.com", "plan": "free"}));
    apply_ok(
        store,
        p,
        vec![
            Command::Track(visited),
            Command::Identify { anon_distinct_id: "anon-1".into(), distinct_id: ann.into() },
            Command::PersonProfile { distinct_id: ann.into(), op: ProfileOp::Set(props(json!({"email": ann}))) },
            membership(ann, "company", MembershipOp::Set(ids(&["acme"]))),
            Command::Track(paid),
            Command::Track(bobs),
        ],
    )
    .await;
    let person = store.person(p, ann, 0).await.expect("read").expect("the person exists").person.id;
    let command = Command::AnonymizePerson { distinct_id: "anon-1".into(), personal_fields: personal_fields() };
    apply_ok(store, p, vec![command]).await;
    let pseudonym = store.person(p, &person, 0).await.expect("read").expect("the person stays").person.distinct_ids;
    (ids(&["anon-1", ann, "203.0.113.7"]), pseudonym.first().cloned().unwrap_or_default())
}

/// After anonymizing, the person and its events stay (under one pseudonym, same memberships),
/// its profile and the personal fields of its events are gone, other people's events keep
/// theirs, and anonymizing again changes nothing.
pub async fn anonymizing_a_person_keeps_its_events_under_a_pseudonym(store: &dyn Store) {
    let p = project(store, "p").await;
    let (_, pseudonym) = anonymize_a_merged_person(store, p).await;
    assert!(pseudonym.starts_with("anonymized-"), "{pseudonym}");
    for id in ["anon-1", "ann@example.com"] {
        assert!(store.person(p, id, 0).await.expect("read").is_none(), "{id} still names the person");
    }
    let person = store.person(p, &pseudonym, 10).await.expect("read").expect("the person stays");
    assert_eq!(person.person.distinct_ids, std::slice::from_ref(&pseudonym));
    assert!(person.person.properties.is_empty(), "{:?}", person.person.properties);
    assert_eq!(person.person.group_memberships["company"], ids(&["acme"]));
    assert_eq!(person.recent_events.len(), 2, "both events stay with the person");
    let events = recent(store, p).await;
    let of = |who: &str| -> Vec<(String, Value)> {
        events
            .iter()
            .filter(|e| e.distinct_id == who)
            .map(|e| (e.event.clone(), Value::Object(e.properties.clone())))
            .collect()
    };
    assert_eq!(of(&pseudonym), [("Paid".to_string(), json!({"plan": "pro"})), ("Visited".to_string(), json!({}))]);
    assert_eq!(of("bob"), [("Paid".to_string(), json!({"email": "bob@example.com", "plan": "free"}))]);
    let again = Command::AnonymizePerson { distinct_id: pseudonym.clone(), personal_fields: personal_fields() };
    apply_ok(store, p, vec![again]).await;
    let after = store.person(p, &pseudonym, 10).await.expect("read").expect("still there");
    assert_eq!((after.person.distinct_ids, after.recent_events.len()), (vec![pseudonym], 2));
}

/// Erasing a group removes its profile and memberships and takes its key off stored and pending
/// events (other groups of the events stay); with its events, those events go. Other groups
/// and their events are untouched, and a retry changes nothing.
pub async fn erasing_a_group_takes_it_off_events_or_deletes_them(store: &dyn Store) {
    let p = project(store, "p").await;
    let erase = |key: &str, with_events: bool| Command::EraseGroup {
        group_type: "company".into(),
        group_key: key.into(),
        with_events,
    };
    apply_ok(
        store,
        p,
        vec![
            membership("u1", "company", MembershipOp::Set(ids(&["acme", "globex"]))),
            membership("u2", "company", MembershipOp::Set(ids(&["initech"]))),
            Command::GroupProfile {
                group_type: "company".into(),
                group_key: "acme".into(),
                name: Some("Acme".into()),
                op: ProfileOp::Set(props(json!({"contact": "boss@acme.example"}))),
            },
            Command::Track(event("u1", "A", 1)),
            Command::Track(event("u2", "B", 2)),
        ],
    )
    .await;
    // Pending in the same batch as the erasure: taken off too.
    apply_ok(store, p, vec![Command::Track(event("u1", "C", 3)), erase("acme", false)]).await;
    assert!(store.group(p, "company", "acme", 0).await.expect("read").is_none());
    let u1 = store.person(p, "u1", 0).await.expect("read").expect("u1 stays");
    assert_eq!(u1.person.group_memberships["company"], ids(&["globex"]));
    let attribution = |events: &[crate::EventRow]| -> Vec<(String, Vec<String>)> {
        events.iter().map(|e| (e.event.clone(), e.groups.get("company").cloned().unwrap_or_default())).collect()
    };
    let events = recent(store, p).await;
    assert_eq!(
        attribution(&events),
        [
            ("C".to_string(), ids(&["globex"])),
            ("B".to_string(), ids(&["initech"])),
            ("A".to_string(), ids(&["globex"]))
        ]
    );
    apply_ok(store, p, vec![erase("acme", false)]).await;
    apply_ok(store, p, vec![erase("initech", true)]).await;
    let events = recent(store, p).await;
    assert_eq!(attribution(&events), [("C".to_string(), ids(&["globex"])), ("A".to_string(), ids(&["globex"]))]);
    let u2 = store.person(p, "u2", 0).await.expect("read").expect("u2 stays");
    assert!(u2.person.group_memberships.is_empty());
}

/// Event retention: events before the cutoff go, of this project only; a month holding other
/// projects' events keeps theirs (a backend dropping whole partitions must not drop those), and
/// a later cutoff for the other project empties that month.
pub async fn expiring_events_drops_those_before_the_cutoff(store: &dyn Store) {
    let (a, b) = (project(store, "a").await, project(store, "b").await);
    let at = |month: u32, day: u32| Utc.with_ymd_and_hms(2026, month, day, 12, 0, 0).single().unwrap_or_default();
    let track = |who: &str, name: &str, when| {
        Command::Track(TrackEvent {
            event: name.into(),
            distinct_id: who.into(),
            timestamp: Some(when),
            ..TrackEvent::default()
        })
    };
    apply_ok(
        store,
        a,
        vec![track("u1", "Jan", at(1, 10)), track("u1", "Feb", at(2, 20)), track("u1", "Mar", at(3, 5))],
    )
    .await;
    apply_ok(store, b, vec![track("u9", "Jan", at(1, 11)), track("u9", "Mar", at(3, 6))]).await;
    let names = |events: Vec<crate::EventRow>| -> Vec<String> { events.into_iter().map(|e| e.event).collect() };

    apply_ok(store, a, vec![Command::ExpireEvents { before: at(3, 1) }]).await;
    assert_eq!(names(recent(store, a).await), ["Mar"]);
    assert_eq!(names(recent(store, b).await), ["Mar", "Jan"], "another project's events stay");
    assert!(store.person(a, "u1", 0).await.expect("read").is_some(), "persons stay");

    apply_ok(store, b, vec![Command::ExpireEvents { before: at(2, 1) }]).await;
    assert_eq!(names(recent(store, b).await), ["Mar"]);
    // A pending event before the cutoff, in the same batch, goes too; a retry changes nothing.
    let batch = vec![track("u1", "Old", at(1, 2)), Command::ExpireEvents { before: at(3, 1) }];
    apply_ok(store, a, batch).await;
    apply_ok(store, a, vec![Command::ExpireEvents { before: at(3, 1) }]).await;
    assert_eq!(names(recent(store, a).await), ["Mar"]);
}

/// Erase `anon-1` (identified as `ann`) for good ("delete and don't recreate"). Returns the
/// writes a caller may apply afterwards to check they are dropped.
pub async fn erase_for_good(store: &dyn Store, p: ProjectId) -> Vec<Command> {
    apply_ok(
        store,
        p,
        vec![
            Command::Track(event("anon-1", "Visited", 0)),
            Command::Identify { anon_distinct_id: "anon-1".into(), distinct_id: "ann".into() },
        ],
    )
    .await;
    apply_ok(store, p, vec![Command::ErasePerson { distinct_id: "ann".into(), keep_out: true }]).await;
    vec![
        Command::Track(event("ann", "Came Back", 5)),
        Command::Track(event("anon-1", "Came Back", 6)),
        Command::Identify { anon_distinct_id: "anon-7".into(), distinct_id: "ann".into() },
        Command::PersonProfile { distinct_id: "anon-1".into(), op: ProfileOp::Set(props(json!({"email": "ann@x"}))) },
        membership("ann", "company", MembershipOp::Set(ids(&["acme"]))),
    ]
}

/// A person erased for good stays out: every later write naming one of its ids is answered
/// `Dropped` and stores nothing (no person, no event, no membership); everyone else is unaffected.
pub async fn a_person_erased_for_good_stays_out(store: &dyn Store) {
    let p = project(store, "p").await;
    let later = erase_for_good(store, p).await;
    let outcomes = apply_ok(store, p, later).await;
    assert!(outcomes.iter().all(|o| *o == Outcome::Dropped), "{outcomes:?}");
    for id in ["ann", "anon-1", "anon-7"] {
        assert!(store.person(p, id, 0).await.expect("read").is_none(), "{id} found a person");
    }
    assert!(recent(store, p).await.is_empty());
    let stored = apply_ok(store, p, vec![Command::Track(event("bob", "Visited", 7))]).await;
    assert!(matches!(stored[..], [Outcome::Stored { .. }]), "{stored:?}");
    assert!(store.group(p, "company", "acme", 0).await.expect("read").is_none(), "no group was made for it");
}

/// A person's export holds its profile, charges and every event of its ids exactly once, and
/// nobody else's; read in small pages, a run of events at one instant longer than a page is
/// neither cut nor repeated.
pub async fn an_export_holds_exactly_the_persons_data(store: &dyn Store) {
    use crate::privacy::{EventPages, Export};
    let p = project(store, "p").await;
    let mut commands = vec![Command::Identify { anon_distinct_id: "anon-1".into(), distinct_id: "ann".into() }];
    for i in 0..25_i64 {
        let who = if i % 2 == 0 { "ann" } else { "anon-1" };
        // Twelve at one instant (minute 10), the others a minute apart.
        let mut e = event(who, "Tick", if i < 12 { 10 } else { i });
        e.id = Some(format!("tick-{i}"));
        commands.push(Command::Track(e));
    }
    commands.push(Command::Track(event("bob", "Tick", 10)));
    let charge =
        Command::TrackCharge { distinct_id: "ann".into(), amount: 9.0, properties: props(json!({})), time: None };
    commands.push(charge);
    apply_ok(store, p, commands).await;

    let query = EventQuery { person: Some("anon-1".into()), ..EventQuery::default() };
    let mut pages = EventPages::with_page(store, p, query, 5);
    let mut seen = Vec::new();
    while let Some(page) = pages.next_page().await.expect("a page") {
        seen.extend(page.into_iter().map(|e| e.uuid));
    }
    seen.sort();
    let mut want: Vec<String> = (0..25).map(|i| format!("tick-{i}")).collect();
    want.sort();
    assert_eq!(seen, want, "every event once, in pages of 5");

    let projects = store.projects().await.expect("projects");
    let project = projects.iter().find(|x| x.id == p).expect("the project");
    let mut export = Export::person(store, project, "ann").await.expect("read").expect("ann exists");
    let mut text = String::new();
    while let Some(chunk) = export.next_chunk().await.expect("a chunk") {
        text.push_str(&chunk);
    }
    let document: Value = serde_json::from_str(&text).expect("one JSON document");
    let mut ids: Vec<String> = serde_json::from_value(document["person"]["distinct_ids"].clone()).expect("ids");
    ids.sort();
    assert_eq!(ids, ["ann", "anon-1"]);
    assert_eq!(document["charges"].as_array().map(Vec::len), Some(1));
    let events = document["events"].as_array().cloned().unwrap_or_default();
    assert_eq!(events.len(), 25);
    assert!(events.iter().all(|e| e["distinct_id"] != json!("bob")));
    assert!(Export::person(store, project, "nobody").await.expect("read").is_none());
}

pub async fn projects_are_isolated(store: &dyn Store) {
    let a = project(store, "a").await;
    let b = project(store, "b").await;
    apply_ok(
        store,
        a,
        vec![membership("u1", "company", MembershipOp::Set(ids(&["acme"]))), Command::Track(event("u1", "A", 1))],
    )
    .await;
    assert!(recent(store, b).await.is_empty());
    assert!(store.person(b, "u1", 0).await.expect("read").is_none());
    assert!(store.group_types(b).await.expect("types").is_empty());
    let dup = store
        .create_project(NewProject { name: "a".into(), ingestion_key: "other".into(), secret_key_hash: "h".into() })
        .await;
    assert!(dup.is_err(), "project names are unique");
    let names: Vec<_> = store.projects().await.expect("projects").into_iter().map(|p| p.name).collect();
    assert_eq!(names, vec!["a", "b"]);
}
