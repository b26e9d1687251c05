//! Trends options: filters on an event's group key and on a user's current groups, rolling
//! active actors, cumulative lines, maths over a group's property.

use serde_json::{json, Value};
use troupe_store::Store;

use super::{at, companies, data, trends, Data};

/// acme (plan enterprise) and globex (plan free) have profiles, initech none. u1 is in acme;
/// u2 was in globex when it viewed (its event is stamped globex), then moved to acme; u3 is in
/// initech; u4 in no company. Each views once on March 2.
/// - The event's group key: globex → u2 (1); in [acme, initech] → u1, u3 (2); not acme → u2,
///   u3 and u4 (no company: the key reads as not set) (3); contains "ini" → u3 (1).
/// - Users whose company is on the enterprise plan *now* (a cohort through current
///   membership): u1 and u2 (2), though u2's event was stamped globex; counted by companies,
///   their events' companies: acme and globex (2). Users currently in initech: u3.
pub async fn trends_filter_on_group_key_and_current_membership(store: &dyn Store) {
    let mut d = Data::default();
    d.group("company", "acme", json!({"plan": "enterprise"})).group("company", "globex", json!({"plan": "free"}));
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["globex"]);
    d.set_group("u3", "company", &["initech"]);
    for who in ["u1", "u2", "u3", "u4"] {
        d.event(who, "view", at(2, 9, 0), json!({}));
    }
    d.set_group("u2", "company", &["acme"]);
    let p = d.load(store).await;
    let q = |count_by: Value, filter: Value| {
        json!({"date_range": {"from": "2026-03-02", "to": "2026-03-02"}, "count_by": count_by,
               "series": [{"event": "view", "math": "unique"}], "filters": filter})
    };
    let key = |operator: &str, value: Value| json!({"type": "group", "group_type": "company", "key": "$group_key", "operator": operator, "value": value});
    for (filter, expected) in [
        (key("equals", json!("globex")), 1.0),
        (key("in", json!(["acme", "initech"])), 2.0),
        (key("not_equals", json!("acme")), 3.0),
        (key("contains", json!("ini")), 1.0),
    ] {
        assert_eq!(data(&trends(store, p, q(json!("users"), filter.clone())).await), vec![vec![expected]], "{filter}");
    }
    let member_of = |key: &str, value: &str| {
        json!({"cohort": {"type": "dynamic", "criteria": [
            {"type": "group_property", "group_type": "company", "key": key, "value": value}]}})
    };
    let enterprise = member_of("plan", "enterprise");
    assert_eq!(data(&trends(store, p, q(json!("users"), enterprise.clone())).await), vec![vec![2.0]]);
    assert_eq!(data(&trends(store, p, q(companies(), enterprise)).await), vec![vec![2.0]]);
    assert_eq!(data(&trends(store, p, q(json!("users"), member_of("$group_key", "initech"))).await), vec![vec![1.0]]);
}

