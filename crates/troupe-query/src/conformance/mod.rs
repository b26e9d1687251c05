//! Insight cases every backend must answer identically: small data sets whose answers were
//! computed by hand (the comment above each case shows the reasoning). A backend instantiates
//! them with [`crate::insight_conformance_suite!`].
//!
//! Unless a case says otherwise: days are March 2026 in UTC, `now` is 2026-03-20T00:00:00Z,
//! `acme` and `globex` are companies.

use chrono::{DateTime, TimeZone, Utc};
use serde_json::{json, Value};
use troupe_core::{Command, MembershipOp, ProfileOp, ProjectId, TrackEvent};
use troupe_store::{NewProject, Store};

mod funnel_options;
mod kind_options;
mod paths;
mod retention_options;
mod trend_options;
pub use funnel_options::*;
pub use kind_options::*;
pub use paths::*;
pub use retention_options::*;
pub use trend_options::*;

use crate::result::{FunnelResult, InsightResult, LifecycleResult, RetentionResult, StickinessResult, TrendsResult};
use crate::spec::Insight;
use crate::QueryError;

/// Instantiate every insight case as a `#[tokio::test]`; `$make` is an async constructor of a
/// fresh store returning `(store, guard)`.
#[macro_export]
macro_rules! insight_conformance_suite {
    ($make:expr) => {
        $crate::insight_conformance_suite!(@cases $make;
            trends_count_events_users_and_groups,
            trends_property_math_and_per_actor,
            trends_attribution_stays_where_it_was_stamped,
            trends_several_ids_per_type_count_for_each,
            trends_breakdown_by_group_counts_an_event_once_per_value,
            trends_identity_merge_counts_the_person_once,
            trends_untyped_ids_resolve_at_query_time,
            trends_buckets_follow_the_timezone_across_dst,
            trends_filters_on_event_person_and_group_properties,
            trends_breakdown_top_values_and_other,
            trends_formula_and_previous_period,
            trends_filter_on_group_key_and_current_membership,
            trends_rolling_cumulative_and_profile_property_math,
            funnel_ordered_by_users_and_by_groups,
            funnel_window_is_inclusive_and_ties_count_in_order,
            funnel_strict_and_unordered,
            funnel_unordered_completed_twice_times_the_first_completion,
            funnel_events_sharing_a_timestamp_serve_every_step_they_match,
            funnel_conversion_over_time_by_interval_of_entry,
            funnel_time_to_convert_histogram,
            funnel_breakdown_attribution,
            funnel_unordered_exclusion_spans_the_whole_funnel,
            funnel_optional_steps,
            funnel_exclusion_removes_the_actor,
            funnel_out_of_order_arrival_and_breakdown,
            funnel_several_ids_merges_and_membership_changes,
            retention_first_time_and_recurring,
            retention_weeks_follow_the_timezone_across_dst,
            retention_cumulative_min_occurrences_actors_and_mean,
            stickiness_by_users_and_groups,
            stickiness_criterion_per_interval,
            lifecycle_by_users_and_groups,
            lifecycle_new_by_creation_time,
            paths_from_start_to_end_by_users_and_groups,
            cohorts_static_and_dynamic_as_filters,
            cohort_members_are_listed,
            filters_apply_to_every_kind,
            an_erased_person_counts_as_if_it_never_existed,
            an_anonymized_person_keeps_every_count,
            synthetic_ids_are_events_but_not_users,
            invalid_questions_are_refused);
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

fn now() -> DateTime<Utc> {
    at(20, 0, 0)
}

/// March 2026, UTC.
fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, minute, 0).single().unwrap_or_default()
}

static NEXT_EVENT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Commands for a case, applied in order.
#[derive(Default)]
struct Data {
    commands: Vec<Command>,
}

impl Data {
    fn event(&mut self, who: &str, name: &str, when: DateTime<Utc>, properties: Value) -> &mut Self {
        self.event_with(who, name, when, properties, &[])
    }

    fn event_with(
        &mut self,
        who: &str,
        name: &str,
        when: DateTime<Utc>,
        properties: Value,
        groups: &[(&str, &[&str])],
    ) -> &mut Self {
        // Unique across loads: the store drops a repeated event id as a retry.
        let id = format!("e{}", NEXT_EVENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
        self.commands.push(Command::Track(TrackEvent {
            event: name.into(),
            distinct_id: who.into(),
            id: Some(id),
            timestamp: Some(when),
            properties: properties.as_object().cloned().unwrap_or_default(),
            groups: groups
                .iter()
                .map(|(t, ids)| (t.to_string(), ids.iter().map(|s| s.to_string()).collect()))
                .collect(),
            ..TrackEvent::default()
        }));
        self
    }

    fn untyped_event(&mut self, who: &str, name: &str, when: DateTime<Utc>, keys: &[&str]) -> &mut Self {
        self.event(who, name, when, json!({}));
        if let Some(Command::Track(e)) = self.commands.last_mut() {
            e.untyped_groups = keys.iter().map(|k| k.to_string()).collect();
        }
        self
    }

    fn set_group(&mut self, who: &str, group_type: &str, keys: &[&str]) -> &mut Self {
        let op = MembershipOp::Set(keys.iter().map(|s| s.to_string()).collect());
        self.commands.push(Command::Membership { distinct_id: who.into(), group_type: group_type.into(), op });
        self
    }

    fn group(&mut self, group_type: &str, key: &str, properties: Value) -> &mut Self {
        self.commands.push(Command::GroupProfile {
            group_type: group_type.into(),
            group_key: key.into(),
            name: None,
            op: ProfileOp::Set(properties.as_object().cloned().unwrap_or_default()),
        });
        self
    }

    fn person(&mut self, who: &str, properties: Value) -> &mut Self {
        let op = ProfileOp::Set(properties.as_object().cloned().unwrap_or_default());
        self.commands.push(Command::PersonProfile { distinct_id: who.into(), op });
        self
    }

    fn identify(&mut self, anon: &str, user: &str) -> &mut Self {
        self.commands.push(Command::Identify { anon_distinct_id: anon.into(), distinct_id: user.into() });
        self
    }

    async fn load(&mut self, store: &dyn Store) -> ProjectId {
        let project = store
            .create_project(NewProject {
                name: "insights".into(),
                ingestion_key: "ingest-insights".into(),
                secret_key_hash: "hash-insights".into(),
            })
            .await
            .expect("project is created")
            .id;
        self.load_into(store, project).await;
        project
    }

    async fn load_into(&mut self, store: &dyn Store, project: ProjectId) {
        let results = store.apply(project, std::mem::take(&mut self.commands)).await.expect("store applies the batch");
        for r in results {
            r.expect("every command is valid");
        }
    }
}

async fn ask(store: &dyn Store, project: ProjectId, query: Value) -> Result<InsightResult, QueryError> {
    // Read strictly, as the API reads it: every question of the suite also checks that no field
    // it uses is taken for an unknown one.
    let insight: Insight = crate::spec::from_json(query.clone()).unwrap_or_else(|e| panic!("query {query}: {e}"));
    crate::run(store, project, &insight, now()).await
}

async fn trends(store: &dyn Store, project: ProjectId, query: Value) -> TrendsResult {
    match ask(store, project, with_kind(query, "trends")).await.expect("trends answer") {
        InsightResult::Trends(r) => r,
        other => panic!("not trends: {other:?}"),
    }
}

async fn funnel(store: &dyn Store, project: ProjectId, query: Value) -> FunnelResult {
    match ask(store, project, with_kind(query, "funnel")).await.expect("funnel answer") {
        InsightResult::Funnel(r) => r,
        other => panic!("not a funnel: {other:?}"),
    }
}

fn with_kind(mut query: Value, kind: &str) -> Value {
    query["kind"] = json!(kind);
    query
}

fn companies() -> Value {
    json!({"group_type": "company"})
}

/// The data of each line, without breakdown: one line per series.
fn data(r: &TrendsResult) -> Vec<Vec<f64>> {
    r.series.iter().map(|l| l.data.clone()).collect()
}

fn counts(r: &FunnelResult) -> Vec<u64> {
    r.steps.iter().map(|s| s.count).collect()
}

// ---------------------------------------------------------------- trends

/// u1, u2 in acme, u3 in globex, u4 in no company. March 2: u1 views twice, u2, u3, u4 once;
/// March 3: u1 once. Total [5, 1]; users [4, 1] and 4 over the range; companies: March 2 acme
/// and globex, March 3 acme: [2, 1], 2 over the range. Counting by companies, `total` still
/// counts every event (PostHog's rule); u4's event counts for no company.
pub async fn trends_count_events_users_and_groups(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]).set_group(
        "u3",
        "company",
        &["globex"],
    );
    d.event("u1", "view", at(2, 9, 0), json!({})).event("u1", "view", at(2, 10, 0), json!({}));
    d.event("u2", "view", at(2, 11, 0), json!({})).event("u3", "view", at(2, 12, 0), json!({}));
    d.event("u4", "view", at(2, 13, 0), json!({})).event("u1", "view", at(3, 9, 0), json!({}));
    d.event("u1", "other", at(3, 9, 30), json!({}));
    let p = d.load(store).await;
    let range = json!({"from": "2026-03-02", "to": "2026-03-03"});
    let series = json!([{"event": "view", "math": "total"}, {"event": "view", "math": "unique"}]);
    let by_users = trends(store, p, json!({"date_range": range, "series": series})).await;
    assert_eq!(by_users.buckets, vec!["2026-03-02T00:00:00+00:00", "2026-03-03T00:00:00+00:00"]);
    assert_eq!(data(&by_users), vec![vec![5.0, 1.0], vec![4.0, 1.0]]);
    assert_eq!(by_users.series[1].aggregated_value, 4.0);
    let by_companies = trends(store, p, json!({"date_range": range, "series": series, "count_by": companies()})).await;
    assert_eq!(data(&by_companies), vec![vec![5.0, 1.0], vec![2.0, 1.0]]);
    assert_eq!(by_companies.series[1].aggregated_value, 2.0);
    // The actors behind a data point: March 2's companies.
    let point = trends(
        store,
        p,
        json!({"date_range": range, "series": series, "count_by": companies(), "actors": {"series": 1, "bucket": 0}}),
    )
    .await;
    let keys: Vec<String> = point.actors.iter().flatten().map(|a| a.key.clone()).collect();
    assert_eq!(keys, vec!["acme", "globex"]);
    // All events: the "other" event counts too.
    let all = trends(store, p, json!({"date_range": range, "series": [{"math": "total"}]})).await;
    assert_eq!(data(&all), vec![vec![5.0, 2.0]]);
}

