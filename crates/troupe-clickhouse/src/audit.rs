//! The audit log's table (schema 12): one row per entry, never changed.

use serde::{Deserialize, Serialize};
use troupe_store::audit::AuditEntry;

use crate::http::{quote, Http};
use crate::load::from_micros;
use crate::ClickHouseError;

#[derive(Serialize, Deserialize)]
struct AuditRow {
    project_id: u32,
    id: String,
    at: i64,
    actor: String,
    action: String,
    target: String,
    details: String,
}

pub async fn append(http: &Http, project: u32, entry: &AuditEntry) -> Result<(), ClickHouseError> {
    let row = AuditRow {
        project_id: project,
        id: entry.id.clone(),
        at: entry.at.timestamp_micros(),
        actor: entry.actor.clone(),
        action: entry.action.clone(),
        target: entry.target.clone(),
        details: serde_json::to_string(&entry.details).unwrap_or_else(|_| "null".into()),
    };
    http.insert("audit_log", &[row]).await
}

pub async fn page(
    http: &Http,
    project: u32,
    before: Option<&str>,
    limit: usize,
) -> Result<Vec<AuditEntry>, ClickHouseError> {
    let older = before.map(|b| format!(" AND id < {}", quote(b))).unwrap_or_default();
    let sql = format!(
        "SELECT project_id, id, at, actor, action, target, details FROM audit_log \
         WHERE project_id = {project}{older} ORDER BY id DESC LIMIT {limit}"
    );
    let rows: Vec<AuditRow> = http.rows(&sql).await?;
    Ok(rows
        .into_iter()
        .map(|r| AuditEntry {
            id: r.id,
            at: from_micros(r.at),
            actor: r.actor,
            action: r.action,
            target: r.target,
            details: serde_json::from_str(&r.details).unwrap_or_default(),
        })
        .collect())
}
