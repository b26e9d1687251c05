//! Funnel options: conversion over time, time to convert, breakdown attribution, exclusions in
//! unordered funnels, optional steps.

use serde_json::{json, Value};
use troupe_store::Store;

use super::{at, companies, counts, funnel, Data};
use crate::result::FunnelResult;

fn range() -> Value {
    json!({"from": "2026-03-01", "to": "2026-03-19"})
}

fn steps(names: &[&str]) -> Value {
    json!(names.iter().map(|n| json!({"event": n})).collect::<Vec<_>>())
}

/// Per breakdown value, the step counts.
fn by_value(r: &FunnelResult) -> Vec<(Option<String>, Vec<u64>)> {
    r.breakdowns.iter().map(|b| (b.breakdown_value.clone(), b.steps.iter().map(|s| s.count).collect())).collect()
}

fn value(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// Daily buckets March 1–5, funnel a → b within 1 day, breakdown by the entry's `source`.
/// - u1 (acme): a 2nd 09:00 (ads), b 2nd 10:00; a again 3rd 09:00 (seo), no b after it.
/// - u2 (acme): a 2nd 12:00 (ads), no b.
/// - u3 (globex): a 4th 09:00 (seo), b 5th 09:00 (exactly 1 day: the window is inclusive).
///
/// Users, per bucket of entry: entered [0, 2, 1, 1, 0] (u1 enters on the 2nd and on the 3rd),
/// converted [0, 1, 0, 1, 0]. Companies: acme enters on the 2nd (converts) and the 3rd (does
/// not), globex on the 4th (converts): entered [0, 1, 1, 1, 0], converted [0, 1, 0, 1, 0].
/// By source: ads entered [0, 2, 0, 0, 0] converted [0, 1, …]; seo entered on the 3rd and 4th,
/// converting on the 4th.
pub async fn funnel_conversion_over_time_by_interval_of_entry(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]);
    d.set_group("u3", "company", &["globex"]);
    d.event("u1", "a", at(2, 9, 0), json!({"source": "ads"})).event("u1", "b", at(2, 10, 0), json!({}));
    d.event("u1", "a", at(3, 9, 0), json!({"source": "seo"}));
    d.event("u2", "a", at(2, 12, 0), json!({"source": "ads"}));
    d.event("u3", "a", at(4, 9, 0), json!({"source": "seo"})).event("u3", "b", at(5, 9, 0), json!({}));
    let p = d.load(store).await;
    let days = json!({"from": "2026-03-01", "to": "2026-03-05"});
    let q = |count_by: Value, over_time: Value| {
        json!({"date_range": days, "count_by": count_by, "steps": steps(&["a", "b"]),
               "window": {"value": 1, "unit": "day"}, "conversion_over_time": over_time})
    };
    for over_time in [json!(true), json!({"from_step": 0, "to_step": 1})] {
        let r = funnel(store, p, q(json!("users"), over_time.clone())).await;
        let o = r.conversion_over_time.clone().expect("conversion over time");
        assert_eq!((o.from_step, o.to_step, o.buckets.len(), o.lines.len()), (0, 1, 5, 1), "{over_time}");
        assert_eq!(o.lines[0].entered, vec![0, 2, 1, 1, 0]);
        assert_eq!(o.lines[0].converted, vec![0, 1, 0, 1, 0]);
        assert_eq!(o.lines[0].conversion_rate, vec![0.0, 0.5, 0.0, 1.0, 0.0]);
        // The steps themselves are still answered (one path per actor).
        assert_eq!(counts(&r), vec![3, 2]);
    }
    let r = funnel(store, p, q(companies(), json!(true))).await;
    let o = r.conversion_over_time.expect("conversion over time");
    assert_eq!(o.lines[0].entered, vec![0, 1, 1, 1, 0]);
    assert_eq!(o.lines[0].converted, vec![0, 1, 0, 1, 0]);
    let mut by_source = q(json!("users"), json!(true));
    by_source["breakdown"] = json!({"type": "event", "key": "source"});
    let o = funnel(store, p, by_source).await.conversion_over_time.expect("conversion over time");
    let lines: Vec<(Option<String>, Vec<u64>, Vec<u64>)> =
        o.lines.iter().map(|l| (l.breakdown_value.clone(), l.entered.clone(), l.converted.clone())).collect();
    assert_eq!(
        lines,
        vec![
            (value("ads"), vec![0, 2, 0, 0, 0], vec![0, 1, 0, 0, 0]),
            (value("seo"), vec![0, 0, 1, 1, 0], vec![0, 0, 0, 1, 0]),
        ]
    );
}

