//! One ClickHouse deployment per test binary (started on first use, stopped by its watchdog when
//! the binary exits), and a fresh database in it for every test.
// Each test binary uses part of this module.
#![allow(dead_code)]

use std::sync::OnceLock;

use troupe_clickhouse::testing::{ClickHouseCluster, Engine};
use troupe_clickhouse::{ClickHouseConfig, ClickHouseStore};
use troupe_core::Limits;

static DEPLOYMENT: OnceLock<ClickHouseCluster> = OnceLock::new();

/// Debian's server(s): one binary's tests use one deployment.
pub fn deployment(shards: usize) -> &'static ClickHouseCluster {
    deployment_on(Engine::Debian, shards)
}

pub fn deployment_on(engine: Engine, shards: usize) -> &'static ClickHouseCluster {
    DEPLOYMENT.get_or_init(|| match ClickHouseCluster::start_on(engine, shards) {
        Ok(cluster) => cluster,
        Err(e) => panic!("cannot start {} for the tests: {e}", engine.name()),
    })
}

pub async fn store_on(config: ClickHouseConfig) -> ClickHouseStore {
    let limits = Limits::default();
    troupe_clickhouse::migrate(&config, limits.max_group_types).await.expect("migrates");
    ClickHouseStore::open(config, limits, chrono::Duration::seconds(30)).await.expect("opens")
}

pub async fn fresh_store(shards: usize) -> (ClickHouseStore, ()) {
    (store_on(deployment(shards).fresh_database()).await, ())
}