/// Daily, March 2–9. acme (mrr 100) has u1 (age 30) and u3; globex (mrr 50) has u2 (age 40)
/// and u5. Views: u3 on February 26 (before the range), u1 on the 3rd and 6th, u2 on the 6th,
/// u5 on the 9th.
/// - Weekly active (the 7 days ending with each bucket): u3 covers the 2nd–4th, u1 the 3rd–
///   9th, u2 the 6th–9th, u5 the 9th: [1, 2, 2, 1, 2, 2, 2, 3]; over the range u1, u2, u5 (3).
///   Monthly active: u3 stays: [1, 2, 2, 2, 3, 3, 3, 4]. Companies, weekly: acme alone until
///   the 6th: [1, 1, 1, 1, 2, 2, 2, 2].
/// - Cumulative: events [0, 1, 0, 0, 2, 0, 0, 1] → [0, 1, 1, 1, 3, 3, 3, 4]; unique users up
///   to each day (a union, not a sum): [0, 1, 1, 1, 2, 2, 2, 3]; companies: [0, 1, 1, 1, 2, 2,
///   2, 2].
/// - Sum of the companies' `mrr` over the companies that viewed: the 3rd acme (100), the 6th
///   acme and globex (150, acme once though two events), the 9th globex (50); over the range
///   150. Read from the events (where there is no `mrr`): 0. Average age of the users who
///   viewed on the 6th: 35.
pub async fn trends_rolling_cumulative_and_profile_property_math(store: &dyn Store) {
    let mut d = Data::default();
    d.group("company", "acme", json!({"mrr": 100})).group("company", "globex", json!({"mrr": 50}));
    d.person("u1", json!({"age": 30})).person("u2", json!({"age": 40}));
    for (who, company) in [("u1", "acme"), ("u3", "acme"), ("u2", "globex"), ("u5", "globex")] {
        d.set_group(who, "company", &[company]);
    }
    let feb26 = at(1, 9, 0) - chrono::Duration::days(3);
    d.event("u3", "view", feb26, json!({}));
    d.event("u1", "view", at(3, 9, 0), json!({})).event("u1", "view", at(6, 9, 0), json!({}));
    d.event("u2", "view", at(6, 10, 0), json!({})).event("u5", "view", at(9, 9, 0), json!({}));
    let p = d.load(store).await;
    let q = |count_by: Value, series: Value, cumulative: bool| {
        json!({"date_range": {"from": "2026-03-02", "to": "2026-03-09"}, "count_by": count_by,
               "series": [series], "cumulative": cumulative})
    };
    let line = |r: crate::result::TrendsResult| (r.series[0].data.clone(), r.series[0].aggregated_value);
    let view = |math: &str| json!({"event": "view", "math": math});
    let weekly = line(trends(store, p, q(json!("users"), view("weekly_active"), false)).await);
    assert_eq!(weekly, (vec![1.0, 2.0, 2.0, 1.0, 2.0, 2.0, 2.0, 3.0], 3.0));
    let monthly = line(trends(store, p, q(json!("users"), view("monthly_active"), false)).await);
    assert_eq!(monthly.0, vec![1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 4.0]);
    let weekly = line(trends(store, p, q(companies(), view("weekly_active"), false)).await);
    assert_eq!(weekly.0, vec![1.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]);

    let total = line(trends(store, p, q(json!("users"), view("total"), true)).await);
    assert_eq!(total.0, vec![0.0, 1.0, 1.0, 1.0, 3.0, 3.0, 3.0, 4.0]);
    let unique = line(trends(store, p, q(json!("users"), view("unique"), true)).await);
    assert_eq!(unique, (vec![0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0], 3.0));
    let unique = line(trends(store, p, q(companies(), view("unique"), true)).await);
    assert_eq!(unique.0, vec![0.0, 1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]);

    let mrr = |source: Value| json!({"event": "view", "math": "sum", "property": "mrr", "property_source": source});
    let by_company =
        line(trends(store, p, q(json!("users"), mrr(json!({"type": "group", "group_type": "company"})), false)).await);
    assert_eq!(by_company, (vec![0.0, 100.0, 0.0, 0.0, 150.0, 0.0, 0.0, 50.0], 150.0));
    let on_events = line(trends(store, p, q(json!("users"), mrr(json!({"type": "event"})), false)).await);
    assert_eq!(on_events.1, 0.0);
    let age = json!({"event": "view", "math": "avg", "property": "age", "property_source": {"type": "person"}});
    let age = line(trends(store, p, q(json!("users"), age, false)).await);
    assert_eq!(age.0[4], 35.0);

    for (query, needle) in [
        (
            json!({"kind": "trends", "interval": "week", "series": [{"event": "view", "math": "weekly_active"}]}),
            "interval",
        ),
        (
            json!({"kind": "trends", "cumulative": true, "series": [{"event": "view", "math": "avg", "property": "x"}]}),
            "cumulative",
        ),
        (
            json!({"kind": "trends", "series": [{"event": "view", "property_source": {"type": "person"}}]}),
            "property_source",
        ),
    ] {
        match super::ask(store, p, query.clone()).await {
            Err(crate::QueryError::Invalid(m)) => assert!(m.contains(needle), "{query}: {m}"),
            other => panic!("{query} should be refused, got {other:?}"),
        }
    }
}
