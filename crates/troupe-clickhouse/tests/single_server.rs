//! The store and insight conformance suites on one real ClickHouse server (Debian's 18.16;
//! `current_server.rs` runs the same on ClickHouse 26.x).

mod common;

async fn single() -> (troupe_clickhouse::ClickHouseStore, ()) {
    common::fresh_store(1).await
}

mod store {
    troupe_store::store_conformance_suite!(super::single);
}

mod insights {
    troupe_query::insight_conformance_suite!(super::single);
}

#[tokio::test]
async fn aggregates_are_computed_by_clickhouse() {
    let (store, _) = single().await;
    common::aggregates_are_computed_by_clickhouse(&store).await;
}

/// The retry window is kept with the data in ClickHouse too.
#[tokio::test]
async fn resent_writes_after_a_restart_are_applied_once() {
    common::resent_writes_after_a_restart_are_applied_once(common::deployment(1).fresh_database()).await;
}

#[tokio::test]
async fn a_merge_after_a_restart_weighs_memberships_by_how_they_were_written() {
    common::a_merge_after_a_restart_weighs_memberships(common::deployment(1).fresh_database()).await;
}

/// A 7-day question over months of data reads about the rows of those days (the partition and
/// the sort key's date prune the rest), read from `system.query_log`.
#[tokio::test]
async fn a_seven_day_question_reads_about_the_rows_of_those_days() {
    use chrono::TimeZone;
    use troupe_store::conformance::project;
    let config = common::deployment(1).fresh_database();
    let store = common::store_on(config.clone()).await;
    let p = project(&store, "p").await;
    // 3,000,000 events, one every 6 seconds from 2026-01-01 (14,400 a day, about 208 days),
    // written straight into the table.
    let start = 1_767_225_600_i64; // 2026-01-01T00:00:00Z
    let db = &config.database;
    store
        .http()
        .execute(&format!(
            "INSERT INTO {db}.events (project_id, uuid, event, distinct_id, person_id, ts, time) \
             SELECT {p}, toString(number), 'PruneTick', concat('u', toString(number % 1000)), '', \
             ({start} + number * 6) * 1000000, toDateTime({start} + number * 6) FROM numbers(3000000)"
        ))
        .await
        .expect("rows inserted");
    let now = chrono::Utc.with_ymd_and_hms(2026, 5, 15, 0, 0, 0).single().expect("a time");
    let question: troupe_query::Insight = serde_json::from_value(serde_json::json!({
        "kind": "trends", "date_range": {"from": "2026-05-08", "to": "2026-05-14"}, "series": [{"event": "PruneTick"}]
    }))
    .expect("a question");
    let answer = troupe_query::run(&store, p, &question, now).await.expect("answered");
    let answer = serde_json::to_value(&answer).expect("JSON");
    assert_eq!(answer["series"][0]["aggregated_value"].as_f64(), Some(7.0 * 14_400.0), "{answer}");

    #[derive(serde::Deserialize)]
    struct Read {
        rows: u64,
    }
    // The finished question's entry, once the server has written it (it may take a flush or two
    // on a busy machine).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let rows = loop {
        store.http().execute("SYSTEM FLUSH LOGS").await.expect("logs flushed");
        let read: Vec<Read> = store
            .http()
            .rows(
                "SELECT toUInt64(max(read_rows)) AS rows FROM system.query_log \
                 WHERE type = 2 AND query LIKE '%PruneTick%' AND query NOT LIKE '%query_log%' \
                 AND query NOT LIKE '%numbers(%'",
            )
            .await
            .expect("the query log");
        let rows = read.first().map_or(0, |r| r.rows);
        if rows > 0 || std::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    println!("rows read by the 7-day question: {rows} (the week holds {})", 7 * 14_400);
    assert!(rows > 0, "the question was logged");
    // Measured: 246,272 rows (2.4x the week; the whole table is 3,000,000): whole granules of
    // 8,192 rows at the edges of each part the insert made. Without the `time` bounds: 1,722,048.
    assert!(rows <= 3 * 7 * 14_400, "read {rows} rows for a week of {} events", 7 * 14_400);
}