/// Funnel a → b → c. u1 (acme): a 09:00, b 09:10, c 10:00 (3600 s from a to c, 3000 s from b).
/// u2: a 09:00, b 09:30, c 09:30 (1800 s; 0 s). u3 (globex): a 09:00, b 09:05, c 11:00 (7200 s;
/// 6900 s). u4: a, b only (not in the histogram).
/// - 0 → 2 in 2 bins: from 1800 s, width ceil(5400 / 2) = 2700 s: [1800, 4500) holds 2, [4500,
///   7200] holds 1; average 4200 s, median 3600 s.
/// - Default bins (Sturges: ceil(log2 3) + 1 = 3), width 1800 s: 1, 1, 1.
/// - 1 → 2: 0, 3000, 6900 s, median 3000 s.
/// - By companies, 0 → 2: acme 3600 s and globex 7200 s; 2 bins of 1800 s: 1, 1.
pub async fn funnel_time_to_convert_histogram(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u3", "company", &["globex"]);
    for (who, b, c) in [("u1", (9, 10), (10, 0)), ("u2", (9, 30), (9, 30)), ("u3", (9, 5), (11, 0))] {
        d.event(who, "a", at(2, 9, 0), json!({})).event(who, "b", at(2, b.0, b.1), json!({}));
        d.event(who, "c", at(2, c.0, c.1), json!({}));
    }
    d.event("u4", "a", at(2, 9, 0), json!({})).event("u4", "b", at(2, 9, 1), json!({}));
    let p = d.load(store).await;
    let q = |count_by: Value, t: Value| json!({"date_range": range(), "count_by": count_by, "steps": steps(&["a", "b", "c"]), "time_to_convert": t});
    let bins = |r: FunnelResult| {
        let t = r.time_to_convert.expect("time to convert");
        let bins: Vec<(f64, f64, u64)> = t.bins.iter().map(|b| (b.from_seconds, b.to_seconds, b.count)).collect();
        (bins, t.average_seconds, t.median_seconds)
    };
    let r = funnel(store, p, q(json!("users"), json!({"from_step": 0, "to_step": 2, "bins": 2}))).await;
    assert_eq!(bins(r), (vec![(1800.0, 4500.0, 2), (4500.0, 7200.0, 1)], Some(4200.0), Some(3600.0)));
    let r = funnel(store, p, q(json!("users"), json!({}))).await;
    assert_eq!(bins(r).0, vec![(1800.0, 3600.0, 1), (3600.0, 5400.0, 1), (5400.0, 7200.0, 1)]);
    let r = funnel(store, p, q(json!("users"), json!({"from_step": 1}))).await;
    assert_eq!(bins(r).2, Some(3000.0));
    let r = funnel(store, p, q(companies(), json!({"bins": 2}))).await;
    assert_eq!(bins(r).0, vec![(3600.0, 5400.0, 1), (5400.0, 7200.0, 1)]);
}

