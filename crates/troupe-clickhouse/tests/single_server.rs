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

    store.http().execute("SYSTEM FLUSH LOGS").await.expect("logs flushed");
    #[derive(serde::Deserialize)]
    struct Read {
        rows: u64,
    }
    let read: Vec<Read> = store
        .http()
        .rows(
            "SELECT toUInt64(max(read_rows)) AS rows FROM system.query_log \
             WHERE query LIKE '%PruneTick%' AND query NOT LIKE '%query_log%' AND query NOT LIKE '%numbers(%'",
        )
        .await
        .expect("the query log");
    let rows = read.first().map_or(0, |r| r.rows);
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
