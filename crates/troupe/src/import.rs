//! `troupe import`: load event exports people bring from PostHog, Mixpanel or Segment.
//!
//! Each NDJSON line or CSV row is one event (or message) in the source tool's own shape and goes
//! through that protocol's adapter, so an import means exactly what live ingestion means:
//! timestamps honoured, groups taken from the event's own group fields, `$groupidentify` /
//! `group` rows applied to group profiles. Ids deduplicate, and a row without one gets an id
//! derived from its content, so running the same import again loads nothing twice.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};
use troupe_core::{Limits, Outcome, PreparedCommand, ProjectId};
use troupe_ingest::export::{self, ExportOptions, Record};
use troupe_ingest::segment::SegmentOptions;
use troupe_store::settings::IngestionSettings;
use troupe_store::{CommandResult, Store};
use xxhash_rust::xxh3::xxh3_64;

use crate::config::{ExportSource, ImportArgs};

mod remote;

/// Commands applied per store call (a row is one or a few). Each call is one transaction of the
/// embedded writer, and each transaction deletes and rewrites the persons it touched (a scan of
/// those tables), so fewer, larger calls cost less; but past ~40k events DuckDB's checkpoints
/// grew costlier. 10M PostHog events: 20k 52.3 s, 30k 47.2, 40k 46.3-47.5, 50k 51.5, 65k 51.2.
const BATCH_COMMANDS: usize = 40_000;
/// Bytes of rows read per store call at most, whatever their count: exports whose events carry
/// large properties keep a batch's memory bounded (the bench's rows average ~210 bytes, so
/// 40,000 of them are ~8 MB).
const BATCH_BYTES: usize = 32 << 20;
/// Store calls awaited at once: the embedded writer applies the rules to one batch while it
/// commits the one before.
const BATCHES_IN_FLIGHT: usize = 2;
/// Rejected rows listed in the summary.
const SHOWN_ERRORS: usize = 5;

/// One row of an export: its line number, and what was read or why it could not be.
pub(crate) type Row = (usize, Result<RawRow, String>);

/// A row as read, with the hash of its raw bytes (for derived ids) and their count.
pub(crate) struct RawRow {
    pub(crate) record: Record,
    pub(crate) hash: u64,
    pub(crate) bytes: usize,
}

/// What one file did.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    rows: usize,
    new_events: usize,
    known_events: usize,
    profile_rows: usize,
    rejected: Vec<(usize, String)>,
}

pub async fn run(args: ImportArgs) -> Result<()> {
    if let Some(server) = &args.server {
        return remote::import_all(server, &args).await;
    }
    let store = args.store.open().await?;
    let imported = import_all(store.as_ref(), &args).await;
    store.close().await;
    imported
}

async fn import_all(store: &dyn Store, args: &ImportArgs) -> Result<()> {
    let Some(project) = store.projects().await?.into_iter().find(|p| p.name == args.project) else {
        bail!("no project '{}' (create it with `troupe project create {}`)", args.project, args.project);
    };
    let limits = args.store.embedded().limits;
    for file in &args.files {
        let tally = import_file(store, project.id, args, &limits, file).await?;
        print_summary(file, &tally);
    }
    Ok(())
}

pub(crate) fn print_summary(file: &Path, t: &Tally) {
    println!(
        "{}: {} rows → {} new events, {} already loaded, {} profile/identity rows, {} rejected",
        file.display(),
        t.rows,
        t.new_events,
        t.known_events,
        t.profile_rows,
        t.rejected.len()
    );
    for (line, error) in t.rejected.iter().take(SHOWN_ERRORS) {
        println!("  line {line}: {error}");
    }
    if t.rejected.len() > SHOWN_ERRORS {
        println!("  … and {} more rejected rows", t.rejected.len() - SHOWN_ERRORS);
    }
}

