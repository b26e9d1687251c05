//! Cross-check: insights over a generated data set (out-of-order arrival, identity merges,
//! membership changes mid-stream, several companies) against a straightforward reference
//! computed here from the generated events, by users and by companies.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use troupe_core::{Command, MembershipOp, TrackEvent};
use troupe_duckdb::{DuckStore, EmbeddedConfig};
use troupe_query::result::InsightResult;
use troupe_store::{NewProject, Store};

const DAYS: i64 = 20;
const USERS: usize = 120;
const COMPANIES: usize = 40;
const EVENTS: usize = 2500;
const NAMES: [&str; 4] = ["a", "b", "c", "d"];

/// One generated event as the reference sees it.
struct Event {
    /// Seconds since 2026-03-01T00:00Z; unique.
    ts: i64,
    name: &'static str,
    person: usize,
    /// The company stamped at ingest (the user's membership when the event was sent).
    company: usize,
    plan: Option<&'static str>,
}

fn base() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).single().unwrap_or_default()
}

fn day(ts: i64) -> i64 {
    ts / 86_400
}

/// Commands in sending order, and the events for the reference.
fn generate(seed: u64) -> (Vec<Command>, Vec<Event>) {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut commands = Vec::new();
    let anonymous = |u: usize| u.is_multiple_of(4);
    let id =
        |u: usize, identified: bool| if anonymous(u) && !identified { format!("anon-{u}") } else { format!("u{u}") };
    let mut company: Vec<usize> = (0..USERS).map(|u| u % COMPANIES).collect();
    for (u, &c) in company.iter().enumerate() {
        commands.push(membership(&id(u, false), c));
    }
    let mut seconds: Vec<i64> =
        rand::seq::index::sample(&mut rng, (DAYS * 86_400) as usize, EVENTS).into_iter().map(|s| s as i64).collect();
    seconds.shuffle(&mut rng); // sent out of time order
    let mut events = Vec::new();
    for (i, ts) in seconds.into_iter().enumerate() {
        if i == EVENTS / 3 {
            for u in (0..USERS).filter(|&u| anonymous(u)) {
                commands.push(Command::Identify { anon_distinct_id: id(u, false), distinct_id: id(u, true) });
            }
        }
        if i == EVENTS / 2 {
            // Some users move company; their earlier events keep the old one.
            for u in (0..USERS).step_by(5) {
                company[u] = (company[u] + 1) % COMPANIES;
                commands.push(membership(&id(u, true), company[u]));
            }
        }
        // A skewed mix: a few heavy users.
        let person = if rng.gen_bool(0.3) { rng.gen_range(0..6) } else { rng.gen_range(0..USERS) };
        let name = NAMES[rng.gen_range(0..NAMES.len())];
        let plan = [Some("free"), Some("pro"), None][rng.gen_range(0..3)];
        let mut properties = serde_json::Map::new();
        if let Some(plan) = plan {
            properties.insert("plan".into(), json!(plan));
        }
        commands.push(Command::Track(TrackEvent {
            event: name.into(),
            distinct_id: id(person, i >= EVENTS / 3),
            id: Some(format!("ev-{i}")),
            timestamp: Some(base() + chrono::Duration::seconds(ts)),
            properties,
            ..TrackEvent::default()
        }));
        events.push(Event { ts, name, person, company: company[person], plan });
    }
    (commands, events)
}

fn membership(who: &str, company: usize) -> Command {
    Command::Membership {
        distinct_id: who.into(),
        group_type: "company".into(),
        op: MembershipOp::Set(vec![format!("c{company}")]),
    }
}

/// The actor of an event, by users or by companies.
fn actor(e: &Event, by_company: bool) -> usize {
    if by_company {
        e.company
    } else {
        e.person
    }
}

fn count_by(by_company: bool) -> Value {
    if by_company {
        json!({"group_type": "company"})
    } else {
        json!("users")
    }
}

async fn ask(store: &DuckStore, project: u32, query: Value) -> InsightResult {
    let insight = serde_json::from_value(query.clone()).unwrap_or_else(|e| panic!("{query}: {e}"));
    troupe_query::run(store, project, &insight, base() + chrono::Duration::days(40)).await.expect("answer")
}