/// ClickHouse answers insight aggregates itself (push-down), with the numbers the events give:
/// two companies, `acme` (u1, u2) and `globex` (u3, plus an untyped id naming it), in Paris time.
pub async fn aggregates_are_computed_by_clickhouse(store: &ClickHouseStore) {
    use chrono::{TimeZone, Utc};
    use troupe_core::{Command, MembershipOp, ProfileOp, TrackEvent};
    use troupe_store::aggregate::{
        period_key, ActorKind, ActorsRequest, Condition, EventTest, IdSet, Measure, NumberOp, PatternsRequest,
        PeriodCountsRequest, PeriodStatsRequest, PeriodUnit, Periods, Split, SplitBy, Stat, StreamsRequest,
        ValueCondition, ValuesRequest,
    };
    use troupe_store::{NewProject, Store};

    let project = store
        .create_project(NewProject {
            name: "pushdown".into(),
            ingestion_key: "ingest-pushdown".into(),
            secret_key_hash: "hash".into(),
        })
        .await
        .expect("project")
        .id;
    let at = |day: u32, hour: u32| Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).single().unwrap_or_default();
    let member = |who: &str, key: &str| Command::Membership {
        distinct_id: who.into(),
        group_type: "company".into(),
        op: MembershipOp::Set(vec![key.into()]),
    };
    let track = |who: &str, name: &str, when, untyped: &[&str]| {
        Command::Track(TrackEvent {
            event: name.into(),
            distinct_id: who.into(),
            id: Some(format!("{who}-{name}-{when}")),
            timestamp: Some(when),
            untyped_groups: untyped.iter().map(|s| s.to_string()).collect(),
            ..TrackEvent::default()
        })
    };
    let globex = Command::GroupProfile {
        group_type: "company".into(),
        group_key: "globex".into(),
        name: None,
        op: ProfileOp::Set(Default::default()),
    };
    let commands = vec![
        member("u1", "acme"),
        member("u2", "acme"),
        globex,
        track("u1", "signup", at(2, 9), &[]),
        track("u1", "pay", at(2, 10), &[]),
        // 23:30 UTC on March 2 is March 3 in Paris.
        track("u2", "signup", at(2, 23), &[]),
        track("u3", "signup", at(4, 8), &["globex"]),
        track("u3", "pay", at(4, 9), &["globex"]),
    ];
    for r in store.apply(project, commands).await.expect("applies") {
        r.expect("valid");
    }
    let periods = Periods { tz: chrono_tz::Europe::Paris, unit: PeriodUnit::Day };
    let day = |d: u32| period_key(&periods, at(d, 12));
    let (from, to) = (at(1, 0).timestamp_micros(), at(6, 0).timestamp_micros());
    let aggregates = store.aggregates().expect("ClickHouse offers aggregates");
    let companies = ActorKind::Group("company".into());
    let signup = EventTest::named("signup");
    let pay = EventTest::named("pay");

    let counts = PeriodCountsRequest {
        actor: Some(companies.clone()),
        periods,
        tests: vec![signup.clone()],
        ranges: vec![(from, to)],
        split: None,
    };
    let troupe_store::aggregate::PeriodCounts { mut cells, totals } =
        aggregates.period_counts(project, &counts).await.expect("counts").expect("ClickHouse computes period counts");
    cells.sort_by_key(|c| c.key);
    let cells: Vec<(i64, u64, u64)> = cells.iter().map(|c| (c.key, c.events, c.actors)).collect();
    assert_eq!(cells, vec![(day(2), 1, 1), (day(3), 1, 1), (day(4), 1, 1)]);
    assert_eq!((totals[0].events, totals[0].actors), (3, 2));

    let patterns = PatternsRequest {
        actor: companies.clone(),
        periods,
        tests: vec![signup.clone(), pay.clone()],
        first: Some(signup.clone()),
        from,
        to,
        split: None,
    };
    let mut patterns = aggregates
        .patterns(project, &patterns)
        .await
        .expect("patterns")
        .expect("ClickHouse computes activity patterns");
    patterns.sort_by_key(|p| p.periods.clone());
    let seen: Vec<_> = patterns.iter().map(|p| (p.periods.clone(), p.first, p.actors)).collect();
    assert_eq!(
        seen,
        vec![
            (vec![vec![day(2), day(3)], vec![day(2)]], Some((day(2), true)), 1),
            (vec![vec![day(4)], vec![day(4)]], Some((day(4), true)), 1),
        ]
    );

    let streams = StreamsRequest {
        actor: ActorKind::Persons,
        tests: vec![signup.clone(), pay],
        all_events: false,
        from,
        to,
        keys: None,
    };
    let mut streams =
        aggregates.streams(project, &streams).await.expect("streams").expect("ClickHouse computes per-actor streams");
    streams.sort_by(|a, b| a.actor.cmp(&b.actor));
    for s in &mut streams {
        s.events.sort();
    }
    let u1 = (at(2, 9).timestamp_micros(), at(2, 10).timestamp_micros());
    assert_eq!(streams.len(), 3);
    assert_eq!(streams[0].events, vec![(u1.0, 1), (u1.1, 2)]);

    // Profiles: what the query layer decides conditions from.
    let persons = aggregates.profiles(project, &ActorKind::Persons).await.expect("persons");
    assert_eq!(persons.len(), 3);
    let id_of = |d: &str| persons.iter().find(|p| p.distinct_ids.iter().any(|x| x == d)).map(|p| p.key.clone());
    let (u1, u3) = (id_of("u1").expect("u1"), id_of("u3").expect("u3"));
    let groups = aggregates.profiles(project, &companies).await.expect("groups");
    assert!(groups.iter().any(|g| g.key == "globex"), "{groups:?}");

    // Conditions: sets of persons (sent as external data) and of groups, listed or negated.
    let signup_if = |condition| EventTest { events: Some(vec!["signup".into()]), condition: Some(condition) };
    let u1_or_u3 = signup_if(Condition::Person(IdSet::from_truths([(u1.clone(), true), (u3, true)], false)));
    let not_u1 = signup_if(Condition::Person(IdSet::from_truths([(u1, false)], true)));
    let not_globex = signup_if(Condition::Groups {
        group_type: "company".into(),
        keys: IdSet { ids: vec!["globex".into()], negated: true },
        none: false,
    });
    // u3's signup names globex by an untyped id.
    let globex_only = signup_if(Condition::Groups {
        group_type: "company".into(),
        keys: IdSet { ids: vec!["globex".into()], negated: false },
        none: false,
    });
    let either = EventTest::any_of([&u1_or_u3, &globex_only]);
    let counts = PeriodCountsRequest {
        actor: Some(ActorKind::Persons),
        periods,
        tests: vec![u1_or_u3, not_u1, not_globex, globex_only, either],
        ranges: vec![(from, to)],
        split: None,
    };
    let troupe_store::aggregate::PeriodCounts { mut totals, .. } = aggregates
        .period_counts(project, &counts)
        .await
        .expect("counts")
        .expect("ClickHouse computes conditional counts");
    totals.sort_by_key(|t| t.test);
    let events: Vec<u64> = totals.iter().map(|t| t.events).collect();
    assert_eq!(events, vec![2, 2, 2, 1, 2]);

    // Lines by person: listed persons travel as tables, the rest take the default line.
    let by_person =
        Split { by: SplitBy::Person, lines: vec![(id_of("u1").expect("u1"), 0)], default_line: 1, unset_line: 1 };
    let counts = PeriodCountsRequest {
        actor: Some(ActorKind::Persons),
        periods,
        tests: vec![signup.clone()],
        ranges: vec![(from, to)],
        split: Some(by_person),
    };
    let troupe_store::aggregate::PeriodCounts { mut totals, .. } =
        aggregates.period_counts(project, &counts).await.expect("split").expect("ClickHouse splits by person");
    totals.sort_by_key(|t| t.line);
    let lines: Vec<(u32, u64, u64)> = totals.iter().map(|t| (t.line, t.events, t.actors)).collect();
    assert_eq!(lines, vec![(0, 1, 1), (1, 2, 2)]);

    // Actors with enough events: what a behavioural cohort is.
    let payers = |at_least| ActorsRequest {
        actor: companies.clone(),
        test: EventTest::named("pay"),
        at_least,
        from,
        to,
        on: None,
    };
    let once =
        aggregates.actors(project, &payers(1)).await.expect("actors").expect("ClickHouse lists actors by their events");
    assert_eq!(once, vec![("acme".to_string(), 1), ("globex".to_string(), 1)]);
    let twice =
        aggregates.actors(project, &payers(2)).await.expect("actors").expect("ClickHouse lists actors by their events");
    assert!(twice.is_empty(), "{twice:?}");

    // Event properties are tested in SQL as filters read them: numbers as numbers (a string
    // that reads as one too), a null as not set.
    let upgrade = |who: &str, properties: serde_json::Value| {
        Command::Track(TrackEvent {
            event: "upgrade".into(),
            distinct_id: who.into(),
            id: Some(format!("{who}-upgrade")),
            timestamp: Some(at(5, 9)),
            properties: serde_json::from_value(properties).unwrap_or_default(),
            ..TrackEvent::default()
        })
    };
    let commands = vec![
        upgrade("u1", serde_json::json!({"plan": "pro", "seats": 5})),
        upgrade("u2", serde_json::json!({"plan": "free", "seats": "12"})),
        upgrade("u3", serde_json::json!({"seats": null, "nested": {"plan": "pro"}})),
    ];
    for r in store.apply(project, commands).await.expect("applies") {
        r.expect("valid");
    }
    let upgrade_if = |key: &str, test| EventTest {
        events: Some(vec!["upgrade".into()]),
        condition: Some(Condition::EventProperty { key: key.into(), test }),
    };
    let not = |t: EventTest| EventTest { condition: t.condition.map(|c| Condition::Not(Box::new(c))), ..t };
    let tests = vec![
        upgrade_if("plan", ValueCondition::EqualsAny(vec![serde_json::json!("pro")])),
        not(upgrade_if("plan", ValueCondition::EqualsAny(vec![serde_json::json!("pro")]))),
        upgrade_if("seats", ValueCondition::Compare { op: NumberOp::Gt, number: 4.0 }),
        upgrade_if("seats", ValueCondition::IsSet),
        upgrade_if("seats", ValueCondition::EqualsAny(vec![serde_json::json!(12)])),
        upgrade_if("seats", ValueCondition::EqualsAny(vec![serde_json::json!("5.0")])),
        upgrade_if("plan", ValueCondition::Contains("re".into())),
        upgrade_if("plan", ValueCondition::Contains("".into())),
        upgrade_if("plan", ValueCondition::TextIn(IdSet { ids: vec!["pro".into()], negated: false })),
        upgrade_if("plan", ValueCondition::TextIn(IdSet { ids: vec!["pro".into()], negated: true })),
    ];
    let counts = PeriodCountsRequest { actor: None, periods, tests, ranges: vec![(from, to)], split: None };
    let troupe_store::aggregate::PeriodCounts { mut totals, .. } =
        aggregates.period_counts(project, &counts).await.expect("counts").expect("ClickHouse tests event properties");
    totals.sort_by_key(|t| t.test);
    let events: Vec<u64> = totals.iter().map(|t| t.events).collect();
    assert_eq!(events, vec![1, 2, 2, 2, 1, 1, 1, 2, 1, 1]);
    // The texts a property has, what regexes are matched against.
    let mut texts =
        aggregates.texts(project, "plan").await.expect("texts").expect("ClickHouse lists a property's texts");
    texts.sort();
    assert_eq!(texts, vec!["free".to_string(), "pro".to_string()]);
    // Values and lines of an event property: the text of each value, "not set" apart.
    let upgrades = EventTest::named("upgrade");
    let values = ValuesRequest { key: "plan".into(), test: upgrades.clone(), ranges: vec![(from, to)] };
    let mut values = aggregates
        .values(project, &values)
        .await
        .expect("values")
        .expect("ClickHouse counts events per property value");
    values.sort_by(|a, b| a.value.cmp(&b.value));
    let values: Vec<(Option<&str>, u64)> = values.iter().map(|v| (v.value.as_deref(), v.events)).collect();
    assert_eq!(values, vec![(None, 1), (Some("free"), 1), (Some("pro"), 1)]);
    let split = Split {
        by: SplitBy::EventProperty("plan".into()),
        lines: vec![("pro".into(), 0)],
        default_line: 1,
        unset_line: 2,
    };
    let by_plan = PeriodCountsRequest {
        actor: None,
        periods,
        tests: vec![upgrades],
        ranges: vec![(from, to)],
        split: Some(split),
    };
    let troupe_store::aggregate::PeriodCounts { mut totals, .. } = aggregates
        .period_counts(project, &by_plan)
        .await
        .expect("split")
        .expect("ClickHouse splits by an event property");
    totals.sort_by_key(|t| t.line);
    let lines: Vec<(u32, u64)> = totals.iter().map(|t| (t.line, t.events)).collect();
    assert_eq!(lines, vec![(0, 1), (1, 1), (2, 1)]);

    // Statistics: of a property's numbers ("12" reads as one, a null is not set), and per actor.
    let stat = |measure| PeriodStatsRequest {
        periods,
        test: EventTest::named("upgrade"),
        measure,
        ranges: vec![(from, to)],
        split: None,
    };
    let seats = |stat| Measure::Property { key: "seats".into(), stat };
    for (measure, expected) in [
        (seats(Stat::Sum), 17.0),
        (seats(Stat::Avg), 8.5),
        (seats(Stat::Quantile(0.9)), 11.3),
        (Measure::PerActor { actor: ActorKind::Persons, stat: Stat::Max }, 1.0),
    ] {
        let troupe_store::aggregate::PeriodStats { totals, .. } = aggregates
            .period_stats(project, &stat(measure))
            .await
            .expect("stats")
            .expect("ClickHouse computes statistics");
        assert_eq!(totals.iter().map(|t| t.value).collect::<Vec<_>>(), vec![expected]);
    }

    // A row from before properties were indexed leaves such questions to the scan path.
    let old = format!(
        "INSERT INTO events (project_id, uuid, event, distinct_id, person_id, ts, time, properties) \
         VALUES ({project}, 'old', 'upgrade', 'u9', 'u9', {}, {}, '{{\"plan\":\"pro\"}}')",
        at(5, 10).timestamp_micros(),
        at(5, 10).timestamp()
    );
    store.http().execute(&old).await.expect("an old row");
    assert_eq!(aggregates.period_counts(project, &counts).await.expect("answers"), None);
}

