//! Erasures in flight. An erasure's mutations take a while (each rewrites the parts holding the
//! erased rows); from its start, every read of events leaves out the erased ids' events already,
//! through schema 9's `erasing` table: `(project_id, key, before)`, `key` the `cityHash64` of an
//! erased distinct id (the ids themselves are not stored), `before` the erasure's time. Events
//! received at or after it belong to a person started afresh under the id and stay visible.
//!
//! The writer adds the rows before the mutations and deletes them after; each process caches a
//! project's rows for [`FRESH_FOR`] (the writer's own process updates its cache at once), so a
//! question costs no extra round trip while nothing is being erased.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::http::{quote_list, Http};
use crate::schema::physical_tables;
use crate::ClickHouseError;

/// How long a process trusts its copy of a project's erasures in flight. A process that is not
/// the writer sees an erasure start within this long.
const FRESH_FOR: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Row {
    project_id: u32,
    key: u64,
    before: i64,
}

/// Each project's erasures in flight, as last read (or as this process's writer made them).
#[derive(Default)]
pub struct Erasing {
    projects: Mutex<HashMap<u32, (Instant, Vec<Row>)>>,
}

impl Erasing {
    /// The condition that leaves out events of erasures in flight (`AND NOT …`), or nothing.
    pub async fn filter(&self, http: &Http, project: u32) -> Result<String, ClickHouseError> {
        let cached = self.lock().get(&project).filter(|(at, _)| at.elapsed() < FRESH_FOR).map(|(_, rows)| rows.clone());
        let rows = match cached {
            Some(rows) => rows,
            None => {
                let rows = current(http, project).await?;
                self.set(project, rows.clone());
                rows
            }
        };
        Ok(condition(&rows))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, (Instant, Vec<Row>)>> {
        self.projects.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set(&self, project: u32, rows: Vec<Row>) {
        self.lock().insert(project, (Instant::now(), rows));
    }
}

/// `AND NOT ((received_at < b AND cityHash64(distinct_id) IN (…)) OR …)`, one term per time.
fn condition(rows: &[Row]) -> String {
    if rows.is_empty() {
        return String::new();
    }
    let mut by_time: std::collections::BTreeMap<i64, Vec<String>> = std::collections::BTreeMap::new();
    for row in rows {
        by_time.entry(row.before).or_default().push(row.key.to_string());
    }
    let terms: Vec<String> = by_time
        .iter()
        .map(|(before, keys)| format!("(received_at < {before} AND cityHash64(distinct_id) IN ({}))", keys.join(", ")))
        .collect();
    format!(" AND NOT ({})", terms.join(" OR "))
}

/// Mark `ids` of `project` as being erased from `before` (microseconds) on; the keys written,
/// for [`finish`].
pub async fn start(http: &Http, project: u32, ids: &[String], before: i64) -> Result<Vec<u64>, ClickHouseError> {
    let keys = keys_of(http, ids).await?;
    let rows: Vec<Row> = keys.iter().map(|&key| Row { project_id: project, key, before }).collect();
    http.insert("erasing", &rows).await?;
    http.erasing().set(project, current(http, project).await?);
    Ok(keys)
}

/// The erasure of `keys` is complete: its rows go (a mutation, not waited for; until it ends the
/// rows only hide events that no longer exist).
pub async fn finish(http: &Http, project: u32, keys: &[u64]) -> Result<(), ClickHouseError> {
    let list = keys.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
    let local = physical_tables(http, "erasing").remove(0);
    for node in http.config().nodes.clone() {
        let sql = format!("ALTER TABLE {local} DELETE WHERE project_id = {project} AND key IN ({list})");
        http.execute_on(&node, &sql, true).await?;
    }
    let left: Vec<Row> = current(http, project).await?.into_iter().filter(|r| !keys.contains(&r.key)).collect();
    http.erasing().set(project, left);
    Ok(())
}

/// Each id's `cityHash64`, as ClickHouse computes it (the reads compare with the same function).
async fn keys_of(http: &Http, ids: &[String]) -> Result<Vec<u64>, ClickHouseError> {
    #[derive(Deserialize)]
    struct Key {
        key: u64,
    }
    let keys: Vec<Key> = http.rows(&format!("SELECT cityHash64(arrayJoin([{}])) AS key", quote_list(ids))).await?;
    Ok(keys.into_iter().map(|k| k.key).collect())
}

async fn current(http: &Http, project: u32) -> Result<Vec<Row>, ClickHouseError> {
    http.rows(&format!("SELECT project_id, key, before FROM erasing WHERE project_id = {project}")).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_condition_leaves_out_each_erasures_events_received_before_it() {
        assert_eq!(condition(&[]), "");
        let rows = [
            Row { project_id: 1, key: 7, before: 100 },
            Row { project_id: 1, key: 8, before: 100 },
            Row { project_id: 1, key: 9, before: 200 },
        ];
        assert_eq!(
            condition(&rows),
            " AND NOT ((received_at < 100 AND cityHash64(distinct_id) IN (7, 8)) OR \
             (received_at < 200 AND cityHash64(distinct_id) IN (9)))"
        );
    }
}