#[tokio::test]
async fn expired_retry_keys_are_pruned() {
    common::expired_retry_keys_are_pruned(common::deployment(1).fresh_database()).await;
}

/// The writer's memory and start do not grow with history (issue 22, item 5): a writer opened on
/// a database of 1,000,000 events reads none of them, and what a batch needs — whether its ids
/// were stored before, its persons and groups — is looked up for that batch. Its queries are
/// told apart in `system.query_log` by signing in as the password user.
#[tokio::test]
async fn the_writer_starts_without_reading_events_and_looks_up_what_a_batch_needs() {
    use troupe_clickhouse::testing::{PASSWORD_USER, TEST_PASSWORD};
    use troupe_core::{Command, Outcome, TrackEvent};
    use troupe_store::conformance::project;
    use troupe_store::{PersonQuery, Store};

    let config = common::deployment(1).fresh_database();
    let store = common::store_on(config.clone()).await;
    let p = project(&store, "p").await;
    let event = |i: usize| {
        Command::Track(TrackEvent {
            event: "Viewed".into(),
            distinct_id: format!("u{}", i % 50),
            id: Some(format!("e{i}")),
            groups: [("company".to_string(), vec![format!("c{}", i % 5)])].into_iter().collect(),
            ..TrackEvent::default()
        })
    };
    let stored = store.apply(p, (0..500).map(event).collect()).await.expect("stored");
    assert!(stored.iter().all(|r| matches!(r, Ok(Outcome::Stored { .. }))));
    // History written straight into the table: its ids reach `client_keys` through the view.
    let db = &config.database;
    store
        .http()
        .execute(&format!(
            "INSERT INTO {db}.events (project_id, uuid, dedup_key, event, distinct_id, person_id, ts, time) \
             SELECT {p}, toString(number), cityHash64(number), 'History', 'h', '', 1767225600000000, \
             toDateTime(1767225600) FROM numbers(1000000)"
        ))
        .await
        .expect("history inserted");
    store.close().await;

    let watched = troupe_clickhouse::ClickHouseConfig {
        user: PASSWORD_USER.into(),
        password: TEST_PASSWORD.into(),
        ..config.clone()
    };
    let reopened = common::store_on(watched).await;
    // A resend of stored events: duplicates, found by looking their ids up.
    let again = reopened.apply(p, (0..100).map(event).collect()).await.expect("answered");
    assert!(again.iter().all(|r| matches!(r, Ok(Outcome::Duplicate))), "{again:?}");
    // New events of known persons and companies: stored, no person or company created twice.
    let more = reopened.apply(p, (500..600).map(event).collect()).await.expect("answered");
    assert!(more.iter().all(|r| matches!(r, Ok(Outcome::Stored { .. }))));
    let persons = reopened.persons(p, PersonQuery { limit: 100, ..PersonQuery::default() }).await.expect("persons");
    assert_eq!(persons.total, 50);
    let groups =
        reopened.groups(p, troupe_store::GroupQuery { group_type: "company".into(), limit: 100, ..Default::default() });
    assert_eq!(groups.await.expect("groups").total, 5);

    reopened.http().execute("SYSTEM FLUSH LOGS").await.expect("logs flushed");
    #[derive(serde::Deserialize)]
    struct Read {
        rows: u64,
        queries: u64,
    }
    let read: Vec<Read> = reopened
        .http()
        .rows(&format!(
            "SELECT toUInt64(max(read_rows)) AS rows, count() AS queries FROM system.query_log \
             WHERE user = '{PASSWORD_USER}' AND type = 2 AND query NOT LIKE '%query_log%'"
        ))
        .await
        .expect("the query log");
    let (rows, queries) = read.first().map_or((0, 0), |r| (r.rows, r.queries));
    let heavy: Vec<serde_json::Value> = reopened
        .http()
        .rows(&format!(
            "SELECT read_rows, substring(query, 1, 300) AS q FROM system.query_log \
             WHERE user = '{PASSWORD_USER}' AND type = 2 AND read_rows > 100000"
        ))
        .await
        .expect("the query log");
    println!("the reopened writer's queries: {queries}, the most rows any read: {rows}");
    assert!(queries > 0, "the writer's queries were logged");
    // A lookup reads a 256-row granule per id it asks for (100 here); reading the history's ids,
    // as the writer did at start before, reads all 1,000,500.
    assert!(rows < 100_000, "a query of the writer read {rows} rows: {heavy:#?}");
}