/// The retry window is kept with the data in ClickHouse: a client resending after this process
/// stopped (and another opened the database) is recognised.
pub async fn resent_writes_after_a_restart_are_applied_once(config: ClickHouseConfig) {
    use troupe_store::conformance::{project, resent_writes_were_applied_once, writes_a_client_resends};
    use troupe_store::Store;
    let store = store_on(config.clone()).await;
    let p = project(&store, "p").await;
    store.apply(p, writes_a_client_resends()).await.expect("applies");
    store.close().await;
    drop(store);

    let store = store_on(config).await;
    store.ready().await.expect("ready: ClickHouse answers and the writer runs");
    let again = store.apply(p, writes_a_client_resends()).await.expect("applies");
    assert!(again.iter().all(|r| matches!(r, Ok(troupe_core::Outcome::Duplicate))), "{again:?}");
    resent_writes_were_applied_once(&store, p).await;
}

/// How each membership set was written is stored in ClickHouse: a merge after a restart (a new
/// writer reading the persons back) weighs them as before it.
pub async fn a_merge_after_a_restart_weighs_memberships(config: ClickHouseConfig) {
    use troupe_store::conformance::{a_merge_weighs_the_memberships, memberships_a_merge_weighs, project};
    use troupe_store::Store;
    let store = store_on(config.clone()).await;
    let p = project(&store, "p").await;
    memberships_a_merge_weighs(&store, p).await;
    store.close().await;
    drop(store);

    let store = store_on(config).await;
    store.ready().await.expect("ready: ClickHouse answers and the writer runs");
    a_merge_weighs_the_memberships(&store, p).await;
}