async fn import_file(
    store: &dyn Store,
    project: ProjectId,
    args: &ImportArgs,
    limits: &Limits,
    path: &Path,
) -> Result<Tally> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = ProgressBar::new(size).with_message(path.display().to_string());
    if let Ok(style) = ProgressStyle::with_template("{msg} [{bar:32}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    let reader = BufReader::new(bar.wrap_read(file));
    let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    // A Segment export's `group` calls follow the project's rule, as the running server's do.
    let join = IngestionSettings::load(store, project).await?.segment_group;
    let options = ExportOptions {
        segment: SegmentOptions { group_type: args.segment_group_type.clone(), join },
        mixpanel_group_keys: args.mixpanel_group_keys.clone(),
    };
    let limits = limits.clone();
    let from = args.source.into();
    // Reading, translating and preparing rows runs on its own thread, a batch ahead of the
    // store: the store's writer and the reader each keep a core busy instead of taking turns.
    let (batches, ready) = tokio::sync::mpsc::channel::<Batch>(2);
    let source = args.source;
    let parser = std::thread::Builder::new().name("troupe-import-reader".into()).spawn(move || {
        // The reader runs a batch ahead and has time to spare; the store's commit thread has
        // none (see `lower_thread_priority`).
        troupe_store::writer::lower_thread_priority();
        let rows: Box<dyn Iterator<Item = Row>> =
            if is_csv { Box::new(csv_rows(reader, source)) } else { Box::new(ndjson_rows(reader)) };
        let mut read = Tally::default();
        let mut batch = Batch::with_capacity(BATCH_COMMANDS);
        for (line, row) in rows {
            read.rows += 1;
            match row {
                Ok(RawRow { record, hash, bytes }) => {
                    batch.bytes += bytes;
                    match export::translate(from, record, hash, &options, &limits) {
                        Ok(commands) => batch.push(line, commands),
                        Err(e) => read.rejected.push((line, e)),
                    }
                }
                Err(e) => read.rejected.push((line, e)),
            }
            // A closed channel: the store failed, and the error is reported from there.
            if batch.is_full()
                && batches.blocking_send(std::mem::replace(&mut batch, Batch::with_capacity(BATCH_COMMANDS))).is_err()
            {
                return read;
            }
        }
        let _ = batches.blocking_send(batch);
        read
    })?;
    let mut tally = Tally::default();
    let batches =
        futures_util::stream::unfold(ready, |mut ready| async move { ready.recv().await.map(|b| (b, ready)) });
    let applied = batches
        .map(|batch| async move {
            let results = store.apply_prepared(project, batch.commands).await;
            (batch.lines, results)
        })
        .buffered(BATCHES_IN_FLIGHT);
    let mut applied = std::pin::pin!(applied);
    while let Some((lines, results)) = applied.next().await {
        let results = results.context("the store refused the batch; nothing of it was loaded")?;
        count(lines, results, &mut tally);
    }
    let read = tokio::task::spawn_blocking(move || parser.join())
        .await
        .ok()
        .and_then(Result::ok)
        .context("the export's reader stopped")?;
    tally.rows = read.rows;
    tally.rejected.extend(read.rejected);
    bar.finish_and_clear();
    tally.rejected.sort_by_key(|(line, _)| *line);
    Ok(tally)
}

/// Commands ready for the store, each with the line it came from.
struct Batch {
    lines: Vec<usize>,
    commands: Vec<PreparedCommand>,
    /// Bytes of the rows read into it.
    bytes: usize,
}

impl Batch {
    fn with_capacity(commands: usize) -> Self {
        Batch { lines: Vec::with_capacity(commands), commands: Vec::with_capacity(commands), bytes: 0 }
    }

    /// Whether the batch goes to the store now: [`BATCH_COMMANDS`] or [`BATCH_BYTES`] reached.
    fn is_full(&self) -> bool {
        self.commands.len() >= BATCH_COMMANDS || self.bytes >= BATCH_BYTES
    }

    fn push(&mut self, line: usize, commands: Vec<PreparedCommand>) {
        self.lines.extend(std::iter::repeat_n(line, commands.len()));
        self.commands.extend(commands);
    }
}

/// What the store said of each command of a batch, counted by row.
fn count(lines: Vec<usize>, results: Vec<CommandResult>, tally: &mut Tally) {
    let mut failed_lines = std::collections::BTreeSet::new();
    let mut counted_lines = std::collections::BTreeSet::new();
    for (line, result) in lines.into_iter().zip(results) {
        match result {
            Ok(Outcome::Stored { .. }) => tally.new_events += 1,
            Ok(Outcome::Duplicate) => tally.known_events += 1,
            Ok(_) => {
                if counted_lines.insert(line) {
                    tally.profile_rows += 1;
                }
            }
            Err(e) => {
                if failed_lines.insert(line) {
                    tally.rejected.push((line, e.to_string()));
                }
            }
        }
    }
}