/// "load" carries ms = 10, 20, 30, 40 (u1 ×3 in acme, u2 ×1 in acme) on March 2, and one without
/// ms. Sum 100, avg 25, min 10, max 40, median 25, p90 37. Per user: u1 4 events, u2 1 → avg
/// 2.5, max 4, min 1; per company: acme 5.
pub async fn trends_property_math_and_per_actor(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]);
    for (i, ms) in [10, 20, 30].iter().enumerate() {
        d.event("u1", "load", at(2, 9, i as u32), json!({"ms": ms}));
    }
    d.event("u1", "load", at(2, 9, 30), json!({"ms": "n/a"})).event("u2", "load", at(2, 10, 0), json!({"ms": 40}));
    let p = d.load(store).await;
    let range = json!({"from": "2026-03-02", "to": "2026-03-02"});
    let maths = ["sum", "avg", "min", "max", "median", "p90"];
    let series: Vec<Value> = maths.iter().map(|m| json!({"event": "load", "math": m, "property": "ms"})).collect();
    let r = trends(store, p, json!({"date_range": range, "series": series})).await;
    assert_eq!(data(&r), vec![vec![100.0], vec![25.0], vec![10.0], vec![40.0], vec![25.0], vec![37.0]]);
    let per_actor = json!([
        {"event": "load", "math": "avg_per_actor"}, {"event": "load", "math": "max_per_actor"},
        {"event": "load", "math": "min_per_actor"}, {"event": "load", "math": "median_per_actor"}
    ]);
    let r = trends(store, p, json!({"date_range": range, "series": per_actor})).await;
    assert_eq!(data(&r), vec![vec![2.5], vec![4.0], vec![1.0], vec![2.5]]);
    let r = trends(store, p, json!({"date_range": range, "series": per_actor, "count_by": companies()})).await;
    assert_eq!(data(&r), vec![vec![5.0], vec![5.0], vec![5.0], vec![5.0]]);
}

/// u1 is in acme on March 2 and moves to globex before March 3's event: the March 2 event stays
/// acme's. Companies per day: [1, 1], 2 over the range; filtered to company name "Acme" (a
/// current group property), only March 2 counts.
pub async fn trends_attribution_stays_where_it_was_stamped(store: &dyn Store) {
    let mut d = Data::default();
    d.group("company", "acme", json!({"name": "Acme"})).group("company", "globex", json!({"name": "Globex"}));
    d.set_group("u1", "company", &["acme"]).event("u1", "view", at(2, 9, 0), json!({}));
    d.set_group("u1", "company", &["globex"]).event("u1", "view", at(3, 9, 0), json!({}));
    let p = d.load(store).await;
    let q = |filters: Value| {
        json!({"date_range": {"from": "2026-03-02", "to": "2026-03-03"}, "count_by": companies(),
               "series": [{"event": "view", "math": "unique"}], "filters": filters})
    };
    let r = trends(store, p, q(Value::Null)).await;
    assert_eq!(data(&r), vec![vec![1.0, 1.0]]);
    assert_eq!(r.series[0].aggregated_value, 2.0);
    let acme = json!({"type": "group", "group_type": "company", "key": "name", "value": "Acme"});
    let r = trends(store, p, q(acme)).await;
    assert_eq!(data(&r), vec![vec![1.0, 0.0]]);
}

/// u1 belongs to teams t1 and t2 and also sends an event with an explicit team t3: the first
/// event counts for t1 and t2, the second for t3 only (explicit ids win for their type).
/// Unique teams 3, events 2, events per team 1 each.
pub async fn trends_several_ids_per_type_count_for_each(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "team", &["t1", "t2"]).event("u1", "view", at(2, 9, 0), json!({}));
    d.event_with("u1", "view", at(2, 10, 0), json!({}), &[("team", &["t3"])]);
    let p = d.load(store).await;
    let r = trends(
        store,
        p,
        json!({"date_range": {"from": "2026-03-02", "to": "2026-03-02"}, "count_by": {"group_type": "team"},
               "series": [{"event": "view", "math": "unique"}, {"event": "view"}, {"event": "view", "math": "max_per_actor"}]}),
    )
    .await;
    assert_eq!(data(&r), vec![vec![3.0], vec![2.0], vec![1.0]]);
}

/// Broken down by a group property, an event counts once on each value its groups have: u1's
/// event (teams t1 and t2, both gold) once for gold; u2's (t1 gold, t3 silver) once on each;
/// u3's (t3) for silver, u4's (no team) for "not set", u5's (t4, no tier) for "not set" too.
pub async fn trends_breakdown_by_group_counts_an_event_once_per_value(store: &dyn Store) {
    let mut d = Data::default();
    d.group("team", "t1", json!({"tier": "gold"}))
        .group("team", "t2", json!({"tier": "gold"}))
        .group("team", "t3", json!({"tier": "silver"}))
        .group("team", "t4", json!({}));
    d.set_group("u1", "team", &["t1", "t2"]).set_group("u2", "team", &["t1", "t3"]).set_group("u3", "team", &["t3"]);
    d.set_group("u5", "team", &["t4"]);
    for (i, who) in ["u1", "u2", "u3", "u4", "u5"].iter().enumerate() {
        d.event(who, "view", at(2, 9, i as u32), json!({}));
    }
    d.event("u1", "view", at(3, 9, 0), json!({}));
    let p = d.load(store).await;
    let r = trends(
        store,
        p,
        json!({"date_range": {"from": "2026-03-02", "to": "2026-03-03"}, "series": [{"event": "view"}],
               "breakdown": {"type": "group", "group_type": "team", "key": "tier"}}),
    )
    .await;
    let mut lines: Vec<(Option<String>, Vec<f64>)> =
        r.series.iter().map(|l| (l.breakdown_value.clone(), l.data.clone())).collect();
    lines.sort_by(|a, b| a.0.cmp(&b.0));
    let s = |v: &str| Some(v.to_string());
    assert_eq!(lines, vec![(None, vec![2.0, 0.0]), (s("gold"), vec![2.0, 1.0]), (s("silver"), vec![2.0, 0.0])]);
}

/// anon-1 browses on March 2, then is identified as u1, who acts on March 3: one user over the
/// range (the merge reaches back), one per day.
pub async fn trends_identity_merge_counts_the_person_once(store: &dyn Store) {
    let mut d = Data::default();
    d.event("anon-1", "view", at(2, 9, 0), json!({})).identify("anon-1", "u1");
    d.event("u1", "view", at(3, 9, 0), json!({}));
    let p = d.load(store).await;
    let r = trends(
        store,
        p,
        json!({"date_range": {"from": "2026-03-02", "to": "2026-03-03"}, "series": [{"event": "view", "math": "unique"}]}),
    )
    .await;
    assert_eq!(data(&r), vec![vec![1.0, 1.0]]);
    assert_eq!(r.series[0].aggregated_value, 1.0);
}

/// An OpenPanel-style event carries the untyped id "acme" before any group exists; the company
/// acme is created afterwards and the event counts for it. "nobody" names no group: no count.
pub async fn trends_untyped_ids_resolve_at_query_time(store: &dyn Store) {
    let mut d = Data::default();
    d.untyped_event("u1", "view", at(2, 9, 0), &["acme", "nobody"]);
    d.group("company", "acme", json!({"plan": "pro"}));
    let p = d.load(store).await;
    let r = trends(
        store,
        p,
        json!({"date_range": {"from": "2026-03-02", "to": "2026-03-02"}, "count_by": companies(),
               "series": [{"event": "view", "math": "unique"}]}),
    )
    .await;
    assert_eq!(data(&r), vec![vec![1.0]]);
}

/// Paris springs forward on 29 March 2026 (02:00 → 03:00). Events at 00:30 and 23:30 local
/// time that day (23:30Z on the 28th, 21:30Z on the 29th) fall in the local 29 March bucket,
/// which is 23 hours long; in UTC they are on two days.
pub async fn trends_buckets_follow_the_timezone_across_dst(store: &dyn Store) {
    let mut d = Data::default();
    d.event("u1", "view", at(28, 23, 30), json!({})).event("u1", "view", at(29, 21, 30), json!({}));
    d.event("u1", "view", at(30, 0, 30), json!({}));
    let p = d.load(store).await;
    let q = |tz: &str| json!({"date_range": {"from": "2026-03-28", "to": "2026-03-29"}, "timezone": tz, "series": [{"event": "view"}]});
    let paris = trends(store, p, q("Europe/Paris")).await;
    assert_eq!(paris.buckets, vec!["2026-03-28T00:00:00+01:00", "2026-03-29T00:00:00+01:00"]);
    assert_eq!(data(&paris), vec![vec![0.0, 2.0]]);
    let utc = trends(store, p, q("UTC")).await;
    assert_eq!(data(&utc), vec![vec![1.0, 1.0]]);
}