/// The retry keys of id-less writes are deleted once past the retry window (the writer does so
/// hourly); the keys of writes with a client id are kept (in `client_keys`, beside the events').
pub async fn expired_retry_keys_are_pruned(config: ClickHouseConfig) {
    use troupe_store::conformance::{project, writes_a_client_resends};
    use troupe_store::Store;
    #[derive(serde::Deserialize, Debug, PartialEq)]
    struct Keys {
        content: u64,
        ids: u64,
    }
    let store = store_on(config).await;
    let p = project(&store, "p").await;
    store.apply(p, writes_a_client_resends()).await.expect("applies");
    let keys = || async {
        let sql = "SELECT toUInt64(count()) AS content, (SELECT toUInt64(count()) FROM client_keys) AS ids \
                   FROM retry_keys";
        let rows: Vec<Keys> = store.http().rows(sql).await.expect("counted");
        rows.into_iter().next().expect("a row")
    };
    let before = keys().await;
    assert!(before.content > 0 && before.ids > 0, "{before:?}");
    store.prune_retry_keys(chrono::Utc::now() + chrono::Duration::seconds(1)).await.expect("pruned");
    // A mutation runs in the background.
    let started = std::time::Instant::now();
    let mut after = keys().await;
    while after.content > 0 && started.elapsed() < std::time::Duration::from_secs(30) {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        after = keys().await;
    }
    assert_eq!(after, Keys { content: 0, ids: before.ids });
}

