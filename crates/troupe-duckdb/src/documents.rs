//! Saved documents. They never touch the tables the writer owns, so they are written on a reader
//! connection in their own small transaction instead of queueing behind event batches.

use chrono::Utc;
use duckdb::{params, Connection};
use troupe_store::Document;

use crate::values::{from_micros, ts};

type Result<T> = duckdb::Result<T>;

pub fn put(conn: &Connection, project: u32, doc: &Document) -> Result<()> {
    let body = serde_json::to_string(&doc.body).unwrap_or_else(|_| "null".to_string());
    conn.execute_batch("BEGIN TRANSACTION")?;
    let written = (|| {
        let created: Option<i64> = conn
            .query_row(
                "SELECT epoch_us(created_at) FROM documents WHERE project_id = ? AND kind = ? AND id = ?",
                params![project, doc.kind, doc.id],
                |r| r.get(0),
            )
            .ok();
        conn.execute(
            "DELETE FROM documents WHERE project_id = ? AND kind = ? AND id = ?",
            params![project, doc.kind, doc.id],
        )?;
        let created = created.map(from_micros).unwrap_or_else(Utc::now);
        conn.execute(
            "INSERT INTO documents VALUES (?, ?, ?, ?, ?, ?)",
            params![project, doc.kind, doc.id, body, ts(created), ts(doc.updated_at)],
        )
    })();
    match written {
        Ok(_) => conn.execute_batch("COMMIT"),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

pub fn list(conn: &Connection, project: u32, kind: &str) -> Result<Vec<Document>> {
    let mut stmt = conn.prepare_cached(
        "SELECT kind, id, body, epoch_us(updated_at) FROM documents WHERE project_id = ? AND kind = ?
         ORDER BY created_at, id",
    )?;
    let rows = stmt.query_map(params![project, kind], |r| {
        Ok(Document {
            kind: r.get(0)?,
            id: r.get(1)?,
            body: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
            updated_at: from_micros(r.get(3)?),
        })
    })?;
    rows.collect()
}

pub fn delete(conn: &Connection, project: u32, kind: &str, id: &str) -> Result<bool> {
    let deleted =
        conn.execute("DELETE FROM documents WHERE project_id = ? AND kind = ? AND id = ?", params![project, kind, id])?;
    Ok(deleted > 0)
}
