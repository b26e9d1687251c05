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