/// After erasing a person who merged ids (`troupe_store::conformance::erase_a_merged_person`),
/// no row of any table of the database holds its ids, email or person id, every version of its
/// rows included, and a store opened afterwards (a restart) does not find it.
pub async fn an_erased_person_leaves_no_row(config: ClickHouseConfig) {
    use troupe_store::conformance::{erase_a_merged_person, project};
    use troupe_store::Store;
    let store = store_on(config.clone()).await;
    let p = project(&store, "p").await;
    let gone = erase_a_merged_person(&store, p).await;
    let rows = every_row(&store, &config).await;
    assert!(rows.iter().any(|r| r.starts_with("events") && r.contains("bob")), "the check reads the rows: {rows:?}");
    for text in &gone {
        let found: Vec<&String> = rows.iter().filter(|r| r.contains(text.as_str())).collect();
        assert!(found.is_empty(), "{text} is still stored: {found:?}");
    }
    store.close().await;
    let reopened = store_on(config).await;
    assert!(reopened.person(p, "ann@example.com", 0).await.expect("read").is_none());
    assert!(reopened.person(p, "bob", 0).await.expect("read").is_some());
}

/// After anonymizing a person who merged ids, no row of any table holds its former ids or the
/// personal fields of its events, every version of its rows included; the pseudonym is stored.
pub async fn an_anonymized_person_leaves_no_personal_field(config: ClickHouseConfig) {
    use troupe_store::conformance::{anonymize_a_merged_person, project};
    let store = store_on(config.clone()).await;
    let p = project(&store, "p").await;
    let (gone, pseudonym) = anonymize_a_merged_person(&store, p).await;
    let rows = every_row(&store, &config).await;
    assert!(rows.iter().any(|r| r.starts_with("events") && r.contains(&pseudonym)), "{rows:?}");
    assert!(rows.iter().any(|r| r.contains("bob@example.com")), "other people keep their fields");
    for text in &gone {
        let found: Vec<&String> = rows.iter().filter(|r| r.contains(text.as_str())).collect();
        assert!(found.is_empty(), "{text} is still stored: {found:?}");
    }
}