/// Funnel a → b, breakdown by the event property `source`:
/// - u1 (acme), March 2: a (ads) 09:00, b (seo) 10:00.
/// - u2 (acme), March 3: a (ads) 09:00, b (ads) 10:00.
/// - u3 (globex), March 2: a (seo) 09:00, nothing after.
/// - u4 (globex), March 4: a (seo) 09:00, a (ads) 09:30, b (ads) 10:00: b extends the
///   latest entry, the ads one.
///
/// Users: first touch ads [3, 3] (u1, u2, u4), seo [1, 0]; last touch (the last step done) ads
/// [2, 2] (u2, u4), seo [2, 1] (u1 converts on seo, u3 stops on seo); step 1 ads [2, 2], seo
/// [1, 1], none [1, 0] (u3 never did step 1); all steps (every step's event has the value):
/// ads [3, 2] (u1 only enters on ads, its b is seo), seo [2, 0] (u3, and u4's seo entry).
///
/// Companies: acme's first path to convert is u1's (ads → seo), globex's is u4's (ads → ads).
/// First touch ads [2, 2]; last touch and step 1 ads [1, 1] (globex), seo [1, 1] (acme); all
/// steps ads [2, 2] (acme through u2's path), seo [1, 0] (globex's seo entries).
pub async fn funnel_breakdown_attribution(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]);
    d.set_group("u3", "company", &["globex"]).set_group("u4", "company", &["globex"]);
    d.event("u1", "a", at(2, 9, 0), json!({"source": "ads"})).event("u1", "b", at(2, 10, 0), json!({"source": "seo"}));
    d.event("u2", "a", at(3, 9, 0), json!({"source": "ads"})).event("u2", "b", at(3, 10, 0), json!({"source": "ads"}));
    d.event("u3", "a", at(2, 9, 0), json!({"source": "seo"}));
    d.event("u4", "a", at(4, 9, 0), json!({"source": "seo"})).event("u4", "a", at(4, 9, 30), json!({"source": "ads"}));
    d.event("u4", "b", at(4, 10, 0), json!({"source": "ads"}));
    let p = d.load(store).await;
    let q = |count_by: Value, attribution: Value| {
        json!({"date_range": range(), "count_by": count_by, "steps": steps(&["a", "b"]),
               "breakdown": {"type": "event", "key": "source"}, "breakdown_attribution": attribution})
    };
    let users = |attribution: Value| funnel(store, p, q(json!("users"), attribution));
    assert_eq!(
        by_value(&users(json!("first_touch")).await),
        vec![(value("ads"), vec![3, 3]), (value("seo"), vec![1, 0])]
    );
    assert_eq!(
        by_value(&users(json!("last_touch")).await),
        vec![(value("ads"), vec![2, 2]), (value("seo"), vec![2, 1])]
    );
    assert_eq!(
        by_value(&users(json!({"step": 1})).await),
        vec![(value("ads"), vec![2, 2]), (None, vec![1, 0]), (value("seo"), vec![1, 1])]
    );
    let all = users(json!("all_steps")).await;
    assert_eq!(by_value(&all), vec![(value("ads"), vec![3, 2]), (value("seo"), vec![2, 0])]);
    // Without a breakdown each actor counts once, whatever the attribution.
    assert_eq!(counts(&all), vec![4, 3]);
    // The actors of one value: u4 is under both.
    let mut listed = q(json!("users"), json!("all_steps"));
    listed["actors"] = json!({"step": 0, "breakdown_value": "seo"});
    let r = funnel(store, p, listed).await;
    let mut ids: Vec<Vec<String>> = r.actors.iter().flatten().map(|a| a.distinct_ids.clone()).collect();
    ids.sort();
    assert_eq!(ids, vec![vec!["u3".to_string()], vec!["u4".to_string()]]);

    let groups = |attribution: Value| funnel(store, p, q(companies(), attribution));
    assert_eq!(by_value(&groups(json!("first_touch")).await), vec![(value("ads"), vec![2, 2])]);
    for attribution in [json!("last_touch"), json!({"step": 1})] {
        assert_eq!(
            by_value(&groups(attribution.clone()).await),
            vec![(value("ads"), vec![1, 1]), (value("seo"), vec![1, 1])],
            "{attribution}"
        );
    }
    assert_eq!(
        by_value(&groups(json!("all_steps")).await),
        vec![(value("ads"), vec![2, 2]), (value("seo"), vec![1, 0])]
    );
}