/// Five purchases on March 2 with plan pro (amount 120), pro (30), free (0), enterprise (900) and
/// none; u1 (country FR) made the first two, u2 (DE) the rest; u1 is in acme (tier gold).
pub async fn trends_filters_on_event_person_and_group_properties(store: &dyn Store) {
    let mut d = Data::default();
    d.group("company", "acme", json!({"tier": "gold"})).set_group("u1", "company", &["acme"]);
    d.person("u1", json!({"country": "FR"})).person("u2", json!({"country": "DE"}));
    d.event("u1", "buy", at(2, 9, 0), json!({"plan": "pro", "amount": 120}));
    d.event("u1", "buy", at(2, 9, 1), json!({"plan": "pro", "amount": 30}));
    d.event("u2", "buy", at(2, 9, 2), json!({"plan": "free", "amount": 0}));
    d.event("u2", "buy", at(2, 9, 3), json!({"plan": "enterprise", "amount": "900"}));
    d.event("u2", "buy", at(2, 9, 4), json!({}));
    let p = d.load(store).await;
    let cases = [
        (json!({"type": "event", "key": "plan", "value": "pro"}), 2.0),
        (json!({"type": "event", "key": "plan", "operator": "equals", "value": ["pro", "free"]}), 3.0),
        (json!({"type": "event", "key": "plan", "operator": "not_equals", "value": "pro"}), 3.0),
        (json!({"type": "event", "key": "plan", "operator": "contains", "value": "PRI"}), 1.0),
        (json!({"type": "event", "key": "plan", "operator": "regex", "value": "^(free|pro)$"}), 3.0),
        (json!({"type": "event", "key": "plan", "operator": "is_not_set"}), 1.0),
        (json!({"type": "event", "key": "amount", "operator": "gt", "value": 100}), 2.0),
        (json!({"type": "event", "key": "amount", "operator": "lte", "value": 30}), 2.0),
        (json!({"type": "event", "key": "amount", "operator": "in", "value": [0, 30]}), 2.0),
        (json!({"type": "person", "key": "country", "value": "FR"}), 2.0),
        (json!({"type": "group", "group_type": "company", "key": "tier", "value": "gold"}), 2.0),
        (json!({"type": "group", "group_type": "company", "key": "tier", "operator": "is_not_set"}), 3.0),
        (
            json!({"or": [{"type": "person", "key": "country", "value": "FR"},
                          {"and": [{"type": "event", "key": "plan", "operator": "is_set"},
                                   {"not": {"type": "event", "key": "amount", "operator": "gt", "value": 500}}]}]}),
            3.0,
        ),
    ];
    for (filter, expected) in cases {
        let r = trends(
            store,
            p,
            json!({"date_range": {"from": "2026-03-02", "to": "2026-03-02"}, "series": [{"event": "buy", "filters": filter}]}),
        )
        .await;
        assert_eq!(data(&r), vec![vec![expected]], "filter {filter}");
    }
}

/// Seven views with plan pro ×3, free ×2, enterprise ×1 and none ×1. A breakdown with limit 2
/// keeps pro and free and sums the rest into "$other" (2); by a person property and a group
/// property the same way. Unique users per value are distinct within the value.
pub async fn trends_breakdown_top_values_and_other(store: &dyn Store) {
    let mut d = Data::default();
    d.group("company", "acme", json!({"tier": "gold"})).group("company", "globex", json!({"tier": "silver"}));
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["globex"]);
    d.person("u1", json!({"country": "FR"})).person("u2", json!({"country": "DE"}));
    let plans = [("u1", "pro"), ("u1", "pro"), ("u2", "pro"), ("u1", "free"), ("u2", "free"), ("u3", "enterprise")];
    for (i, (who, plan)) in plans.iter().enumerate() {
        d.event(who, "view", at(2, 9, i as u32), json!({"plan": plan}));
    }
    d.event("u3", "view", at(2, 10, 0), json!({}));
    // Only in the day before: a value with no weight in the range.
    d.event("u1", "view", at(1, 9, 0), json!({"plan": "legacy"}));
    let p = d.load(store).await;
    let q = |breakdown: Value, math: &str| {
        json!({"date_range": {"from": "2026-03-02", "to": "2026-03-02"}, "breakdown": breakdown,
               "series": [{"event": "view", "math": math}]})
    };
    let lines = |r: &TrendsResult| -> Vec<(Option<String>, f64)> {
        r.series.iter().map(|l| (l.breakdown_value.clone(), l.data[0])).collect()
    };
    let s = |v: &str| Some(v.to_string());
    let r = trends(store, p, q(json!({"type": "event", "key": "plan", "limit": 2}), "total")).await;
    assert_eq!(lines(&r), vec![(s("pro"), 3.0), (s("free"), 2.0), (s("$other"), 2.0)]);
    let r = trends(store, p, q(json!({"type": "event", "key": "plan", "limit": 2}), "unique")).await;
    assert_eq!(lines(&r), vec![(s("free"), 2.0), (s("pro"), 2.0), (s("$other"), 1.0)]);
    let r = trends(store, p, q(json!({"type": "person", "key": "country"}), "total")).await;
    assert_eq!(lines(&r), vec![(s("FR"), 3.0), (s("DE"), 2.0), (None, 2.0)]);
    let r = trends(store, p, q(json!({"type": "group", "group_type": "company", "key": "tier"}), "total")).await;
    assert_eq!(lines(&r), vec![(s("gold"), 3.0), (s("silver"), 2.0), (None, 2.0)]);
    // Beyond the limit, "not set" and the other values share one line (last, whatever its size).
    let tier = json!({"type": "group", "group_type": "company", "key": "tier", "limit": 1});
    let r = trends(store, p, q(tier.clone(), "total")).await;
    assert_eq!(lines(&r), vec![(s("gold"), 3.0), (s("$other"), 4.0)]);
    let r = trends(store, p, q(tier, "unique")).await;
    assert_eq!(lines(&r), vec![(s("gold"), 1.0), (s("$other"), 2.0)]);
    // Within the limit "not set" is a line of its own; compared with the day before, a value
    // seen only then (no weight in the range) falls in "other".
    let mut compared = q(json!({"type": "event", "key": "plan"}), "total");
    compared["compare"] = json!(true);
    let r = trends(store, p, compared).await;
    let period = |name: &str| {
        let mut lines: Vec<(Option<String>, f64)> = r
            .series
            .iter()
            .filter(|l| l.compare.as_deref() == Some(name))
            .map(|l| (l.breakdown_value.clone(), l.data[0]))
            .collect();
        lines.sort_by(|a, b| a.0.cmp(&b.0));
        lines
    };
    assert_eq!(period("current"), vec![(None, 1.0), (s("enterprise"), 1.0), (s("free"), 2.0), (s("pro"), 3.0)]);
    assert_eq!(period("previous"), vec![(s("$other"), 1.0)]);
    // The actors behind one line's point.
    let who = |value: &str| {
        let mut query = q(json!({"type": "event", "key": "plan", "limit": 2}), "unique");
        query["actors"] = json!({"series": 0, "bucket": 0, "breakdown_value": value});
        query
    };
    for (value, expected) in [("free", vec!["u1", "u2"]), ("$other", vec!["u3"]), ("missing", vec![])] {
        let r = trends(store, p, who(value)).await;
        let mut ids: Vec<String> = r.actors.iter().flatten().flat_map(|a| a.distinct_ids.clone()).collect();
        ids.sort();
        assert_eq!(ids, expected, "actors of {value}");
    }
}

/// Signups [2, 1] and views [4, 4] on March 3–4; the formula A / B is [0.5, 0.25]. Compared
/// with the previous period (March 1–2: signups [1, 0], views [2, 0]); the empty bucket of the
/// formula divides by zero and reads 0.
pub async fn trends_formula_and_previous_period(store: &dyn Store) {
    let mut d = Data::default();
    let counts = [(1, 1, 2), (2, 0, 0), (3, 2, 4), (4, 1, 4)];
    for (day, signups, views) in counts {
        for i in 0..signups {
            d.event(&format!("s{day}{i}"), "signup", at(day, 9, i), json!({}));
        }
        for i in 0..views {
            d.event(&format!("v{day}{i}"), "view", at(day, 10, i), json!({}));
        }
    }
    let p = d.load(store).await;
    let r = trends(
        store,
        p,
        json!({"date_range": {"from": "2026-03-03", "to": "2026-03-04"}, "compare": true, "formula": "A / B",
               "series": [{"event": "signup"}, {"event": "view"}]}),
    )
    .await;
    let line = |compare: &str, series: Option<usize>| {
        r.series
            .iter()
            .find(|l| l.compare.as_deref() == Some(compare) && l.series == series)
            .map(|l| l.data.clone())
            .unwrap_or_else(|| panic!("line {compare} {series:?} in {:?}", r.series))
    };
    assert_eq!(line("current", Some(0)), vec![2.0, 1.0]);
    assert_eq!(line("current", None), vec![0.5, 0.25]);
    assert_eq!(line("previous", Some(1)), vec![2.0, 0.0]);
    assert_eq!(line("previous", None), vec![0.5, 0.0]);
    let previous = r.series.iter().find(|l| l.compare.as_deref() == Some("previous")).and_then(|l| l.buckets.clone());
    assert_eq!(previous, Some(vec!["2026-03-01T00:00:00+00:00".to_string(), "2026-03-02T00:00:00+00:00".to_string()]));
}

// ---------------------------------------------------------------- funnels

