//! The audit log's table (V7). Written on a reader connection like documents: it never touches
//! the tables the writer owns.

use duckdb::{params, Connection};
use troupe_store::audit::AuditEntry;

use crate::values::{from_micros, ts};

pub fn append(conn: &Connection, project: u32, entry: &AuditEntry) -> duckdb::Result<()> {
    let details = serde_json::to_string(&entry.details).unwrap_or_else(|_| "null".to_string());
    conn.execute(
        "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?)",
        params![project, entry.id, ts(entry.at), entry.actor, entry.action, entry.target, details],
    )?;
    Ok(())
}

pub fn page(conn: &Connection, project: u32, before: Option<&str>, limit: usize) -> duckdb::Result<Vec<AuditEntry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, epoch_us(logged_at), actor, action, target, details FROM audit_log
         WHERE project_id = ? AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?",
    )?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![project, before, before, limit], |r| {
        Ok(AuditEntry {
            id: r.get(0)?,
            at: from_micros(r.get(1)?),
            actor: r.get(2)?,
            action: r.get(3)?,
            target: r.get(4)?,
            details: serde_json::from_str(&r.get::<_, String>(5)?).unwrap_or_default(),
        })
    })?;
    rows.collect()
}