/// NDJSON: (line number, the line and the hash of its bytes). Blank lines are skipped.
pub(crate) fn ndjson_rows(reader: impl BufRead) -> impl Iterator<Item = Row> {
    reader.split(b'\n').enumerate().filter_map(|(i, line)| {
        let line = match line {
            Ok(line) => line,
            Err(e) => return Some((i + 1, Err(format!("cannot read: {e}")))),
        };
        let trimmed = line.trim_ascii();
        if trimmed.is_empty() {
            return None;
        }
        let hash = export::row_hash(trimmed);
        let bytes = line.len();
        Some((i + 1, Ok(RawRow { record: Record::Line(line), hash, bytes })))
    })
}

/// CSV with a header row: each row becomes the JSON object of its non-empty cells. A cell that
/// holds a JSON object or list is parsed; `properties.plan` columns nest. For Mixpanel (whose
/// events keep everything in `properties`), every column but `event` goes into `properties`.
pub(crate) fn csv_rows(reader: impl Read, source: ExportSource) -> impl Iterator<Item = Row> {
    let mut csv = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = csv.headers().map(|h| h.iter().map(str::to_string).collect::<Vec<_>>()).map_err(|e| e.to_string());
    let mut records = csv.into_records().enumerate();
    let mut header_error_reported = false;
    std::iter::from_fn(move || {
        let headers = match &headers {
            Ok(h) => h,
            Err(e) if !header_error_reported => {
                header_error_reported = true;
                return Some((1, Err(format!("cannot read the CSV header: {e}"))));
            }
            Err(_) => return None,
        };
        let (i, record) = records.next()?;
        let line = i + 2;
        let record = match record {
            Ok(r) => r,
            Err(e) => return Some((line, Err(format!("not valid CSV: {e}")))),
        };
        let mut row = Map::new();
        for (name, cell) in headers.iter().zip(record.iter()) {
            if cell.is_empty() {
                continue;
            }
            let value = if cell.starts_with('{') || cell.starts_with('[') {
                serde_json::from_str(cell).unwrap_or_else(|_| Value::String(cell.to_string()))
            } else {
                Value::String(cell.to_string())
            };
            let key = match source {
                ExportSource::Mixpanel if name != "event" && !name.starts_with("properties.") => {
                    format!("properties.{name}")
                }
                _ => name.clone(),
            };
            insert_dotted(&mut row, &key, value);
        }
        let raw = record.as_slice().as_bytes();
        Some((line, Ok(RawRow { record: Record::Json(Value::Object(row)), hash: xxh3_64(raw), bytes: raw.len() })))
    })
}

/// `properties.plan = x` → `{"properties": {"plan": x}}`.
fn insert_dotted(row: &mut Map<String, Value>, key: &str, value: Value) {
    match key.split_once('.') {
        Some((head, rest)) if head == "properties" || head == "context" || head == "traits" => {
            let entry = row.entry(head.to_string()).or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(inner) = entry {
                inner.insert(rest.to_string(), value);
            }
        }
        _ => {
            row.insert(key.to_string(), value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use troupe_core::{Command, TrackEvent};

    fn track() -> Vec<PreparedCommand> {
        vec![PreparedCommand::from(Command::Track(TrackEvent::default()))]
    }

    #[test]
    fn a_batch_is_full_at_its_command_count_or_its_bytes() {
        let mut small_rows = Batch::with_capacity(BATCH_COMMANDS);
        while !small_rows.is_full() {
            small_rows.bytes += 200;
            small_rows.push(small_rows.lines.len() + 1, track());
        }
        assert_eq!(small_rows.commands.len(), BATCH_COMMANDS);

        let mut large_rows = Batch::with_capacity(BATCH_COMMANDS);
        while !large_rows.is_full() {
            large_rows.bytes += 1 << 20;
            large_rows.push(large_rows.lines.len() + 1, track());
        }
        assert_eq!(large_rows.commands.len(), BATCH_BYTES >> 20);
    }
}
