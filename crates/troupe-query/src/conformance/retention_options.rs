//! Retention options: cumulative, minimum occurrences, the actors of a cell, the mean row.

use serde_json::{json, Value};
use troupe_store::Store;

use super::{ask, at, companies, Data};
use crate::result::{InsightResult, RetentionResult};

async fn retention(store: &dyn Store, p: troupe_core::ProjectId, query: Value) -> RetentionResult {
    match ask(store, p, query).await.expect("retention answer") {
        InsightResult::Retention(r) => r,
        other => panic!("not retention: {other:?}"),
    }
}

fn triangle(r: &RetentionResult) -> Vec<Vec<u64>> {
    r.rows.iter().map(|row| row.values.iter().map(|c| c.count).collect()).collect()
}

/// Daily, March 2–5 (4 cohorts), start `login`, return `use`, first-time cohorts:
/// - u1 (acme): login 2nd; use twice on the 4th, once on the 5th.
/// - u2 (acme): login 2nd; use once on the 3rd.
/// - u3 (globex): login 3rd; use twice on the 5th.
///
/// Users, plain: cohort 2nd {u1, u2}: back on the 3rd u2, 4th u1, 5th u1 → [2, 1, 1, 1];
/// cohort 3rd {u3}: [1, 0, 1]. Cumulative (back then or later): [2, 2, 1, 1] and [1, 1, 1].
/// At least 2 return events in the period: u1 on the 4th, u3 on the 5th → [2, 0, 1, 0] and
/// [1, 0, 1]. Mean row (cohorts with actors that reach the period): period 1 counts 1 of 3
/// (33.3 %, weighted) and averages 50 % and 0 % (25 %, simple); period 2: 2 of 3 (66.7 %),
/// simple 75 %; period 3: cohort 2nd only, 50 %.
/// Companies: acme (u1 + u2) [1, 1, 1, 1], with at least 2: [1, 0, 1, 0]; globex [1, 0, 1].
pub async fn retention_cumulative_min_occurrences_actors_and_mean(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]);
    d.set_group("u3", "company", &["globex"]);
    d.event("u1", "login", at(2, 9, 0), json!({})).event("u1", "use", at(4, 9, 0), json!({}));
    d.event("u1", "use", at(4, 10, 0), json!({})).event("u1", "use", at(5, 9, 0), json!({}));
    d.event("u2", "login", at(2, 9, 0), json!({})).event("u2", "use", at(3, 9, 0), json!({}));
    d.event("u3", "login", at(3, 9, 0), json!({})).event("u3", "use", at(5, 9, 0), json!({}));
    d.event("u3", "use", at(5, 10, 0), json!({}));
    let p = d.load(store).await;
    let q = |count_by: Value, extra: Value| {
        let mut q = json!({"kind": "retention", "date_range": {"from": "2026-03-02", "to": "2026-03-05"},
                           "count_by": count_by, "start": {"event": "login"}, "return": {"event": "use"}});
        for (k, v) in extra.as_object().into_iter().flatten() {
            q[k] = v.clone();
        }
        q
    };
    let users = |extra: Value| retention(store, p, q(json!("users"), extra));
    let plain = users(json!({})).await;
    assert_eq!(triangle(&plain), vec![vec![2, 1, 1, 1], vec![1, 0, 1], vec![0, 0], vec![0]]);
    let mean = &plain.means[0].values;
    let cells: Vec<(usize, u64, u64)> = mean.iter().map(|c| (c.cohorts, c.size, c.count)).collect();
    assert_eq!(cells, vec![(2, 3, 3), (2, 3, 1), (2, 3, 2), (1, 2, 1)]);
    let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
    let expected = [(100.0, 100.0), (100.0 / 3.0, 25.0), (200.0 / 3.0, 75.0), (50.0, 50.0)];
    for (cell, (weighted, simple)) in mean.iter().zip(expected) {
        assert!(close(cell.percentage, weighted) && close(cell.simple_percentage, simple), "{cell:?}");
    }
    let cumulative = users(json!({"cumulative": true})).await;
    assert_eq!(triangle(&cumulative), vec![vec![2, 2, 1, 1], vec![1, 1, 1], vec![0, 0], vec![0]]);
    let twice = users(json!({"min_occurrences": 2})).await;
    assert_eq!(triangle(&twice), vec![vec![2, 0, 1, 0], vec![1, 0, 1], vec![0, 0], vec![0]]);

    // The actors of a cell.
    let ids = |r: &RetentionResult| {
        let mut ids: Vec<String> = r.actors.iter().flatten().flat_map(|a| a.distinct_ids.clone()).collect();
        ids.sort();
        ids
    };
    let cell = |cohort: usize, period: usize| json!({"actors": {"cohort": cohort, "period": period}});
    assert_eq!(ids(&users(cell(0, 1)).await), vec!["u2"]);
    assert_eq!(ids(&users(cell(0, 0)).await), vec!["u1", "u2"]);
    assert_eq!(ids(&users(cell(1, 2)).await), vec!["u3"]);
    let mut cumulative_cell = cell(0, 1);
    cumulative_cell["cumulative"] = json!(true);
    assert_eq!(ids(&users(cumulative_cell).await), vec!["u1", "u2"]);

    let groups = |extra: Value| retention(store, p, q(companies(), extra));
    assert_eq!(triangle(&groups(json!({})).await), vec![vec![1, 1, 1, 1], vec![1, 0, 1], vec![0, 0], vec![0]]);
    assert_eq!(
        triangle(&groups(json!({"min_occurrences": 2})).await),
        vec![vec![1, 0, 1, 0], vec![1, 0, 1], vec![0, 0], vec![0]]
    );
    let keys: Vec<String> = groups(cell(0, 2)).await.actors.iter().flatten().map(|a| a.key.clone()).collect();
    assert_eq!(keys, vec!["acme"]);

    for (extra, needle) in
        [(json!({"actors": {"cohort": 3, "period": 1}}), "not a cell"), (json!({"min_occurrences": 0}), "at least 1")]
    {
        match ask(store, p, q(json!("users"), extra.clone())).await {
            Err(crate::QueryError::Invalid(m)) => assert!(m.contains(needle), "{extra}: {m}"),
            other => panic!("{extra} should be refused, got {other:?}"),
        }
    }
}