/// Unordered a, b with x excluded (across the whole funnel, the only span unordered funnels
/// take): u1 (globex) does b 09:00, x 09:01, a 09:02 → removed; u2 (acme) a 09:00, b 09:05,
/// x 09:06 → counted; u3 a 09:00, x 09:03, never b → removed (x within the window after entry).
pub async fn funnel_unordered_exclusion_spans_the_whole_funnel(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["globex"]).set_group("u2", "company", &["acme"]);
    d.event("u1", "b", at(2, 9, 0), json!({})).event("u1", "x", at(2, 9, 1), json!({}));
    d.event("u1", "a", at(2, 9, 2), json!({}));
    d.event("u2", "a", at(2, 9, 0), json!({})).event("u2", "b", at(2, 9, 5), json!({}));
    d.event("u2", "x", at(2, 9, 6), json!({}));
    d.event("u3", "a", at(2, 9, 0), json!({})).event("u3", "x", at(2, 9, 3), json!({}));
    let p = d.load(store).await;
    for count_by in [json!("users"), companies()] {
        let q = json!({"date_range": range(), "order": "unordered", "count_by": count_by, "steps": steps(&["a", "b"]),
                       "exclusions": [{"event": "x", "from_step": 0, "to_step": 1}]});
        assert_eq!(counts(&funnel(store, p, q).await), vec![1, 1], "{count_by}");
    }
}

/// a → b (optional) → c. u1 (acme): a 09:00, b 09:30, c 10:00; u2 (globex): a 09:00, c 10:00
/// (skips b); u3: a, b; u4: a only. Counts [4, 2, 2]: b counts those who did it, c those who got
/// there with or without b. For b and c, "previous" is a (the last required step): c converts
/// 2 of 4 (0.5), 2 dropped. Times: c from the step done before it, 1800 s (u1, from b) and
/// 3600 s (u2, from a): median 2700 s. By companies: acme [1, 1, 1], globex [1, 0, 1].
pub async fn funnel_optional_steps(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["globex"]);
    d.event("u1", "a", at(2, 9, 0), json!({})).event("u1", "b", at(2, 9, 30), json!({}));
    d.event("u1", "c", at(2, 10, 0), json!({}));
    d.event("u2", "a", at(2, 9, 0), json!({})).event("u2", "c", at(2, 10, 0), json!({}));
    d.event("u3", "a", at(2, 9, 0), json!({})).event("u3", "b", at(2, 9, 5), json!({}));
    d.event("u4", "a", at(2, 9, 0), json!({}));
    let p = d.load(store).await;
    let q = |count_by: Value, order: &str| {
        json!({"date_range": range(), "count_by": count_by, "order": order,
               "steps": [{"event": "a"}, {"event": "b", "optional": true}, {"event": "c"}]})
    };
    let r = funnel(store, p, q(json!("users"), "ordered")).await;
    assert_eq!(counts(&r), vec![4, 2, 2]);
    assert!(r.steps[1].optional && !r.steps[2].optional);
    assert_eq!((r.steps[2].conversion_from_previous, r.steps[2].dropped), (0.5, 2));
    assert_eq!((r.steps[1].conversion_from_previous, r.steps[1].dropped), (0.5, 2));
    assert_eq!(r.steps[2].median_seconds, Some(2700.0));
    // Strict: nothing else happens between the steps here, so the same.
    assert_eq!(counts(&funnel(store, p, q(json!("users"), "strict")).await), vec![4, 2, 2]);
    assert_eq!(counts(&funnel(store, p, q(companies(), "ordered")).await), vec![2, 1, 2]);
}