/// Questions by a group type name untyped ids only in projects marked as having stored any
/// (schema 6): the writer marks a project with its first such event (the conformance suites'
/// untyped cases), and the migration marks projects that stored some before. Here an event with
/// an untyped id is written straight into the table, past the writer: unmarked, the id is not
/// looked at; after the migration's statement (run again by forgetting versions 6 to 8), it
/// counts. Version 7's copy of events into the layout sorted by event name keeps every event and
/// the view that fills `client_keys`; version 8 moves guarded writes' ids there from `retry_keys`.
#[tokio::test]
async fn migrations_mark_untyped_projects_and_resort_events_keeping_them() {
    use troupe_core::{Command, ProfileOp};
    use troupe_store::conformance::project;
    use troupe_store::Store;

    let config = common::deployment(1).fresh_database();
    let store = common::store_on(config.clone()).await;
    let p = project(&store, "p").await;
    let acme = Command::GroupProfile {
        group_type: "company".into(),
        group_key: "acme".into(),
        name: None,
        op: ProfileOp::Set(serde_json::Map::new()),
    };
    store.apply(p, vec![acme]).await.expect("stored");
    let at = 1_772_442_000_i64; // 2026-03-02T09:00:00Z
    let http = store.http();
    http.execute(&format!(
        "INSERT INTO events (project_id, uuid, event, distinct_id, person_id, ts, time, groups_untyped) \
         VALUES ({p}, 'e1', 'view', 'u1', '', {}, toDateTime({at}), ['acme'])",
        at * 1_000_000
    ))
    .await
    .expect("inserted");
    // A guarded write's id as a writer before version 8 kept it: in `retry_keys`, forever.
    let increment = Command::PersonProfile {
        distinct_id: "u1".into(),
        op: ProfileOp::Increment(vec![("logins".into(), serde_json::Number::from(1))]),
    };
    let troupe_core::dedupe::EventIdentity::Client(old_key) = troupe_core::dedupe::EventIdentity::of_command(
        &troupe_core::RetryKey::Client("request-old".into()),
        &increment,
    ) else {
        panic!("a client id gives a client key")
    };
    http.execute(&format!("INSERT INTO retry_keys (project_id, key, seen_at, forever) VALUES ({p}, {old_key}, 0, 1)"))
        .await
        .expect("inserted");
    let question: troupe_query::Insight = serde_json::from_value(serde_json::json!({
        "kind": "trends", "date_range": {"from": "2026-03-02", "to": "2026-03-02"},
        "count_by": {"group_type": "company"}, "series": [{"event": "view", "math": "unique"}]
    }))
    .expect("a question");
    let now = chrono::DateTime::from_timestamp(at + 86_400, 0).unwrap_or_default();
    let companies = |answer: troupe_query::InsightResult| {
        serde_json::to_value(answer).ok().and_then(|a| a["series"][0]["aggregated_value"].as_f64())
    };
    let before = troupe_query::run(&store, p, &question, now).await.expect("answered");
    assert_eq!(companies(before), Some(0.0), "an unmarked project reads the type's column only");

    http.execute("TRUNCATE TABLE schema_migrations").await.expect("truncated");
    http.execute("INSERT INTO schema_migrations (version) VALUES (1), (2), (3), (4), (5)").await.expect("versions");
    // A migration may copy tables: refused while a writer runs, which would lose what it writes.
    let max_group_types = troupe_core::Limits::default().max_group_types;
    let refused = troupe_clickhouse::migrate(&config, max_group_types).await.err().map(|e| e.to_string());
    assert!(refused.as_deref().is_some_and(|e| e.contains("stop it before migrating")), "{refused:?}");
    store.close().await;
    let store = common::store_on(config.clone()).await;
    let http = store.http();
    let after = troupe_query::run(&store, p, &question, now).await.expect("answered");
    assert_eq!(companies(after), Some(1.0), "the marked project names the untyped id");

    // Version 7 ran again too: the events were copied into the layout sorted by event name, and
    // the view filling `client_keys` follows the new table.
    #[derive(serde::Deserialize)]
    struct Layout {
        engine_full: String,
    }
    let layout: Vec<Layout> = http
        .rows("SELECT engine_full FROM system.tables WHERE database = currentDatabase() AND name = 'events'")
        .await
        .expect("layout");
    assert!(
        layout.first().is_some_and(|l| l.engine_full.contains("ORDER BY (project_id, event, toDate(time)")),
        "{:?}",
        layout.first().map(|l| &l.engine_full)
    );
    let tracked = troupe_core::TrackEvent {
        event: "view".into(),
        distinct_id: "u2".into(),
        id: Some("with-id".into()),
        ..Default::default()
    };
    store.apply(p, vec![Command::Track(tracked)]).await.expect("stored");
    #[derive(serde::Deserialize)]
    struct Count {
        n: u64,
    }
    let count = |sql: &'static str| async move {
        let rows: Vec<Count> = http.rows(sql).await.expect("counted");
        rows.first().map_or(0, |r| r.n)
    };
    assert_eq!(count("SELECT count() AS n FROM events").await, 2, "the copy kept the event");
    assert_eq!(count("SELECT count() AS n FROM client_keys").await, 2, "the view moved with the table");

    // Version 8 copied the guarded write's id into `client_keys`: its resend is recognised.
    let resent = store.apply(p, vec![increment.once(Some("request-old"), "")]).await.expect("applied");
    assert!(matches!(resent[..], [Ok(troupe_core::Outcome::Duplicate)]), "{resent:?}");
}