/// signup → create → invite, 14-day window, March 1–31.
/// u1 (acme): signup 2nd 09:00, create 2nd 10:00, invite 3rd 10:00: converts (1 h, 24 h).
/// u2 (acme): signup 2nd 11:00, invite 2nd 12:00, never creates: step 1.
/// u3 (globex): create 2nd 08:00, then signup 2nd 10:00, nothing after: step 1.
/// u4 (globex): signup 2nd 09:00: step 1.
/// By users: [4, 1, 1]. By companies, acme's events from both members: u1's signup 09:00, u1's
/// create 10:00 (1 h), u2's invite 12:00 (2 h): converts, and the first path to get there is
/// reported (not u1's own invite a day later). globex's only create (08:00) comes before both
/// signups: step 1. By companies: [2, 1, 1].
pub async fn funnel_ordered_by_users_and_by_groups(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]);
    d.set_group("u3", "company", &["globex"]).set_group("u4", "company", &["globex"]);
    d.event("u1", "signup", at(2, 9, 0), json!({})).event("u1", "create", at(2, 10, 0), json!({}));
    d.event("u1", "invite", at(3, 10, 0), json!({}));
    d.event("u2", "signup", at(2, 11, 0), json!({})).event("u2", "invite", at(2, 12, 0), json!({}));
    d.event("u3", "create", at(2, 8, 0), json!({})).event("u3", "signup", at(2, 10, 0), json!({}));
    d.event("u4", "signup", at(2, 9, 0), json!({}));
    let p = d.load(store).await;
    let q = |count_by: Value, actors: Value| {
        json!({"date_range": {"from": "2026-03-01", "to": "2026-03-19"}, "count_by": count_by, "actors": actors,
               "steps": [{"event": "signup"}, {"event": "create"}, {"event": "invite"}]})
    };
    let users = funnel(store, p, q(json!("users"), json!({"step": 1, "status": "dropped"}))).await;
    assert_eq!(counts(&users), vec![4, 1, 1]);
    assert_eq!(users.steps[1].conversion_from_first, 0.25);
    assert_eq!(users.steps[2].conversion_from_previous, 1.0);
    assert_eq!(users.steps[1].dropped, 3);
    assert_eq!(users.steps[1].median_seconds, Some(3600.0));
    assert_eq!(users.steps[2].average_seconds, Some(86400.0));
    let dropped: Vec<Vec<String>> = users.actors.iter().flatten().map(|a| a.distinct_ids.clone()).collect();
    let mut dropped: Vec<String> = dropped.into_iter().flatten().collect();
    dropped.sort();
    assert_eq!(dropped, vec!["u2", "u3", "u4"]);

    let groups = funnel(store, p, q(companies(), json!({"step": 2}))).await;
    assert_eq!(counts(&groups), vec![2, 1, 1]);
    assert_eq!(groups.steps[1].median_seconds, Some(3600.0));
    assert_eq!(groups.steps[2].median_seconds, Some(7200.0));
    let converted: Vec<String> = groups.actors.iter().flatten().map(|a| a.key.clone()).collect();
    assert_eq!(converted, vec!["acme"]);
}

/// A 1-hour window: u1's second step comes exactly 1 h after the first (converts, the window
/// is inclusive), u2's 1 h 1 min after (does not). u3 sends both steps with one timestamp,
/// step 2 first: steps at one timestamp count as in order. u4 does step 1 once: one event
/// never serves two steps of the same name (a → a funnel).
pub async fn funnel_window_is_inclusive_and_ties_count_in_order(store: &dyn Store) {
    let mut d = Data::default();
    d.event("u1", "a", at(2, 9, 0), json!({})).event("u1", "b", at(2, 10, 0), json!({}));
    d.event("u2", "a", at(2, 9, 0), json!({})).event("u2", "b", at(2, 10, 1), json!({}));
    d.event("u3", "b", at(2, 9, 0), json!({})).event("u3", "a", at(2, 9, 0), json!({}));
    d.event("u4", "a", at(2, 9, 0), json!({}));
    let p = d.load(store).await;
    let range = json!({"from": "2026-03-01", "to": "2026-03-19"});
    let r = funnel(
        store,
        p,
        json!({"date_range": range, "window": {"value": 1, "unit": "hour"}, "steps": [{"event": "a"}, {"event": "b"}]}),
    )
    .await;
    assert_eq!(counts(&r), vec![4, 2]);
    let r = funnel(store, p, json!({"date_range": range, "steps": [{"event": "a"}, {"event": "a"}]})).await;
    assert_eq!(counts(&r), vec![4, 0]);
}

/// Strict: u1 does a, x, b (x breaks it), u2 a, b. Ordered counts both. Unordered: u3 does b
/// then a, which converts; u4 only b, which enters (any step can be first) and stops.
pub async fn funnel_strict_and_unordered(store: &dyn Store) {
    let mut d = Data::default();
    d.event("u1", "a", at(2, 9, 0), json!({})).event("u1", "x", at(2, 9, 1), json!({}));
    d.event("u1", "b", at(2, 9, 2), json!({}));
    d.event("u2", "a", at(2, 9, 0), json!({})).event("u2", "b", at(2, 9, 5), json!({}));
    let p = d.load(store).await;
    let q = |order: &str| {
        json!({"date_range": {"from": "2026-03-01", "to": "2026-03-19"}, "order": order,
               "steps": [{"event": "a"}, {"event": "b"}]})
    };
    assert_eq!(counts(&funnel(store, p, q("strict")).await), vec![2, 1]);
    assert_eq!(counts(&funnel(store, p, q("ordered")).await), vec![2, 2]);
    let mut d = Data::default();
    d.event("u3", "b", at(3, 9, 0), json!({})).event("u3", "a", at(3, 9, 5), json!({}));
    d.event("u4", "b", at(3, 9, 0), json!({}));
    d.load_into(store, p).await;
    assert_eq!(counts(&funnel(store, p, q("unordered")).await), vec![4, 3]);
    // Ordered, u3 enters with a and never does b after it; u4 never enters.
    assert_eq!(counts(&funnel(store, p, q("ordered")).await), vec![3, 2]);
}

/// Unordered, completed twice by one actor: u1 does a 09:00, b 10:00 on March 2, then a 09:00,
/// b 12:00 on March 3 (both within the 14-day window). Times to convert come from the first
/// completion that got that far (docs/insights.md, "Re-entry"): 1 h, not the later 3 h. By
/// companies the same (u1 is acme's only member).
pub async fn funnel_unordered_completed_twice_times_the_first_completion(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]);
    d.event("u1", "a", at(2, 9, 0), json!({})).event("u1", "b", at(2, 10, 0), json!({}));
    d.event("u1", "a", at(3, 9, 0), json!({})).event("u1", "b", at(3, 12, 0), json!({}));
    let p = d.load(store).await;
    for count_by in [json!("users"), companies()] {
        let q = json!({"date_range": {"from": "2026-03-01", "to": "2026-03-19"}, "order": "unordered",
                       "count_by": count_by, "steps": [{"event": "a"}, {"event": "b"}]});
        let r = funnel(store, p, q).await;
        assert_eq!(counts(&r), vec![1, 1]);
        assert_eq!(r.steps[1].median_seconds, Some(3600.0), "{count_by}");
        assert_eq!(r.steps[1].average_seconds, Some(3600.0), "{count_by}");
    }
}

/// Events sharing a timestamp serve every step they match (PostHog's rule: one copy per
/// matching step, steps in order, no event serving two steps of one path).
/// - u1 does view, click, view at 09:00 on March 2 (funnel view → click → view): the first view
///   enters, the click is step 2 and the other view step 3. Taking each event once at its lowest
///   step, the second view would only enter again: [1, 1, 0].
/// - u2 does five a and five b at 09:00 (funnel a → b → a → b … ten steps): completes.
/// - By companies: acme's members u3 (view) and u4 (click, view) share 10:00: acme completes
///   view → click → view (u4 alone has one view, which serves one step).
/// - Strict (view → click → buy): u5 does view 09:00, click twice at 09:05, buy 09:10. Two
///   identical events at one timestamp do not break the path: converts. u6 does view 09:00,
///   click 09:05, click 09:06, buy 09:10: the second click came between, so u6 stops at click.
pub async fn funnel_events_sharing_a_timestamp_serve_every_step_they_match(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u3", "company", &["acme"]).set_group("u4", "company", &["acme"]);
    for (who, name) in [("u1", "view"), ("u1", "click"), ("u1", "view")] {
        d.event(who, name, at(2, 9, 0), json!({}));
    }
    for k in 0..10 {
        d.event("u2", if k % 2 == 0 { "a" } else { "b" }, at(2, 9, 0), json!({}));
    }
    for (who, name) in [("u3", "view"), ("u4", "click"), ("u4", "view")] {
        d.event(who, name, at(2, 10, 0), json!({}));
    }
    d.event("u5", "view", at(2, 9, 0), json!({})).event("u5", "click", at(2, 9, 5), json!({}));
    d.event("u5", "click", at(2, 9, 5), json!({})).event("u5", "buy", at(2, 9, 10), json!({}));
    d.event("u6", "view", at(2, 9, 0), json!({})).event("u6", "click", at(2, 9, 5), json!({}));
    d.event("u6", "click", at(2, 9, 6), json!({})).event("u6", "buy", at(2, 9, 10), json!({}));
    let p = d.load(store).await;
    let range = json!({"from": "2026-03-01", "to": "2026-03-19"});
    let steps = |names: &[&str]| names.iter().map(|n| json!({"event": n})).collect::<Vec<_>>();
    let view_click_view = steps(&["view", "click", "view"]);
    let r = funnel(store, p, json!({"date_range": range, "steps": view_click_view})).await;
    // u1, u3, u4, u5, u6 view; u1 and u4 click at their view's timestamp, u5 and u6 after it;
    // only u1 has a second view (u4's one view already entered its path).
    assert_eq!(counts(&r), vec![5, 4, 1]);
    let r = funnel(store, p, json!({"date_range": range, "steps": view_click_view, "count_by": companies()})).await;
    assert_eq!(counts(&r), vec![1, 1, 1]);
    let ten: Vec<&str> = (0..10).map(|k| if k % 2 == 0 { "a" } else { "b" }).collect();
    let r = funnel(store, p, json!({"date_range": range, "steps": steps(&ten)})).await;
    assert_eq!(counts(&r), vec![1; 10]);
    let strict = json!({"date_range": range, "order": "strict", "steps": steps(&["view", "click", "buy"]),
                        "actors": {"step": 2, "status": "converted"}});
    let r = funnel(store, p, strict).await;
    // Strict: u1, u3, u4, u5, u6 view; u1 and u4 click at their view's timestamp, u5 and u6
    // after it; only u5 buys with nothing between.
    assert_eq!(counts(&r), vec![5, 4, 1]);
    let converted: Vec<Vec<String>> = r.actors.iter().flatten().map(|a| a.distinct_ids.clone()).collect();
    assert_eq!(converted, vec![vec!["u5".to_string()]]);
}

