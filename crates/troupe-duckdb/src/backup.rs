//! Online backups (`troupe backup`) and the copy taken before migrations. DuckDB copies the
//! database into a new file inside one read transaction (`COPY FROM DATABASE`), so the copy is
//! the state of one instant: every write acknowledged before it started, nothing half-written.
//! The writer goes on committing meanwhile. The columns' snapshots are a cache of the database
//! and are not copied; the restored store rebuilds them on its first questions.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use duckdb::Connection;
use troupe_store::{BackupSummary, StoreError};

use crate::{schema, DB_FILE};

/// The file beside a backup that says what it holds.
pub const MANIFEST: &str = "backup.json";

/// One backup at a time: the attached copy has a fixed name.
static BACKUP: Mutex<()> = Mutex::new(());

/// Copy the database of `conn` into `dir` (missing or empty), as `dir/troupe.duckdb`.
pub fn copy_to(conn: &Connection, dir: &Path) -> Result<BackupSummary, StoreError> {
    let _one = BACKUP.lock().map_err(|_| internal("a backup's lock was poisoned"))?;
    prepare_dir(dir)?;
    let partial = dir.join(format!("{DB_FILE}.partial"));
    let _ = std::fs::remove_file(&partial);
    let source: String = conn.query_row("SELECT current_database()", [], |r| r.get(0)).map_err(sql)?;
    let path = partial.to_string_lossy().replace('\'', "''");
    conn.execute_batch(&format!("ATTACH '{path}' AS troupe_backup")).map_err(sql)?;
    let copied = copy_in_one_transaction(conn, &source);
    let detached = conn.execute_batch("CHECKPOINT troupe_backup; DETACH troupe_backup").map_err(sql);
    let (last_event_seq, schema_version) = copied?;
    detached?;
    File::open(&partial).and_then(|f| f.sync_all()).map_err(|e| io("sync", &partial, e))?;
    let file = dir.join(DB_FILE);
    std::fs::rename(&partial, &file).map_err(|e| io("rename", &partial, e))?;
    let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let summary = BackupSummary { dir: dir.to_path_buf(), bytes, last_event_seq, schema_version };
    write_manifest(&summary)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io("sync", dir, e))?;
    Ok(summary)
}

/// The copy and the figures it is of, read in the same transaction.
fn copy_in_one_transaction(conn: &Connection, source: &str) -> Result<(u64, i32), StoreError> {
    conn.execute_batch("BEGIN TRANSACTION").map_err(sql)?;
    let copied = (|| {
        let seq = schema::last_event_seq(conn)?;
        let version = schema::schema_version(conn)?;
        conn.execute_batch(&format!("COPY FROM DATABASE \"{}\" TO troupe_backup", source.replace('"', "\"\"")))?;
        Ok((seq, version))
    })();
    match copied {
        Ok(figures) => conn.execute_batch("COMMIT").map(|_| figures).map_err(sql),
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(sql(e))
        }
    }
}

fn prepare_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| io("create", dir, e))?;
    let used = std::fs::read_dir(dir).map_err(|e| io("read", dir, e))?.flatten().any(|entry| {
        let name = entry.file_name();
        name != *format!("{DB_FILE}.partial").as_str()
    });
    if used {
        return Err(StoreError::Conflict(format!(
            "{} is not empty: a backup goes into a new or empty directory",
            dir.display()
        )));
    }
    Ok(())
}

fn write_manifest(summary: &BackupSummary) -> Result<(), StoreError> {
    let manifest = serde_json::json!({
        "created_at": chrono::Utc::now(),
        "schema_version": summary.schema_version,
        "last_event_seq": summary.last_event_seq,
        "bytes": summary.bytes,
        "troupe": env!("CARGO_PKG_VERSION"),
    });
    let path = summary.dir.join(MANIFEST);
    let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
    std::fs::write(&path, text).map_err(|e| io("write", &path, e))
}

/// Put the backup in `from` into the new data directory `data_dir` (no database there yet).
/// Migrations, if the backup is of an older schema, run when the store next opens.
pub fn restore(from: &Path, data_dir: &Path) -> Result<BackupSummary, StoreError> {
    let source = from.join(DB_FILE);
    if !source.is_file() {
        return Err(StoreError::NotFound(format!("a backup in {} ({DB_FILE})", from.display())));
    }
    let target = data_dir.join(DB_FILE);
    if target.exists() {
        return Err(StoreError::Conflict(format!(
            "{} already holds a database: restore into a new data directory (or move it away first)",
            data_dir.display()
        )));
    }
    let (last_event_seq, schema_version) = {
        let conn =
            Connection::open(&source).map_err(|e| internal(&format!("{} is not a backup: {e}", from.display())))?;
        (schema::last_event_seq(&conn).map_err(sql)?, schema::schema_version(&conn).map_err(sql)?)
    };
    if schema_version > schema::SCHEMA_VERSION {
        return Err(newer(from, schema_version));
    }
    std::fs::create_dir_all(data_dir).map_err(|e| io("create", data_dir, e))?;
    let partial = data_dir.join(format!("{DB_FILE}.partial"));
    std::fs::copy(&source, &partial).map_err(|e| io("copy", &source, e))?;
    File::open(&partial).and_then(|f| f.sync_all()).map_err(|e| io("sync", &partial, e))?;
    std::fs::rename(&partial, &target).map_err(|e| io("rename", &partial, e))?;
    let bytes = std::fs::metadata(&target).map(|m| m.len()).unwrap_or(0);
    Ok(BackupSummary { dir: data_dir.to_path_buf(), bytes, last_event_seq, schema_version })
}

/// Before migrations change a database written by an older troupe, a copy of it goes to
/// `data_dir/backups/before-v<new>-<time>`: a failed or unwanted upgrade can be undone with
/// `troupe restore`. A database written by a newer troupe is refused, untouched.
pub fn before_migrating(conn: &Connection, data_dir: &Path) -> Result<Option<PathBuf>, StoreError> {
    let has_table: bool = conn
        .query_row(
            "SELECT count(*) > 0 FROM information_schema.tables WHERE table_name = 'schema_migrations'",
            [],
            |r| r.get(0),
        )
        .map_err(sql)?;
    if !has_table {
        return Ok(None);
    }
    let version = schema::schema_version(conn).map_err(sql)?;
    if version > schema::SCHEMA_VERSION {
        return Err(newer(data_dir, version));
    }
    if version == 0 || version == schema::SCHEMA_VERSION {
        return Ok(None);
    }
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let dir = data_dir.join("backups").join(format!("before-v{}-{stamp}", schema::SCHEMA_VERSION));
    copy_to(conn, &dir)?;
    tracing::info!(from = version, to = schema::SCHEMA_VERSION, backup = %dir.display(), "migrating the embedded store; a copy of it was made first");
    Ok(Some(dir))
}

fn newer(dir: &Path, version: i32) -> StoreError {
    StoreError::Internal(format!(
        "{} was written by a newer troupe (schema version {version}; this build knows up to {}): run that version, or restore a backup",
        dir.display(),
        schema::SCHEMA_VERSION
    ))
}

fn sql(e: duckdb::Error) -> StoreError {
    StoreError::Internal(e.to_string())
}

fn internal(message: &str) -> StoreError {
    StoreError::Internal(message.to_string())
}

fn io(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Internal(format!("cannot {what} {}: {e}", path.display()))
}
