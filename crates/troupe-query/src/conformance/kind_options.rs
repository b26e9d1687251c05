//! Stickiness and lifecycle options: a per-interval criterion, *new* by creation time.

use serde_json::{json, Value};
use troupe_store::Store;

use super::{ask, at, companies, Data};
use crate::result::{InsightResult, LifecycleResult};

/// Daily, March 2–4. u1 (acme) uses 3 times on the 2nd, once on the 3rd, twice on the 4th;
/// u2 (acme) twice on the 2nd and the 3rd; u3 (globex) once on the 2nd.
/// - Users: at least once [1, 1, 1] (u3, u2, u1 on 1, 2, 3 days); at least twice: u1 on 2
///   days (2nd, 4th), u2 on 2, u3 on none → [0, 2, 0]; exactly twice: u1 on 1 (4th), u2 on 2 →
///   [1, 1, 0]; at most once: u1 on 1 (3rd), u3 on 1 → [2, 0, 0].
/// - Companies (acme: 5, 3, 2 events; globex: 1 on the 2nd): at least twice [0, 0, 1];
///   exactly twice [1, 0, 0] (acme on the 4th); at most once [1, 0, 0] (globex).
pub async fn stickiness_criterion_per_interval(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]);
    d.set_group("u3", "company", &["globex"]);
    for (who, day, times) in [("u1", 2, 3), ("u1", 3, 1), ("u1", 4, 2), ("u2", 2, 2), ("u2", 3, 2), ("u3", 2, 1)] {
        for k in 0..times {
            d.event(who, "use", at(day, 9, k), json!({}));
        }
    }
    let p = d.load(store).await;
    let q = |count_by: Value, criterion: Value| {
        let mut q = json!({"kind": "stickiness", "date_range": {"from": "2026-03-02", "to": "2026-03-04"},
                           "count_by": count_by, "series": [{"event": "use"}]});
        if !criterion.is_null() {
            q["criterion"] = criterion;
        }
        q
    };
    let histogram = |r: InsightResult| match r {
        InsightResult::Stickiness(r) => r.series[0].data.clone(),
        other => panic!("not stickiness: {other:?}"),
    };
    let c = |operator: &str, value: u64| json!({"operator": operator, "value": value});
    for (count_by, criterion, expected) in [
        (json!("users"), Value::Null, vec![1, 1, 1]),
        (json!("users"), c("gte", 1), vec![1, 1, 1]),
        (json!("users"), c("gte", 2), vec![0, 2, 0]),
        (json!("users"), c("exact", 2), vec![1, 1, 0]),
        (json!("users"), c("lte", 1), vec![2, 0, 0]),
        (companies(), c("gte", 2), vec![0, 0, 1]),
        (companies(), c("exact", 2), vec![1, 0, 0]),
        (companies(), c("lte", 1), vec![1, 0, 0]),
    ] {
        let r = ask(store, p, q(count_by.clone(), criterion.clone())).await.expect("stickiness answer");
        assert_eq!(histogram(r), expected, "{count_by} {criterion}");
    }
    match ask(store, p, q(json!("users"), c("exact", 0))).await {
        Err(crate::QueryError::Invalid(m)) => assert!(m.contains("criterion.value"), "{m}"),
        other => panic!("exact 0 should be refused, got {other:?}"),
    }
}