/// Exclusion of x between steps 0 and 1: u1 does a 09:00, x 09:01, b 09:02 → removed from the
/// whole funnel; u2 does a 09:00, b 09:05, x 09:06 → counted; u3 does a, then x and never b →
/// removed (x came within the window after step 0). By companies, acme's first path is a 09:00,
/// b 09:02 with u1's x between → removed.
pub async fn funnel_exclusion_removes_the_actor(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]);
    d.event("u1", "a", at(2, 9, 0), json!({})).event("u1", "x", at(2, 9, 1), json!({}));
    d.event("u1", "b", at(2, 9, 2), json!({}));
    d.event("u2", "a", at(2, 9, 0), json!({})).event("u2", "b", at(2, 9, 5), json!({}));
    d.event("u2", "x", at(2, 9, 6), json!({}));
    d.event("u3", "a", at(2, 9, 0), json!({})).event("u3", "x", at(2, 9, 3), json!({}));
    let p = d.load(store).await;
    let q = |count_by: Value| {
        json!({"date_range": {"from": "2026-03-01", "to": "2026-03-19"}, "count_by": count_by,
               "steps": [{"event": "a"}, {"event": "b"}], "exclusions": [{"event": "x", "from_step": 0, "to_step": 1}]})
    };
    assert_eq!(counts(&funnel(store, p, q(json!("users"))).await), vec![1, 1]);
    assert_eq!(counts(&funnel(store, p, q(companies())).await), vec![0, 0]);
}

/// Events arrive out of order (u1's step 2 is sent before step 1) and still convert. Breakdown
/// by the entry event's "source": u1 entered from ads, u2 from seo (u2 never converts).
pub async fn funnel_out_of_order_arrival_and_breakdown(store: &dyn Store) {
    let mut d = Data::default();
    d.group("company", "acme", json!({"tier": "gold"})).set_group("u1", "company", &["acme"]);
    d.set_group("u2", "company", &["globex"]).person("u1", json!({"country": "FR"}));
    d.event("u1", "b", at(2, 10, 0), json!({"source": "email"}));
    d.event("u1", "a", at(2, 9, 0), json!({"source": "ads"}));
    d.event("u2", "a", at(2, 9, 0), json!({"source": "seo"}));
    let p = d.load(store).await;
    let r = funnel(
        store,
        p,
        json!({"date_range": {"from": "2026-03-01", "to": "2026-03-19"}, "steps": [{"event": "a"}, {"event": "b"}],
               "breakdown": {"type": "event", "key": "source"}}),
    )
    .await;
    assert_eq!(counts(&r), vec![2, 1]);
    let by: Vec<(Option<String>, Vec<u64>)> =
        r.breakdowns.iter().map(|b| (b.breakdown_value.clone(), b.steps.iter().map(|s| s.count).collect())).collect();
    assert_eq!(by, vec![(Some("ads".into()), vec![1, 1]), (Some("seo".into()), vec![1, 0])]);
    // By a group's and by a person's property: the value on the entering event's actors.
    for breakdown in
        [json!({"type": "group", "group_type": "company", "key": "tier"}), json!({"type": "person", "key": "country"})]
    {
        let r = funnel(
            store,
            p,
            json!({"date_range": {"from": "2026-03-01", "to": "2026-03-19"}, "steps": [{"event": "a"}, {"event": "b"}],
                   "breakdown": breakdown}),
        )
        .await;
        let by: Vec<(Option<String>, Vec<u64>)> = r
            .breakdowns
            .iter()
            .map(|b| (b.breakdown_value.clone(), b.steps.iter().map(|s| s.count).collect()))
            .collect();
        let value = if breakdown["type"] == "group" { "gold" } else { "FR" };
        assert_eq!(by, vec![(None, vec![1, 0]), (Some(value.into()), vec![1, 1])], "{breakdown}");
    }
}

/// a → b. u1 is in teams t1 and t2 and does a, b: both teams convert. Visitor anon-9 does a,
/// is identified as u9, who does b: one user converts through the merge. u2 is in t3 when doing
/// a, moves to t4, then does b: u2 converts, but neither t3 (a only) nor t4 (b only) does.
/// Users [3, 3]; teams: t1, t2 convert, t3 enters: [3, 2].
pub async fn funnel_several_ids_merges_and_membership_changes(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "team", &["t1", "t2"]);
    d.event("u1", "a", at(2, 9, 0), json!({})).event("u1", "b", at(2, 9, 30), json!({}));
    d.event("anon-9", "a", at(2, 9, 0), json!({})).identify("anon-9", "u9");
    d.event("u9", "b", at(2, 10, 0), json!({}));
    d.set_group("u2", "team", &["t3"]).event("u2", "a", at(2, 9, 0), json!({}));
    d.set_group("u2", "team", &["t4"]).event("u2", "b", at(2, 9, 10), json!({}));
    let p = d.load(store).await;
    let q = |count_by: Value| {
        json!({"date_range": {"from": "2026-03-01", "to": "2026-03-19"}, "count_by": count_by,
               "steps": [{"event": "a"}, {"event": "b"}]})
    };
    assert_eq!(counts(&funnel(store, p, q(json!("users"))).await), vec![3, 3]);
    assert_eq!(counts(&funnel(store, p, q(json!({"group_type": "team"}))).await), vec![3, 2]);
}

// ---------------------------------------------------------------- retention

/// Days March 2–4, start "login", return "use".
/// u1 (acme): login 2nd, use 3rd and 4th. u2 (acme): login 3rd, use 4th.
/// u3 (globex): first login 1st (before the range), login 3rd, use 4th.
/// First-time by users: cohort 2nd {u1}: [1, 1, 1]; 3rd {u2}: [1, 1]; 4th {}: [0].
/// Recurring by users: 2nd {u1}: [1, 1, 1]; 3rd {u2, u3}: [2, 2]; 4th: [0].
/// First-time by companies: acme first logs in on the 2nd: [1, 1, 1] (the 3rd: u1 used; the
/// 4th: u1, u2); globex's first login is before the range: no cohort.
pub async fn retention_first_time_and_recurring(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]).set_group(
        "u3",
        "company",
        &["globex"],
    );
    d.group("company", "acme", json!({"tier": "gold"}));
    d.event("u1", "login", at(2, 9, 0), json!({})).event("u1", "use", at(3, 9, 0), json!({}));
    d.event("u1", "use", at(4, 9, 0), json!({}));
    d.event("u2", "login", at(3, 9, 0), json!({})).event("u2", "use", at(4, 9, 0), json!({}));
    d.event("u3", "login", at(1, 9, 0), json!({})).event("u3", "login", at(3, 9, 0), json!({}));
    d.event("u3", "use", at(4, 9, 0), json!({}));
    let p = d.load(store).await;
    let q = |cohorting: &str, count_by: Value| {
        json!({"kind": "retention", "date_range": {"from": "2026-03-02", "to": "2026-03-04"}, "cohorting": cohorting,
               "count_by": count_by, "start": {"event": "login"}, "return": {"event": "use"}})
    };
    let triangle = |r: InsightResult| -> Vec<Vec<u64>> {
        let InsightResult::Retention(RetentionResult { rows, .. }) = r else { panic!("not retention") };
        rows.iter().map(|row| row.values.iter().map(|c| c.count).collect()).collect()
    };
    let r = ask(store, p, q("first_time", json!("users"))).await.expect("answer");
    assert_eq!(triangle(r), vec![vec![1, 1, 1], vec![1, 1], vec![0]]);
    let r = ask(store, p, q("recurring", json!("users"))).await.expect("answer");
    assert_eq!(triangle(r.clone()), vec![vec![1, 1, 1], vec![2, 2], vec![0]]);
    if let InsightResult::Retention(r) = r {
        assert_eq!(r.rows[1].values[1].percentage, 100.0);
        assert_eq!(r.rows[1].cohort, "2026-03-03T00:00:00+00:00");
    }
    let r = ask(store, p, q("first_time", companies())).await.expect("answer");
    assert_eq!(triangle(r), vec![vec![1, 1, 1], vec![0, 0], vec![0]]);
    // Broken down by the value on the event that entered the cohort (globex has no profile: not set).
    let by_tier = |cohorting: &str| {
        let mut query = q(cohorting, json!("users"));
        query["breakdown"] = json!({"type": "group", "group_type": "company", "key": "tier"});
        query
    };
    let values = |r: &InsightResult| -> Vec<Option<String>> {
        let InsightResult::Retention(RetentionResult { rows, .. }) = r else { panic!("not retention") };
        rows.iter().map(|row| row.breakdown_value.clone()).collect()
    };
    let r = ask(store, p, by_tier("first_time")).await.expect("answer");
    assert_eq!(values(&r), vec![Some("gold".to_string()); 3]);
    assert_eq!(triangle(r), vec![vec![1, 1, 1], vec![1, 1], vec![0]]);
    let r = ask(store, p, by_tier("recurring")).await.expect("answer");
    assert_eq!(triangle(r), vec![vec![0, 0, 0], vec![1, 1], vec![0], vec![1, 1, 1], vec![1, 1], vec![0]]);
}