/// The writer applies a batch while the one before is being written, and (with the tests' empty
/// cache) looks up everything else in ClickHouse: what the batch in flight changed must come
/// from its state, not from ClickHouse, which may not hold it yet. 200 concurrent requests each
/// identify an anonymous id into one of five users and send an event from each id, a membership
/// and a group increment: five persons, every event counted for them, every increment once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_applied_while_others_are_written_read_their_changes() {
    use troupe_core::{Command, MembershipOp, ProfileOp, TrackEvent};
    use troupe_store::conformance::project;
    use troupe_store::{PersonQuery, Store};

    let config = common::deployment(1).fresh_database();
    let store = std::sync::Arc::new(common::store_on(config).await);
    let p = project(store.as_ref(), "p").await;
    let event =
        |who: String| Command::Track(TrackEvent { event: "Viewed".into(), distinct_id: who, ..TrackEvent::default() });
    let requests = (0..200).map(|i| {
        let store = store.clone();
        let (anon, user) = (format!("anon-{i}"), format!("user-{}", i % 5));
        let logins = vec![("logins".to_string(), serde_json::Number::from(1))];
        let commands = vec![
            event(anon.clone()),
            Command::Identify { anon_distinct_id: anon.clone(), distinct_id: user.clone() },
            event(user.clone()),
            Command::Membership {
                distinct_id: anon,
                group_type: "company".into(),
                op: MembershipOp::Set(vec![format!("c{}", i % 5)]),
            },
            Command::GroupProfile {
                group_type: "company".into(),
                group_key: "all".into(),
                name: None,
                op: ProfileOp::Increment(logins),
            }
            .once(Some(&format!("inc-{i}")), ""),
        ];
        tokio::spawn(async move { store.apply(p, commands).await })
    });
    for request in requests.collect::<Vec<_>>() {
        let results = request.await.expect("joined").expect("applied");
        assert!(results.iter().all(Result::is_ok), "{results:?}");
    }
    let persons = store.persons(p, PersonQuery { limit: 100, ..PersonQuery::default() }).await.expect("persons");
    assert_eq!(persons.total, 5, "{:?}", persons.results);
    let now = chrono::Utc::now();
    let today = now.format("%Y-%m-%d").to_string();
    let question: troupe_query::Insight = serde_json::from_value(serde_json::json!({
        "kind": "trends", "date_range": {"from": today, "to": today}, "series": [{"event": "Viewed", "math": "unique"}]
    }))
    .expect("a question");
    let answer = troupe_query::run(store.as_ref(), p, &question, now).await.expect("answered");
    let answer = serde_json::to_value(answer).expect("JSON");
    assert_eq!(answer["series"][0]["aggregated_value"].as_f64(), Some(5.0), "{answer}");
    let all = store.group(p, "company", "all", 0).await.expect("read").expect("the group exists");
    assert_eq!(all.group.properties.get("logins"), Some(&serde_json::json!(200)));
}