/// Daily, March 2–4, active = `use`. u1 (acme) uses on the 1st, 2nd, 3rd; u2 (acme) the 2nd
/// and 4th; u3 (globex) views a page on the 1st and uses on the 3rd; u4 (initech) uses on the
/// 3rd only. Every company row is written when these are loaded (after March); a person's
/// creation time moves back to its earliest event.
/// - Companies, new by first event: initech is new on the 3rd: new [0, 1, 0], returning
///   [1, 1, 1] (acme), resurrecting [0, 1, 0] (globex), dormant [0, 0, -2]. New by creation:
///   no company was created in the range, so initech resurrects: new [0, 0, 0], resurrecting
///   [0, 2, 0].
/// - Users: the same either way (created at their first event): new [1, 1, 0] (u2, u4),
///   returning [1, 1, 0], resurrecting [0, 1, 1], dormant [0, -1, -3].
pub async fn lifecycle_new_by_creation_time(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]);
    d.set_group("u3", "company", &["globex"]).set_group("u4", "company", &["initech"]);
    for day in [1, 2, 3] {
        d.event("u1", "use", at(day, 9, 0), json!({}));
    }
    d.event("u2", "use", at(2, 10, 0), json!({})).event("u2", "use", at(4, 10, 0), json!({}));
    d.event("u3", "pageview", at(1, 9, 0), json!({})).event("u3", "use", at(3, 9, 0), json!({}));
    d.event("u4", "use", at(3, 11, 0), json!({}));
    let p = d.load(store).await;
    let q = |count_by: Value, new_by: &str| {
        json!({"kind": "lifecycle", "date_range": {"from": "2026-03-02", "to": "2026-03-04"}, "count_by": count_by,
               "event": {"event": "use"}, "new_by": new_by})
    };
    let statuses = |r: InsightResult| {
        let InsightResult::Lifecycle(LifecycleResult { new, returning, resurrecting, dormant, .. }) = r else {
            panic!("not lifecycle")
        };
        (new, returning, resurrecting, dormant)
    };
    let ask_statuses = |count_by: Value, new_by: &'static str| async move {
        statuses(ask(store, p, q(count_by, new_by)).await.expect("lifecycle answer"))
    };
    assert_eq!(
        ask_statuses(companies(), "first_event").await,
        (vec![0, 1, 0], vec![1, 1, 1], vec![0, 1, 0], vec![0, 0, -2])
    );
    assert_eq!(
        ask_statuses(companies(), "created_at").await,
        (vec![0, 0, 0], vec![1, 1, 1], vec![0, 2, 0], vec![0, 0, -2])
    );
    let users = (vec![1, 1, 0], vec![1, 1, 0], vec![0, 1, 1], vec![0, -1, -3]);
    assert_eq!(ask_statuses(json!("users"), "first_event").await, users);
    assert_eq!(ask_statuses(json!("users"), "created_at").await, users);
}

/// Cohort members, listed. u1 and u3 are on plan pro, u2 on free; u1 exports twice, u2 once;
/// u1 and u2 are in acme (tier gold), u3 in globex (silver).
/// - Users on pro: u1, u3. Users who exported at least twice: u1. Users whose company is gold
///   now: u1, u2.
/// - Gold companies: acme. A static list naming acme and initech (never heard of): acme (a
///   member is an actor troupe knows).
pub async fn cohort_members_are_listed(store: &dyn Store) {
    let mut d = Data::default();
    d.group("company", "acme", json!({"tier": "gold"})).group("company", "globex", json!({"tier": "silver"}));
    d.person("u1", json!({"plan": "pro"})).person("u2", json!({"plan": "free"})).person("u3", json!({"plan": "pro"}));
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]);
    d.set_group("u3", "company", &["globex"]);
    d.event("u1", "export", at(2, 9, 0), json!({})).event("u1", "export", at(3, 9, 0), json!({}));
    d.event("u2", "export", at(2, 9, 0), json!({}));
    let p = d.load(store).await;
    let members = |cohort: Value| async move {
        let cohort: crate::spec::CohortRef = crate::spec::from_json(cohort).expect("a cohort");
        let (_, actors) = crate::cohort_members(store, p, &cohort, super::now()).await.expect("members");
        let mut ids: Vec<String> = actors
            .iter()
            .map(|a| if a.distinct_ids.is_empty() { a.key.clone() } else { a.distinct_ids.join(",") })
            .collect();
        ids.sort();
        ids
    };
    let dynamic =
        |count_by: Value, criterion: Value| json!({"count_by": count_by, "type": "dynamic", "criteria": [criterion]});
    let users = json!("users");
    assert_eq!(
        members(dynamic(users.clone(), json!({"type": "property", "key": "plan", "value": "pro"}))).await,
        ["u1", "u3"]
    );
    assert_eq!(
        members(dynamic(
            users.clone(),
            json!({"type": "performed_event", "event": "export", "at_least": 2, "days": 30})
        ))
        .await,
        ["u1"]
    );
    let gold = json!({"type": "group_property", "group_type": "company", "key": "tier", "value": "gold"});
    assert_eq!(members(dynamic(users, gold)).await, ["u1", "u2"]);
    assert_eq!(
        members(dynamic(companies(), json!({"type": "property", "key": "tier", "value": "gold"}))).await,
        ["acme"]
    );
    assert_eq!(members(json!({"count_by": companies(), "type": "static", "ids": ["acme", "initech"]})).await, ["acme"]);
}