/// Every row of every table of the database (not views), as `table: JSON`.
async fn every_row(store: &ClickHouseStore, config: &ClickHouseConfig) -> Vec<String> {
    #[derive(serde::Deserialize)]
    struct Table {
        name: String,
    }
    let tables: Vec<Table> = store
        .http()
        .rows(&format!(
            "SELECT name FROM system.tables WHERE database = '{}' AND engine NOT LIKE '%View%'",
            config.database
        ))
        .await
        .expect("tables");
    let mut rows = Vec::new();
    for table in &tables {
        let sql = format!("SELECT * FROM {}.{}", config.database, table.name);
        let found: Vec<serde_json::Value> = store.http().rows(&sql).await.expect("rows");
        rows.extend(found.into_iter().map(|row| format!("{}: {row}", table.name)));
    }
    rows
}

/// While an erasure's mutations run, its rows in `erasing` (the hash of an erased id, and the
/// erasure's time) already leave that id's earlier events out of every read: event lists and
/// insight aggregates. Events received after the erasure's time stay.
pub async fn reads_leave_out_erasures_in_flight(config: ClickHouseConfig) {
    use chrono::{Duration, Utc};
    use troupe_core::{Command, TrackEvent};
    use troupe_store::conformance::project;
    use troupe_store::{EventQuery, Store};
    let store = store_on(config.clone()).await;
    let p = project(&store, "p").await;
    let track = |who: &str, name: &str| {
        let at = Utc::now() - Duration::hours(1);
        Command::Track(TrackEvent {
            event: name.into(),
            distinct_id: who.into(),
            timestamp: Some(at),
            ..TrackEvent::default()
        })
    };
    for r in store.apply(p, vec![track("anon-1", "Visited"), track("bob", "Visited")]).await.expect("stored") {
        r.expect("valid");
    }
    let between = Utc::now().timestamp_micros();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    store.apply(p, vec![track("anon-1", "Paid")]).await.expect("stored")[0].clone().expect("valid");
    let db = &config.database;
    store
        .http()
        .execute(&format!(
            "INSERT INTO {db}.erasing (project_id, key, before) VALUES ({p}, cityHash64('anon-1'), {between})"
        ))
        .await
        .expect("an erasure in flight");

    let names = |events: Vec<troupe_store::EventRow>| -> Vec<String> {
        let mut names: Vec<String> = events.into_iter().map(|e| format!("{} {}", e.distinct_id, e.event)).collect();
        names.sort();
        names
    };
    let events = store.events(p, EventQuery { limit: 10, ..EventQuery::default() }).await.expect("events");
    assert_eq!(names(events), ["anon-1 Paid", "bob Visited"], "the erased id's earlier event is left out");
    let question: troupe_query::Insight = serde_json::from_value(serde_json::json!({
        "kind": "trends", "date_range": {"from": "-1d"}, "series": [{"event": "Visited", "math": "unique"}]
    }))
    .expect("a question");
    let answer = troupe_query::run(&store, p, &question, Utc::now()).await.expect("answered");
    let answer = serde_json::to_value(&answer).expect("JSON");
    assert_eq!(answer["series"][0]["aggregated_value"].as_f64(), Some(1.0), "{answer}");

    // The erasure's rows gone (and the second of caching past), everything shows again.
    let local = if config.cluster.is_some() { "erasing_local" } else { "erasing" };
    for node in &config.nodes {
        let sql = format!("ALTER TABLE {db}.{local} DELETE WHERE project_id = {p}");
        store.http().execute_on(node, &sql, true).await.expect("deleted");
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let events = store.events(p, EventQuery { limit: 10, ..EventQuery::default() }).await.expect("events");
        if events.len() == 3 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the erasure's rows were never gone: {events:?}");
    }
}

/// A person erased for good stays out after the writer restarts (the ids' hashes are read back).
pub async fn a_person_erased_for_good_stays_out_after_a_restart(config: ClickHouseConfig) {
    use troupe_store::conformance::{erase_for_good, project};
    use troupe_store::Store;
    let store = store_on(config.clone()).await;
    let p = project(&store, "p").await;
    let later = erase_for_good(&store, p).await;
    store.close().await;
    let reopened = store_on(config).await;
    let outcomes = reopened.apply(p, later).await.expect("applied");
    assert!(outcomes.iter().all(|o| matches!(o, Ok(troupe_core::Outcome::Dropped))), "{outcomes:?}");
    assert!(reopened.person(p, "ann", 0).await.expect("read").is_none());
}
