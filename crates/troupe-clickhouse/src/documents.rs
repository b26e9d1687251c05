//! Saved documents (cohorts, insights, dashboards, dashboard users and sessions) as versioned rows.

use serde::Deserialize;
use troupe_store::Document;

use crate::http::{quote, Http};
use crate::load::from_micros;
use crate::rows::{DocumentRow, Versions};
use crate::schema::latest;
use crate::ClickHouseError;

#[derive(Deserialize)]
struct Stored {
    id: String,
    body: String,
    created_at: i64,
    updated_at: i64,
}

async fn stored(http: &Http, project: u32, kind: &str, id: Option<&str>) -> Result<Vec<Stored>, ClickHouseError> {
    let mut filter = format!("kind = {}", quote(kind));
    if let Some(id) = id {
        filter.push_str(&format!(" AND id = {}", quote(id)));
    }
    let current = latest("documents", project, &["kind", "id"], &["body", "created_at", "updated_at"], &filter);
    http.rows(&format!("SELECT id, body, created_at, updated_at FROM {current} ORDER BY created_at, id")).await
}

pub async fn put(http: &Http, versions: &mut Versions, project: u32, d: &Document) -> Result<(), ClickHouseError> {
    let existing = stored(http, project, &d.kind, Some(&d.id)).await?;
    let updated_at = d.updated_at.timestamp_micros();
    let row = DocumentRow {
        project_id: project,
        kind: d.kind.clone(),
        id: d.id.clone(),
        body: serde_json::to_string(&d.body).unwrap_or_else(|_| "null".into()),
        created_at: existing.first().map_or(updated_at, |e| e.created_at),
        updated_at,
        version: versions.next(),
        deleted: 0,
    };
    http.insert("documents", &[row]).await
}

pub async fn list(http: &Http, project: u32, kind: &str) -> Result<Vec<Document>, ClickHouseError> {
    Ok(stored(http, project, kind, None)
        .await?
        .into_iter()
        .map(|s| Document {
            kind: kind.to_string(),
            id: s.id,
            body: serde_json::from_str(&s.body).unwrap_or(serde_json::Value::Null),
            updated_at: from_micros(s.updated_at),
        })
        .collect())
}

pub async fn delete(
    http: &Http,
    versions: &mut Versions,
    project: u32,
    kind: &str,
    id: &str,
) -> Result<bool, ClickHouseError> {
    if stored(http, project, kind, Some(id)).await?.is_empty() {
        return Ok(false);
    }
    let row = DocumentRow {
        project_id: project,
        kind: kind.to_string(),
        id: id.to_string(),
        body: String::new(),
        created_at: 0,
        updated_at: 0,
        version: versions.next(),
        deleted: 1,
    };
    http.insert("documents", &[row]).await?;
    Ok(true)
}