/// New York falls back on Sunday 1 November 2026. u1 (acme) starts on Saturday 31 October at
/// 23:30 local (03:30Z on Sunday) and returns on Sunday 1 November at 00:30 local (04:30Z).
/// Weeks from Sunday in New York: cohort week of 25 October, back in the next week: [1, 1].
/// In UTC both events are in the week of 1 November: the cohort is that week and period 1 is
/// out of range: rows [0, 0] and [1]. By companies the same.
pub async fn retention_weeks_follow_the_timezone_across_dst(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]);
    let utc = |s: &str| DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_default();
    d.event("u1", "start", utc("2026-10-31T23:30:00-04:00"), json!({}));
    d.event("u1", "back", utc("2026-11-01T00:30:00-04:00"), json!({}));
    let p = d.load(store).await;
    for count_by in [json!("users"), companies()] {
        let q = |tz: &str| {
            json!({"kind": "retention", "interval": "week", "timezone": tz, "count_by": count_by,
                   "date_range": {"from": "2026-10-25", "to": "2026-11-07"},
                   "start": {"event": "start"}, "return": {"event": "back"}})
        };
        let rows = |r: InsightResult| -> Vec<(String, Vec<u64>)> {
            let InsightResult::Retention(RetentionResult { rows, .. }) = r else { panic!("not retention") };
            rows.iter().map(|row| (row.cohort.clone(), row.values.iter().map(|c| c.count).collect())).collect()
        };
        let new_york = rows(ask(store, p, q("America/New_York")).await.expect("answer"));
        assert_eq!(
            new_york,
            vec![
                ("2026-10-25T00:00:00-04:00".to_string(), vec![1, 1]),
                ("2026-11-01T00:00:00-04:00".to_string(), vec![0])
            ]
        );
        let in_utc = rows(ask(store, p, q("UTC")).await.expect("answer"));
        assert_eq!(
            in_utc,
            vec![
                ("2026-10-25T00:00:00+00:00".to_string(), vec![0, 0]),
                ("2026-11-01T00:00:00+00:00".to_string(), vec![1])
            ]
        );
    }
}

// ---------------------------------------------------------------- stickiness and lifecycle

/// March 2–4. u1 (acme) uses on all three days, u2 (acme) twice on the 2nd, u3 (globex) on the
/// 2nd and 4th. Users: one each on 1, 2 and 3 days: [1, 1, 1]; cumulative [3, 2, 1].
/// Companies: acme on 3 days, globex on 2: [0, 1, 1].
pub async fn stickiness_by_users_and_groups(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]).set_group(
        "u3",
        "company",
        &["globex"],
    );
    for day in [2, 3, 4] {
        d.event("u1", "use", at(day, 9, 0), json!({}));
    }
    d.event("u2", "use", at(2, 9, 0), json!({})).event("u2", "use", at(2, 10, 0), json!({}));
    d.event("u3", "use", at(2, 9, 0), json!({})).event("u3", "use", at(4, 9, 0), json!({}));
    d.group("company", "acme", json!({"tier": "gold"})).person("u1", json!({"country": "FR"}));
    let p = d.load(store).await;
    let q = |count_by: Value, cumulative: bool| {
        json!({"kind": "stickiness", "date_range": {"from": "2026-03-02", "to": "2026-03-04"}, "count_by": count_by,
               "cumulative": cumulative, "series": [{"event": "use"}]})
    };
    let data = |r: InsightResult| -> Vec<u64> {
        let InsightResult::Stickiness(StickinessResult { series, intervals, .. }) = r else { panic!("not stickiness") };
        assert_eq!(intervals, vec![1, 2, 3]);
        series[0].data.clone()
    };
    assert_eq!(data(ask(store, p, q(json!("users"), false)).await.expect("answer")), vec![1, 1, 1]);
    assert_eq!(data(ask(store, p, q(json!("users"), true)).await.expect("answer")), vec![3, 2, 1]);
    assert_eq!(data(ask(store, p, q(companies(), false)).await.expect("answer")), vec![0, 1, 1]);
    // Broken down: an actor's intervals per line (lines ranked by matching events).
    let lines = |breakdown: Value| {
        let mut query = q(json!("users"), false);
        query["breakdown"] = breakdown;
        query
    };
    let by_line = |r: InsightResult| -> Vec<(Option<String>, Vec<u64>)> {
        let InsightResult::Stickiness(StickinessResult { series, .. }) = r else { panic!("not stickiness") };
        series.into_iter().map(|l| (l.breakdown_value, l.data)).collect()
    };
    let tier = json!({"type": "group", "group_type": "company", "key": "tier"});
    let r = ask(store, p, lines(tier)).await.expect("answer");
    assert_eq!(by_line(r), vec![(Some("gold".to_string()), vec![1, 0, 1]), (None, vec![0, 1, 0])]);
    let country = json!({"type": "person", "key": "country"});
    let r = ask(store, p, lines(country)).await.expect("answer");
    assert_eq!(by_line(r), vec![(None, vec![1, 1, 0]), (Some("FR".to_string()), vec![0, 0, 1])]);

    // The actors of a bar: exactly 3 days (u1); 2 or more when cumulative (u1, u3); of a line.
    let actors = |mut query: Value, request: Value| {
        query["actors"] = request;
        async move {
            let InsightResult::Stickiness(StickinessResult { actors, .. }) =
                ask(store, p, query).await.expect("answer")
            else {
                panic!("not stickiness")
            };
            first_ids(actors.expect("actors listed"))
        }
    };
    assert_eq!(actors(q(json!("users"), false), json!({"intervals": 3})).await, vec!["u1"]);
    assert_eq!(actors(q(json!("users"), true), json!({"intervals": 2})).await, vec!["u1", "u3"]);
    assert_eq!(actors(q(companies(), false), json!({"intervals": 2})).await, vec!["globex"]);
    let fr = lines(json!({"type": "person", "key": "country"}));
    assert_eq!(actors(fr.clone(), json!({"intervals": 3, "breakdown_value": "FR"})).await, vec!["u1"]);
    assert_eq!(
        actors(fr, json!({"intervals": 3})).await,
        Vec::<String>::new(),
        "no actor without a country used 3 days"
    );
    let mut wrong = q(json!("users"), false);
    wrong["actors"] = json!({"intervals": 4});
    assert!(matches!(ask(store, p, wrong).await, Err(QueryError::Invalid(_))), "past the last interval");
}

/// Each actor by its first distinct id (persons) or key (groups), in order.
fn first_ids(actors: Vec<troupe_store::Actor>) -> Vec<String> {
    actors.into_iter().map(|a| a.distinct_ids.first().cloned().unwrap_or(a.key)).collect()
}

/// Range March 2–4, event "use"; March 1 is the interval before.
/// u1 (acme): use 1st, 2nd, 3rd → returning 2nd, 3rd; dormant 4th.
/// u2 (acme): first event ever is use on the 2nd → new 2nd; dormant 3rd; use 4th → resurrecting.
/// u3 (globex): a pageview on the 1st (first seen), use on the 3rd → resurrecting 3rd (not new:
/// it existed before); dormant 4th.
/// Users: new [1,0,0], returning [1,1,0], resurrecting [0,1,1], dormant [0,-1,-2].
/// Companies: acme uses 1st–4th → returning [1,1,1]; globex: first seen 1st, use 3rd →
/// resurrecting 3rd, dormant 4th.
pub async fn lifecycle_by_users_and_groups(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]).set_group(
        "u3",
        "company",
        &["globex"],
    );
    for day in [1, 2, 3] {
        d.event("u1", "use", at(day, 9, 0), json!({}));
    }
    d.event("u2", "use", at(2, 10, 0), json!({})).event("u2", "use", at(4, 10, 0), json!({}));
    d.event("u3", "pageview", at(1, 9, 0), json!({})).event("u3", "use", at(3, 9, 0), json!({}));
    let p = d.load(store).await;
    let q = |count_by: Value| {
        json!({"kind": "lifecycle", "date_range": {"from": "2026-03-02", "to": "2026-03-04"}, "count_by": count_by,
               "event": {"event": "use"}})
    };
    let statuses = |r: InsightResult| {
        let InsightResult::Lifecycle(LifecycleResult { new, returning, resurrecting, dormant, .. }) = r else {
            panic!("not lifecycle")
        };
        (new, returning, resurrecting, dormant)
    };
    let users = statuses(ask(store, p, q(json!("users"))).await.expect("answer"));
    assert_eq!(users, (vec![1, 0, 0], vec![1, 1, 0], vec![0, 1, 1], vec![0, -1, -2]));
    let groups = statuses(ask(store, p, q(companies())).await.expect("answer"));
    assert_eq!(groups, (vec![0, 0, 0], vec![1, 1, 1], vec![0, 1, 0], vec![0, 0, -1]));

    // The actors of a status in an interval, and the counts stay the same when they are listed.
    let actors = |count_by: Value, request: Value| {
        let mut query = q(count_by);
        query["actors"] = request;
        async move {
            let r = ask(store, p, query).await.expect("answer");
            let InsightResult::Lifecycle(LifecycleResult { actors, dormant, .. }) = r else { panic!("not lifecycle") };
            (first_ids(actors.expect("actors listed")), dormant)
        }
    };
    assert_eq!(
        actors(json!("users"), json!({"bucket": 2, "status": "dormant"})).await,
        (vec!["u1".to_string(), "u3".into()], vec![0, -1, -2])
    );
    assert_eq!(actors(json!("users"), json!({"bucket": 0, "status": "new"})).await.0, vec!["u2"]);
    assert_eq!(actors(json!("users"), json!({"bucket": 2, "status": "resurrecting"})).await.0, vec!["u2"]);
    assert_eq!(actors(companies(), json!({"bucket": 1, "status": "resurrecting"})).await.0, vec!["globex"]);
    let mut wrong = q(json!("users"));
    wrong["actors"] = json!({"bucket": 3, "status": "new"});
    assert!(matches!(ask(store, p, wrong).await, Err(QueryError::Invalid(_))), "past the last bucket");
}