/// A person deleted by a batch still being written is gone for the batch applied meanwhile,
/// although ClickHouse still holds the old rows: a write of the same distinct id creates a new
/// person (no property of the deleted one comes back).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_deleted_by_a_batch_in_flight_is_not_read_back() {
    use troupe_core::{Command, ProfileOp, TrackEvent};
    use troupe_store::conformance::project;
    use troupe_store::Store;

    let config = common::deployment(1).fresh_database();
    let store = common::store_on(config).await;
    let p = project(&store, "p").await;
    let props = |key: &str| [(key.to_string(), serde_json::json!(true))].into_iter().collect();
    let set = |key: &str| Command::PersonProfile { distinct_id: "x".into(), op: ProfileOp::Set(props(key)) };
    store.apply(p, vec![set("old")]).await.expect("stored");
    let mut big: Vec<Command> = (0..3000)
        .map(|i| {
            Command::Track(TrackEvent { event: "e".into(), distinct_id: format!("u{i}"), ..TrackEvent::default() })
        })
        .collect();
    big.push(Command::PersonProfile { distinct_id: "x".into(), op: ProfileOp::Delete });
    let deleting = store.apply(p, big);
    let meanwhile = async {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        store.apply(p, vec![set("new")]).await
    };
    let (deleted, set_after) = tokio::join!(deleting, meanwhile);
    deleted.expect("applied");
    set_after.expect("applied");
    let person = store.person(p, "x", 0).await.expect("read").expect("a new person");
    let keys: Vec<&String> = person.person.properties.keys().collect();
    assert_eq!(keys, ["new"], "{:?}", person.person.properties);
}

#[tokio::test]
async fn an_erased_person_leaves_no_row() {
    common::an_erased_person_leaves_no_row(common::deployment(1).fresh_database()).await;
}

#[tokio::test]
async fn an_anonymized_person_leaves_no_personal_field() {
    common::an_anonymized_person_leaves_no_personal_field(common::deployment(1).fresh_database()).await;
}

#[tokio::test]
async fn reads_leave_out_erasures_in_flight() {
    common::reads_leave_out_erasures_in_flight(common::deployment(1).fresh_database()).await;
}

#[tokio::test]
async fn a_person_erased_for_good_stays_out_after_a_restart() {
    common::a_person_erased_for_good_stays_out_after_a_restart(common::deployment(1).fresh_database()).await;
}
