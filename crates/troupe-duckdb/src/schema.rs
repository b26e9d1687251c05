//! Numbered migrations, applied in order inside one transaction each.

use duckdb::Connection;

/// (version, SQL). Append only: a released migration never changes.
const MIGRATIONS: &[(i32, &str)] = &[
    (1, include_str!("../migrations/V1__initial.sql")),
    (2, include_str!("../migrations/V2__documents.sql")),
    (3, include_str!("../migrations/V3__retry_keys.sql")),
    (4, include_str!("../migrations/V4__kept_out.sql")),
    (5, include_str!("../migrations/V5__column_snapshots.sql")),
    (6, include_str!("../migrations/V6__membership_replaced_at.sql")),
    (7, include_str!("../migrations/V7__audit_log.sql")),
];

/// The version this build expects.
pub const SCHEMA_VERSION: i32 = 7;

pub fn migrate(conn: &Connection) -> duckdb::Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER NOT NULL, applied_at TIMESTAMP NOT NULL DEFAULT current_timestamp)",
    )?;
    let current: i32 = conn.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))?;
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > current) {
        conn.execute_batch("BEGIN TRANSACTION")?;
        let applied = conn
            .execute_batch(sql)
            .and_then(|_| conn.execute("INSERT INTO schema_migrations (version) VALUES (?)", [version]));
        match applied {
            Ok(_) => conn.execute_batch("COMMIT")?,
            Err(e) => {
                conn.execute_batch("ROLLBACK")?;
                return Err(e);
            }
        }
    }
    Ok(())
}

/// Make sure `events` has one group column per slot.
pub fn ensure_group_columns(conn: &Connection, slots: usize) -> duckdb::Result<()> {
    for slot in 0..slots {
        conn.execute_batch(&format!("ALTER TABLE events ADD COLUMN IF NOT EXISTS group_{slot} VARCHAR[]"))?;
    }
    Ok(())
}

pub fn schema_version(conn: &Connection) -> duckdb::Result<i32> {
    conn.query_row("SELECT coalesce(max(version), 0) FROM schema_migrations", [], |r| r.get(0))
}

/// One more than the highest group type slot in use, in any project.
pub fn used_slots(conn: &Connection) -> duckdb::Result<usize> {
    let used: i64 = conn.query_row("SELECT coalesce(max(slot) + 1, 0) FROM group_types", [], |r| r.get(0))?;
    Ok(usize::try_from(used).unwrap_or(0))
}

/// The highest event sequence number stored (0: none): the writer numbers on from it.
pub fn last_event_seq(conn: &Connection) -> duckdb::Result<u64> {
    conn.query_row("SELECT coalesce(max(seq), 0) FROM events", [], |r| r.get(0))
}

/// How many committed writes changed `project`'s stored events: a snapshot of its columns taken
/// at another count is out of step.
pub fn rewrite_generation(conn: &Connection, project: u32) -> duckdb::Result<u64> {
    conn.query_row("SELECT count(*) FROM event_rewrites WHERE project_id = ?", [project], |r| r.get(0))
}