// ---------------------------------------------------------------- cohorts

/// u1, u2 (acme, plan pro), u3 (globex, plan free) view on March 2; u1 buys twice on the 15th,
/// u3 once. A static cohort {u1, u3} → 2 users. A dynamic cohort "bought at least twice in the
/// last 30 days" → u1 → 1 user, and by companies → acme → 1 company. A group cohort by
/// property plan = pro → acme. A person-property cohort (country FR: u2) → 1.
pub async fn cohorts_static_and_dynamic_as_filters(store: &dyn Store) {
    let mut d = Data::default();
    d.group("company", "acme", json!({"plan": "pro"})).group("company", "globex", json!({"plan": "free"}));
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]).set_group(
        "u3",
        "company",
        &["globex"],
    );
    d.person("u2", json!({"country": "FR"}));
    for who in ["u1", "u2", "u3"] {
        d.event(who, "view", at(2, 9, 0), json!({}));
    }
    d.event("u1", "buy", at(15, 9, 0), json!({})).event("u1", "buy", at(15, 10, 0), json!({}));
    d.event("u3", "buy", at(15, 9, 0), json!({}));
    let p = d.load(store).await;
    let unique = |count_by: Value, cohort: Value| {
        json!({"date_range": {"from": "2026-03-02", "to": "2026-03-02"}, "count_by": count_by,
               "series": [{"event": "view", "math": "unique"}], "filters": {"cohort": cohort}})
    };
    let value = |r: TrendsResult| r.series[0].data[0];
    let static_users = json!({"type": "static", "ids": ["u1", "u3"]});
    assert_eq!(value(trends(store, p, unique(json!("users"), static_users)).await), 2.0);
    let buyers = |count_by: Value| {
        json!({"count_by": count_by, "type": "dynamic",
               "criteria": [{"type": "performed_event", "event": "buy", "at_least": 2, "days": 30}]})
    };
    assert_eq!(value(trends(store, p, unique(json!("users"), buyers(json!("users")))).await), 1.0);
    assert_eq!(value(trends(store, p, unique(companies(), buyers(companies()))).await), 1.0);
    // A user cohort filters a count by companies through each event's person.
    assert_eq!(value(trends(store, p, unique(companies(), buyers(json!("users")))).await), 1.0);
    let pro = json!({"count_by": companies(), "type": "dynamic",
                     "criteria": [{"type": "property", "key": "plan", "value": "pro"}]});
    assert_eq!(value(trends(store, p, unique(json!("users"), pro)).await), 2.0);
    let french = json!({"type": "dynamic", "criteria": [{"type": "property", "key": "country", "value": "FR"}]});
    assert_eq!(value(trends(store, p, unique(json!("users"), french)).await), 1.0);
    // Saved cohorts are looked up by id.
    store
        .put_document(
            p,
            troupe_store::Document {
                kind: crate::COHORT_KIND.into(),
                id: "buyers".into(),
                body: buyers(json!("users")),
                updated_at: now(),
            },
        )
        .await
        .expect("cohort saved");
    assert_eq!(value(trends(store, p, unique(json!("users"), json!("buyers"))).await), 1.0);
    let missing = ask(store, p, with_kind(unique(json!("users"), json!("nope")), "trends")).await;
    assert!(matches!(missing, Err(QueryError::UnknownCohort(_))), "{missing:?}");
}

/// Filters on who and on what, in every kind. acme (tier gold): u1 (FR), u2 (DE); globex (tier
/// silver): u3 (FR). March 2: everyone signs up; u1 pays 50, u2 pays 5. March 3: u3 pays "100"
/// (a string that reads as a number), u2 pays with no amount.
pub async fn filters_apply_to_every_kind(store: &dyn Store) {
    let mut d = Data::default();
    d.group("company", "acme", json!({"tier": "gold"})).group("company", "globex", json!({"tier": "silver"}));
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]).set_group(
        "u3",
        "company",
        &["globex"],
    );
    d.person("u1", json!({"country": "FR"})).person("u2", json!({"country": "DE"}));
    d.person("u3", json!({"country": "FR"}));
    for who in ["u1", "u2", "u3"] {
        d.event(who, "signup", at(2, 9, 0), json!({}));
    }
    d.event("u1", "pay", at(2, 10, 0), json!({"amount": 50})).event("u2", "pay", at(2, 10, 0), json!({"amount": 5}));
    d.event("u3", "pay", at(3, 10, 0), json!({"amount": "100"})).event("u2", "pay", at(3, 11, 0), json!({}));
    let p = d.load(store).await;
    let french = json!({"type": "person", "key": "country", "value": "FR"});
    let gold = json!({"type": "group", "group_type": "company", "key": "tier", "value": "gold"});
    let big = json!({"type": "event", "key": "amount", "operator": "gte", "value": 50});
    let range = json!({"from": "2026-03-02", "to": "2026-03-03"});

    let funnel_q = |count_by: Value, filters: Value, pay: Value| {
        json!({"date_range": range, "count_by": count_by, "filters": filters,
               "steps": [{"event": "signup"}, pay]})
    };
    let pay = json!({"event": "pay"});
    assert_eq!(counts(&funnel(store, p, funnel_q(json!("users"), french.clone(), pay.clone())).await), vec![2, 2]);
    let big_pay = json!({"event": "pay", "filters": big.clone()});
    assert_eq!(counts(&funnel(store, p, funnel_q(json!("users"), json!(null), big_pay)).await), vec![3, 2]);
    assert_eq!(counts(&funnel(store, p, funnel_q(companies(), gold.clone(), pay.clone())).await), vec![1, 1]);
    let unset = json!({"type": "event", "key": "amount", "operator": "is_not_set"});
    let unset_pay = json!({"event": "pay", "filters": unset});
    assert_eq!(counts(&funnel(store, p, funnel_q(json!("users"), json!(null), unset_pay)).await), vec![3, 1]);

    let retention_q = |filters: Value| {
        json!({"kind": "retention", "date_range": range, "count_by": "users", "filters": filters,
               "start": {"event": "signup"}, "return": {"event": "pay"}})
    };
    let triangle = |r: InsightResult| -> Vec<Vec<u64>> {
        let InsightResult::Retention(RetentionResult { rows, .. }) = r else { panic!("not retention") };
        rows.iter().map(|row| row.values.iter().map(|c| c.count).collect()).collect()
    };
    let r = ask(store, p, retention_q(french.clone())).await.expect("answer");
    assert_eq!(triangle(r), vec![vec![2, 1], vec![0]]);
    let not_u2 = json!({"not": {"cohort": {"type": "static", "ids": ["u2"]}}});
    let r = ask(store, p, retention_q(not_u2)).await.expect("answer");
    assert_eq!(triangle(r), vec![vec![2, 1], vec![0]]);

    let stickiness_q = json!({"kind": "stickiness", "date_range": range, "count_by": "users",
                              "series": [{"event": "pay", "filters": big}]});
    let InsightResult::Stickiness(sticky) = ask(store, p, stickiness_q).await.expect("answer") else {
        panic!("not stickiness")
    };
    assert_eq!(sticky.series[0].data, vec![2, 0]);

    let lifecycle_q = json!({"kind": "lifecycle", "date_range": range, "count_by": "users", "filters": french,
                             "event": {"event": "pay"}});
    let InsightResult::Lifecycle(life) = ask(store, p, lifecycle_q).await.expect("answer") else {
        panic!("not lifecycle")
    };
    assert_eq!(
        (life.new, life.returning, life.resurrecting, life.dormant),
        (vec![1, 0], vec![0, 0], vec![0, 1], vec![0, -1])
    );

    let trend_q = json!({"date_range": range, "count_by": companies(), "filters": gold,
                         "series": [{"event": "pay", "math": "unique"}, {"event": "pay"}]});
    assert_eq!(data(&trends(store, p, trend_q).await), vec![vec![1.0, 1.0], vec![2.0, 1.0]]);
}

/// A question of every kind over March 1–6 (signups, then `use` with a number `n`), by users and
/// by companies, with one breakdown of the caller's and stickiness counted by `sticky_by`.
fn every_kind_of_question(breakdown: Value, sticky_by: Value) -> Vec<Value> {
    let range = json!({"from": "2026-03-01", "to": "2026-03-06"});
    let users = json!("users");
    vec![
        json!({"kind": "trends", "date_range": range, "series": [{"event": "use"}, {"event": "use", "math": "unique"},
               {"event": "use", "math": "sum", "property": "n"}]}),
        json!({"kind": "trends", "date_range": range, "count_by": companies(), "series": [{"event": "signup", "math": "unique"}]}),
        json!({"kind": "trends", "date_range": range, "series": [{"event": "use", "math": "unique"}], "breakdown": breakdown}),
        json!({"kind": "trends", "date_range": range, "series": [{"event": "use"}],
               "breakdown": {"type": "group", "group_type": "company", "key": "tier"}}),
        json!({"kind": "funnel", "date_range": range, "count_by": users, "steps": [{"event": "signup"}, {"event": "use"}]}),
        json!({"kind": "funnel", "date_range": range, "count_by": companies(), "steps": [{"event": "signup"}, {"event": "use"}]}),
        json!({"kind": "retention", "date_range": range, "count_by": users, "start": {"event": "signup"}, "return": {"event": "use"}}),
        json!({"kind": "stickiness", "date_range": range, "count_by": sticky_by, "series": [{"event": "use"}]}),
        json!({"kind": "lifecycle", "date_range": range, "count_by": users, "event": {"event": "use"}}),
    ]
}