fn range(from_day: i64, to_day: i64) -> Value {
    let date = |d: i64| (base() + chrono::Duration::days(d)).format("%Y-%m-%d").to_string();
    json!({"from": date(from_day), "to": date(to_day)})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn insights_match_a_reference_computation() {
    for seed in [7, 11, 23] {
        check_seed(seed).await;
    }
}

/// A fresh in-memory store with one project.
async fn new_project() -> (DuckStore, u32) {
    let store = DuckStore::open(EmbeddedConfig::default()).expect("opens");
    let project = store
        .create_project(NewProject { name: "x".into(), ingestion_key: "k".into(), secret_key_hash: "h".into() })
        .await
        .expect("project")
        .id;
    (store, project)
}

async fn check_seed(seed: u64) {
    let (store, project) = new_project().await;
    let (commands, events) = generate(seed);
    for r in store.apply(project, commands).await.expect("applies") {
        r.expect("valid command");
    }
    for by_company in [false, true] {
        trends(&store, project, &events, by_company).await;
        funnel(&store, project, &events, by_company).await;
        retention(&store, project, &events, by_company).await;
        stickiness(&store, project, &events, by_company).await;
        lifecycle(&store, project, &events, by_company).await;
        paths(&store, project, &events, by_company).await;
        weekly_active(&store, project, &events, by_company).await;
    }
}

async fn trends(store: &DuckStore, project: u32, events: &[Event], by_company: bool) {
    let r = ask(
        store,
        project,
        json!({"kind": "trends", "date_range": range(0, DAYS - 1), "count_by": count_by(by_company),
               "series": [{"event": "a", "math": "unique"}, {"event": "a"}]}),
    )
    .await;
    let InsightResult::Trends(r) = r else { panic!("trends") };
    let mut unique = vec![BTreeSet::new(); DAYS as usize];
    let mut total = vec![0.0; DAYS as usize];
    for e in events.iter().filter(|e| e.name == "a") {
        unique[day(e.ts) as usize].insert(actor(e, by_company));
        total[day(e.ts) as usize] += 1.0;
    }
    let unique: Vec<f64> = unique.iter().map(|s| s.len() as f64).collect();
    assert_eq!(r.series[0].data, unique, "unique per day, by company: {by_company}");
    assert_eq!(r.series[1].data, total);

    let r = ask(
        store,
        project,
        json!({"kind": "trends", "date_range": range(0, DAYS - 1), "interval": "week", "count_by": count_by(by_company),
               "breakdown": {"type": "event", "key": "plan"}, "series": [{"event": "b", "math": "unique"}]}),
    )
    .await;
    let InsightResult::Trends(r) = r else { panic!("trends") };
    let mut expected: BTreeMap<Option<String>, BTreeSet<usize>> = BTreeMap::new();
    for e in events.iter().filter(|e| e.name == "b") {
        expected.entry(e.plan.map(str::to_string)).or_default().insert(actor(e, by_company));
    }
    let got: BTreeMap<Option<String>, f64> =
        r.series.iter().map(|l| (l.breakdown_value.clone(), l.aggregated_value)).collect();
    let expected: BTreeMap<Option<String>, f64> = expected.into_iter().map(|(k, v)| (k, v.len() as f64)).collect();
    assert_eq!(got, expected, "breakdown by plan, by company: {by_company}");
}

/// a → b → c within 2 days, ordered: for every entry, the earliest next step after the
/// previous one, within the window from the entry; the best entry counts.
async fn funnel(store: &DuckStore, project: u32, events: &[Event], by_company: bool) {
    let window = 2 * 86_400;
    let r = ask(
        store,
        project,
        json!({"kind": "funnel", "date_range": range(0, DAYS - 1), "count_by": count_by(by_company),
               "window": {"value": 2, "unit": "day"}, "steps": [{"event": "a"}, {"event": "b"}, {"event": "c"}]}),
    )
    .await;
    let InsightResult::Funnel(r) = r else { panic!("funnel") };
    let steps = ["a", "b", "c"];
    let mut reached = vec![0u64; 3];
    for stream in streams(events, by_company).values() {
        let mut best = 0;
        for (i, entry) in stream.iter().enumerate().filter(|(_, e)| e.name == "a") {
            let mut done = 1;
            let mut last = i;
            for step in &steps[1..] {
                let next = stream[last + 1..]
                    .iter()
                    .position(|e| e.name == *step && e.ts <= entry.ts + window)
                    .map(|p| p + last + 1);
                match next {
                    Some(n) => {
                        done += 1;
                        last = n;
                    }
                    None => break,
                }
            }
            best = best.max(done);
        }
        for count in reached.iter_mut().take(best) {
            *count += 1;
        }
    }
    let got: Vec<u64> = r.steps.iter().map(|s| s.count).collect();
    assert_eq!(got, reached, "funnel, by company: {by_company}");
}

fn streams(events: &[Event], by_company: bool) -> HashMap<usize, Vec<&Event>> {
    let mut out: HashMap<usize, Vec<&Event>> = HashMap::new();
    for e in events {
        out.entry(actor(e, by_company)).or_default().push(e);
    }
    for s in out.values_mut() {
        s.sort_by_key(|e| e.ts);
    }
    out
}

/// First-time daily retention over days 0–9, start a, return b.
async fn retention(store: &DuckStore, project: u32, events: &[Event], by_company: bool) {
    let days = 10;
    let r = ask(
        store,
        project,
        json!({"kind": "retention", "date_range": range(0, days - 1), "count_by": count_by(by_company),
               "start": {"event": "a"}, "return": {"event": "b"}}),
    )
    .await;
    let InsightResult::Retention(r) = r else { panic!("retention") };
    let mut expected = Vec::new();
    let streams = streams(events, by_company);
    for c in 0..days {
        let cohort: Vec<&Vec<&Event>> =
            streams.values().filter(|s| s.iter().find(|e| e.name == "a").is_some_and(|e| day(e.ts) == c)).collect();
        let row: Vec<u64> = (0..days - c)
            .map(|p| {
                if p == 0 {
                    cohort.len() as u64
                } else {
                    cohort.iter().filter(|s| s.iter().any(|e| e.name == "b" && day(e.ts) == c + p)).count() as u64
                }
            })
            .collect();
        expected.push(row);
    }
    let got: Vec<Vec<u64>> = r.rows.iter().map(|row| row.values.iter().map(|v| v.count).collect()).collect();
    assert_eq!(got, expected, "retention, by company: {by_company}");
}

async fn stickiness(store: &DuckStore, project: u32, events: &[Event], by_company: bool) {
    let r = ask(
        store,
        project,
        json!({"kind": "stickiness", "date_range": range(0, DAYS - 1), "count_by": count_by(by_company),
               "series": [{"event": "c"}]}),
    )
    .await;
    let InsightResult::Stickiness(r) = r else { panic!("stickiness") };
    let mut expected = vec![0u64; DAYS as usize];
    for stream in streams(events, by_company).values() {
        let days: BTreeSet<i64> = stream.iter().filter(|e| e.name == "c").map(|e| day(e.ts)).collect();
        if !days.is_empty() {
            expected[days.len() - 1] += 1;
        }
    }
    assert_eq!(r.series[0].data, expected, "stickiness, by company: {by_company}");
}

/// Days 5–14, event d; new = first event of any kind that day.
async fn lifecycle(store: &DuckStore, project: u32, events: &[Event], by_company: bool) {
    let r = ask(
        store,
        project,
        json!({"kind": "lifecycle", "date_range": range(5, 14), "count_by": count_by(by_company), "event": {"event": "d"}}),
    )
    .await;
    let InsightResult::Lifecycle(r) = r else { panic!("lifecycle") };
    let (mut new, mut returning, mut resurrecting, mut dormant) =
        (vec![0u64; 10], vec![0u64; 10], vec![0u64; 10], vec![0i64; 10]);
    for stream in streams(events, by_company).values() {
        let first = day(stream[0].ts);
        let active = |d: i64| stream.iter().any(|e| e.name == "d" && day(e.ts) == d);
        for (k, d) in (5..15).enumerate() {
            match (active(d - 1), active(d)) {
                (_, true) if first == d => new[k] += 1,
                (true, true) => returning[k] += 1,
                (false, true) => resurrecting[k] += 1,
                (true, false) => dormant[k] -= 1,
                (false, false) => {}
            }
        }
    }
    assert_eq!(
        (r.new, r.returning, r.resurrecting, r.dormant),
        (new, returning, resurrecting, dormant),
        "lifecycle, by company: {by_company}"
    );
}

/// Paths from each actor's first `a`, 4 steps, repeats in a row merged: every whole path and
/// how many actors took it.
async fn paths(store: &DuckStore, project: u32, events: &[Event], by_company: bool) {
    let r = ask(
        store,
        project,
        json!({"kind": "paths", "date_range": range(0, DAYS - 1), "count_by": count_by(by_company),
               "start": {"event": "a"}, "step_limit": 4, "edge_limit": 1000}),
    )
    .await;
    let InsightResult::Paths(r) = r else { panic!("paths") };
    let mut expected: BTreeMap<Vec<String>, u64> = BTreeMap::new();
    for (_, mut stream) in streams(events, by_company) {
        stream.sort_by_key(|e| e.ts);
        let Some(start) = stream.iter().position(|e| e.name == "a") else { continue };
        let mut path: Vec<String> = Vec::new();
        for e in &stream[start..] {
            if path.last().map(String::as_str) != Some(e.name) {
                if path.len() == 4 {
                    break;
                }
                path.push(e.name.to_string());
            }
        }
        *expected.entry(path).or_default() += 1;
    }
    let got: BTreeMap<Vec<String>, u64> = r.sequences.iter().map(|s| (s.steps.clone(), s.actors)).collect();
    assert_eq!(got, expected, "paths from a, by company: {by_company}");
}

/// Weekly active: per day, the actors with an `a` in the 7 days ending that day.
async fn weekly_active(store: &DuckStore, project: u32, events: &[Event], by_company: bool) {
    let r = ask(
        store,
        project,
        json!({"kind": "trends", "date_range": range(0, DAYS - 1), "count_by": count_by(by_company),
               "series": [{"event": "a", "math": "weekly_active"}]}),
    )
    .await;
    let InsightResult::Trends(r) = r else { panic!("trends") };
    let expected: Vec<f64> = (0..DAYS)
        .map(|k| {
            let active: BTreeSet<usize> = events
                .iter()
                .filter(|e| e.name == "a" && (k - 6..=k).contains(&day(e.ts)))
                .map(|e| actor(e, by_company))
                .collect();
            active.len() as f64
        })
        .collect();
    assert_eq!(r.series[0].data, expected, "weekly active, by company: {by_company}");
}

/// Enough users that the funnel walks them in several runs on separate threads: the joined
/// answer is the one computed here. User i signs in on day i % 5; even users create a project an
/// hour later; users divisible by 6 (even, and by 3) then invite, by source i % 4.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn funnels_over_many_actors_join_their_threads_answers() {
    const N: usize = 3000;
    let (store, project) = new_project().await;
    let mut commands = Vec::new();
    let at = |i: usize, hour: i64| base() + chrono::Duration::days((i % 5) as i64) + chrono::Duration::hours(hour);
    for i in 0..N {
        let event = |name: &str, hour: i64| {
            Command::Track(TrackEvent {
                event: name.into(),
                distinct_id: format!("u{i}"),
                id: Some(format!("{name}-{i}")),
                timestamp: Some(at(i, hour)),
                properties: json!({"source": format!("s{}", i % 4)}).as_object().cloned().unwrap_or_default(),
                ..TrackEvent::default()
            })
        };
        commands.push(event("a", 9));
        if i % 2 == 0 {
            commands.push(event("b", 10));
        }
        if i % 6 == 0 {
            commands.push(event("c", 11));
        }
    }
    for r in store.apply(project, commands).await.expect("applies") {
        r.expect("valid command");
    }
    let r = ask(
        &store,
        project,
        json!({"kind": "funnel", "date_range": range(0, 9), "steps": [{"event": "a"}, {"event": "b"}, {"event": "c"}],
               "breakdown": {"type": "event", "key": "source"}, "conversion_over_time": true}),
    )
    .await;
    let InsightResult::Funnel(r) = r else { panic!("funnel") };
    let counts: Vec<u64> = r.steps.iter().map(|s| s.count).collect();
    assert_eq!(counts, vec![N as u64, (N / 2) as u64, (N / 6) as u64]);
    // Per source: s0 and s2 hold the even users (half of them b, a third of those c); s1 and s3
    // none past a.
    for b in &r.breakdowns {
        let source: usize = b.breakdown_value.as_deref().and_then(|v| v[1..].parse().ok()).expect("a source");
        let users = (0..N).filter(|i| i % 4 == source);
        let expected =
            [users.clone().count(), users.clone().filter(|i| i % 2 == 0).count(), users.filter(|i| i % 6 == 0).count()];
        let got: Vec<u64> = b.steps.iter().map(|s| s.count).collect();
        assert_eq!(got, expected.map(|n| n as u64), "source s{source}");
    }
    // Over time, per day of entry: the users entering that day, and those of them who converted.
    let o = r.conversion_over_time.expect("over time");
    let entered: u64 = o.lines.iter().map(|l| l.entered[2]).sum();
    let converted: u64 = o.lines.iter().map(|l| l.converted[2]).sum();
    assert_eq!(entered, (0..N).filter(|i| i % 5 == 2).count() as u64);
    assert_eq!(converted, (0..N).filter(|i| i % 5 == 2 && i % 6 == 0).count() as u64);
}
