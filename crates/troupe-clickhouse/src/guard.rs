//! One writer per database. The writer writes a heartbeat every few seconds; a process that would
//! become a second writer while another one's heartbeat is fresh is refused (two writers would
//! each hold their own state and lose each other's updates). A writer that stops cleanly writes
//! `stopped`, freeing the database at once; one that crashed frees it when its heartbeat is stale.

use std::time::Duration;

use serde::Deserialize;

use crate::http::Http;
use crate::ClickHouseError;

const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A heartbeat older than this is a crashed writer.
const STALE_AFTER_MICROS: i64 = 20_000_000;

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

pub struct WriterClaim {
    http: Http,
    id: String,
    started_at: i64,
}

/// A writer whose heartbeat is fresh: its id and the heartbeat's age.
#[derive(Deserialize)]
pub struct LiveWriter {
    pub writer_id: String,
    age_ms: i64,
}

impl LiveWriter {
    pub fn describe(&self) -> String {
        format!("writer {}, heartbeat {:.1} s ago", self.writer_id, self.age_ms as f64 / 1000.0)
    }
}

/// The writer holding the database now, if any.
pub async fn live_writer(http: &Http) -> Result<Option<LiveWriter>, ClickHouseError> {
    let now = now_micros();
    let sql = format!(
        "SELECT writer_id, intDiv({now} - hb, 1000) AS age_ms FROM (SELECT writer_id, max(heartbeat) AS hb, \
         argMax(stopped, heartbeat) AS st FROM writers GROUP BY writer_id) WHERE st = 0 AND hb > {}",
        now - STALE_AFTER_MICROS
    );
    Ok(http.rows::<LiveWriter>(&sql).await?.into_iter().next())
}

impl WriterClaim {
    /// Become the writer, or say which writer holds the database.
    pub async fn claim(http: &Http) -> Result<Self, ClickHouseError> {
        let now = now_micros();
        if let Some(other) = live_writer(http).await? {
            return Err(ClickHouseError::Config(format!(
                "another troupe process is the writer of this database ({}): \
                 start this one with --writer-url <that process's URL> --internal-secret <its secret> to forward \
                 writes to it, or stop it first (a crashed writer frees the database after {} s)",
                other.describe(),
                STALE_AFTER_MICROS / 1_000_000
            )));
        }
        let claim = WriterClaim { http: http.clone(), id: uuid::Uuid::now_v7().to_string(), started_at: now };
        claim.beat(false).await?;
        Ok(claim)
    }

    async fn beat(&self, stopped: bool) -> Result<(), ClickHouseError> {
        #[derive(serde::Serialize)]
        struct Row<'a> {
            writer_id: &'a str,
            started_at: i64,
            heartbeat: i64,
            stopped: u8,
        }
        let row = Row {
            writer_id: &self.id,
            started_at: self.started_at,
            heartbeat: now_micros(),
            stopped: u8::from(stopped),
        };
        self.http.insert("writers", &[row]).await
    }

    /// Beat every few seconds until the returned task is aborted.
    pub fn keep_alive(self: &std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        let claim = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HEARTBEAT_EVERY).await;
                if let Err(e) = claim.beat(false).await {
                    tracing::warn!(error = %e, "writer heartbeat failed");
                }
            }
        })
    }

    /// Give the database up: the next writer may start at once.
    pub async fn release(&self) {
        if let Err(e) = self.beat(true).await {
            tracing::warn!(error = %e, writer = %self.id, "could not record the writer's stop");
        }
    }
}