/// A server SDK's own events (`server_global`, e.g. `server_error`) are events but no user:
/// u1 signs in on March 2 and 3; server_global "signs in" on the 2nd and has two server errors.
/// Unique users [1, 1] (not [2, 1]); total events [2, 1]; server errors: 2 events, 0 users; a
/// funnel by users has 1; stickiness by users counts u1 only. Counting by companies is untouched.
pub async fn synthetic_ids_are_events_but_not_users(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]);
    d.event("u1", "Signed In", at(2, 9, 0), json!({})).event("u1", "Signed In", at(3, 9, 0), json!({}));
    d.event("server_global", "Signed In", at(2, 10, 0), json!({}));
    d.event("server_global", "server_error", at(2, 11, 0), json!({"runtime": "rust"}));
    d.event("server_global", "server_error", at(2, 12, 0), json!({"runtime": "rust"}));
    let p = d.load(store).await;
    let range = json!({"from": "2026-03-02", "to": "2026-03-03"});
    let q = |event: &str, math: &str| json!({"date_range": range, "series": [{"event": event, "math": math}]});
    assert_eq!(data(&trends(store, p, q("Signed In", "unique")).await), vec![vec![1.0, 1.0]]);
    assert_eq!(data(&trends(store, p, q("Signed In", "total")).await), vec![vec![2.0, 1.0]]);
    assert_eq!(data(&trends(store, p, q("server_error", "total")).await), vec![vec![2.0, 0.0]]);
    assert_eq!(data(&trends(store, p, q("server_error", "unique")).await), vec![vec![0.0, 0.0]]);
    let f =
        funnel(store, p, json!({"date_range": range, "steps": [{"event": "Signed In"}, {"event": "Signed In"}]})).await;
    assert_eq!(f.steps[0].count, 1);
    let sticky = ask(store, p, json!({"kind": "stickiness", "date_range": range, "series": [{"event": "Signed In"}]}))
        .await
        .expect("stickiness answer");
    let InsightResult::Stickiness(StickinessResult { series, .. }) = sticky else { panic!("not stickiness") };
    assert_eq!(series[0].data, vec![0, 1], "u1 on both days; server_global not at all");
    let mut by_company = q("Signed In", "unique");
    by_company["count_by"] = companies();
    assert_eq!(data(&trends(store, p, by_company).await), vec![vec![1.0, 1.0]]);
}

/// Anonymizing a person who merged ids changes no count: every kind of question, by users and
/// by companies, breakdowns by a kept event property and by person and group properties
/// included, answers the same before and after (the person's own properties are gone, so a
/// breakdown by one of them moves its events to "none", which is the point).
pub async fn an_anonymized_person_keeps_every_count(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["globex"]);
    d.group("company", "acme", json!({"tier": "gold"})).group("company", "globex", json!({"tier": "silver"}));
    d.event("u1", "signup", at(2, 9, 0), json!({})).event("u1", "use", at(3, 9, 0), json!({"n": 1, "plan": "pro"}));
    d.event("u2", "signup", at(2, 10, 0), json!({})).event("u2", "use", at(4, 9, 0), json!({"n": 2}));
    d.event("anon-9", "signup", at(2, 8, 0), json!({"email": "eve@example.com"})).identify("anon-9", "eve");
    d.set_group("eve", "company", &["acme"]).person("eve", json!({"email": "eve@example.com"}));
    d.event("eve", "use", at(3, 10, 0), json!({"n": 5, "plan": "pro", "email": "eve@example.com"}));
    d.event("anon-9", "use", at(5, 10, 0), json!({"n": 7, "plan": "free"}));
    let p = d.load(store).await;
    let questions = every_kind_of_question(json!({"type": "event", "key": "plan"}), json!("users"));
    let mut before = Vec::new();
    for question in &questions {
        before.push(ask(store, p, question.clone()).await.expect("answer"));
    }
    let fields = vec!["email".to_string()];
    let results =
        store.apply(p, vec![Command::AnonymizePerson { distinct_id: "eve".into(), personal_fields: fields }]).await;
    results.expect("applied").into_iter().for_each(|r| drop(r.expect("valid")));
    for (question, want) in questions.iter().zip(before) {
        let got = ask(store, p, question.clone()).await.expect("answer");
        assert_eq!(got, want, "{question}");
    }
}

/// Two projects get the same data; the second also gets a person who merged an anonymous id,
/// joined `acme`, has a profile and events on several days under both ids, and is then erased.
/// Every kind of question, by users and by companies, answers the same on both: as if the
/// person never existed (a profile delete would leave its events, split in two persons).
pub async fn an_erased_person_counts_as_if_it_never_existed(store: &dyn Store) {
    let data = || {
        let mut d = Data::default();
        d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["globex"]);
        d.group("company", "acme", json!({"tier": "gold"})).group("company", "globex", json!({"tier": "silver"}));
        d.person("u1", json!({"plan": "pro"})).person("u2", json!({"plan": "free"}));
        d.event("u1", "signup", at(2, 9, 0), json!({})).event("u1", "use", at(3, 9, 0), json!({"n": 1}));
        d.event("u2", "signup", at(2, 10, 0), json!({})).event("u2", "use", at(4, 9, 0), json!({"n": 2}));
        d.event("u2", "use", at(5, 9, 0), json!({"n": 3}));
        d
    };
    let kept = store
        .create_project(NewProject { name: "kept".into(), ingestion_key: "ik".into(), secret_key_hash: "hk".into() })
        .await
        .expect("project")
        .id;
    data().load_into(store, kept).await;
    let erased = store
        .create_project(NewProject { name: "erased".into(), ingestion_key: "ie".into(), secret_key_hash: "he".into() })
        .await
        .expect("project")
        .id;
    let mut d = data();
    d.event("anon-9", "signup", at(2, 8, 0), json!({})).identify("anon-9", "eve");
    d.set_group("eve", "company", &["acme"]).person("eve", json!({"plan": "pro", "email": "eve@example.com"}));
    d.event("eve", "use", at(3, 10, 0), json!({"n": 5})).event("eve", "use", at(4, 10, 0), json!({"n": 6}));
    d.event("anon-9", "use", at(5, 10, 0), json!({"n": 7}));
    d.load_into(store, erased).await;
    // Asked once before the erasure, so a backend that caches what it read must drop it.
    ask(store, erased, json!({"kind": "trends", "series": [{"event": "use"}]})).await.expect("answer");
    let results = store.apply(erased, vec![Command::ErasePerson { distinct_id: "eve".into(), keep_out: false }]).await;
    results.expect("applied").into_iter().for_each(|r| drop(r.expect("valid")));

    let questions = every_kind_of_question(json!({"type": "person", "key": "plan"}), companies());
    for question in questions {
        let want = ask(store, kept, question.clone()).await.expect("answer");
        let got = ask(store, erased, question.clone()).await.expect("answer");
        assert_eq!(got, want, "{question}");
    }
}

/// Mistakes get an error that names them.
pub async fn invalid_questions_are_refused(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).event("u1", "view", at(2, 9, 0), json!({}));
    let p = d.load(store).await;
    let cases = [
        (json!({"kind": "trends", "series": [{"event": "view"}], "count_by": {"group_type": "planet"}}), "planet"),
        (json!({"kind": "funnel", "steps": [{"event": "view"}]}), "2 to 20 steps"),
        (
            json!({"kind": "funnel", "steps": [{"event": "view"}, {"event": "view"}],
                   "exclusions": vec![json!({"event": "x", "from_step": 0, "to_step": 1}); 33]}),
            "at most 32 exclusions",
        ),
        (
            json!({"kind": "funnel", "steps": [{"event": "view", "optional": true}, {"event": "view"}]}),
            "first step cannot be optional",
        ),
        (
            json!({"kind": "funnel", "order": "unordered", "steps": [{"event": "a"}, {"event": "b", "optional": true}]}),
            "optional steps need an ordered or strict funnel",
        ),
        (
            json!({"kind": "funnel", "order": "unordered", "steps": [{"event": "a"}, {"event": "b"}, {"event": "c"}],
                   "exclusions": [{"event": "x", "from_step": 0, "to_step": 1}]}),
            "spans the whole funnel",
        ),
        (
            json!({"kind": "funnel", "steps": [{"event": "a"}, {"event": "b"}], "breakdown_attribution": {"step": 2}}),
            "breakdown_attribution.step 2",
        ),
        (
            json!({"kind": "funnel", "steps": [{"event": "a"}, {"event": "b"}], "time_to_convert": {"bins": 0}}),
            "bins must be 1 to 90",
        ),
        (
            json!({"kind": "funnel", "steps": [{"event": "a"}, {"event": "b"}],
                   "conversion_over_time": {"from_step": 1, "to_step": 1}}),
            "conversion_over_time: from_step must be before to_step",
        ),
        (json!({"kind": "trends", "series": [{"event": "view"}], "timezone": "Mars/Base"}), "timezone"),
        (json!({"kind": "trends", "series": [{"event": "view", "math": "sum"}]}), "property"),
        (json!({"kind": "trends", "series": [{"event": "view"}], "date_range": {"from": "soon"}}), "date_range"),
        (json!({"kind": "trends", "series": [{"event": "view"}], "formula": "A +* "}), "formula"),
        (
            json!({"kind": "lifecycle", "event": {"event": "view"}, "breakdown": {"type": "event", "key": "x"}}),
            "breakdown",
        ),
    ];
    for (query, needle) in cases {
        match ask(store, p, query.clone()).await {
            Err(QueryError::Invalid(message)) => assert!(message.contains(needle), "{query}: {message}"),
            other => panic!("{query} should be refused, got {other:?}"),
        }
    }
}
