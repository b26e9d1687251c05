//! Rows of the exports people bring from other tools (PostHog, Mixpanel, Segment, Amplitude):
//! one event or message per row, through that protocol's own adapter, so an import means exactly
//! what live ingestion means. Shared by `troupe import` (local) and the server's import route
//! (`troupe import --server`).
//!
//! A row's event without an id of its own gets one derived from the hash of the row's bytes, so
//! loading the same export again stores nothing twice.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use troupe_core::{Command, Limits, PreparedCommand};

use crate::segment::SegmentOptions;
use crate::{amplitude, mixpanel, posthog, segment};

/// The tool an export comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExportSource {
    Posthog,
    Mixpanel,
    Segment,
    Amplitude,
}

/// How rows map where their protocol leaves a choice.
#[derive(Debug, Clone, Default)]
pub struct ExportOptions {
    pub segment: SegmentOptions,
    /// Mixpanel's group keys (person and event properties that are memberships).
    pub mixpanel_group_keys: Vec<String>,
}

/// A row as read: an NDJSON line still as text (each protocol parses it its own way), or a CSV
/// row already made into JSON.
pub enum Record {
    Line(Vec<u8>),
    Json(Value),
}

/// The hash a row's derived id comes from: of its bytes, an NDJSON line trimmed of surrounding
/// whitespace (JSON readers skip it, so derived ids do not depend on it).
pub fn row_hash(row: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(row.trim_ascii())
}

/// The rows of an NDJSON body: (line number from 1, the line), blank lines skipped.
pub fn ndjson_lines(body: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    body.split(|b| *b == b'\n').enumerate().map(|(i, line)| (i + 1, line)).filter(|(_, l)| !l.trim_ascii().is_empty())
}

/// The id given to a row's event that has none: the hash of the row's bytes.
pub fn derived_id(raw_hash: u64) -> String {
    format!("import-{raw_hash:016x}")
}

/// One row through its protocol's adapter. `raw_hash` is the hash of the row's bytes (of the
/// trimmed line for NDJSON); events without an id get [`derived_id`] of it.
pub fn translate(
    source: ExportSource,
    record: Record,
    raw_hash: u64,
    options: &ExportOptions,
    limits: &Limits,
) -> Result<Vec<PreparedCommand>, String> {
    let derived = || derived_id(raw_hash);
    let value = match record {
        // PostHog lines keep their properties as text: see `posthog::export_line`.
        Record::Line(line) if source == ExportSource::Posthog => {
            return posthog::export_line(&line, limits, derived).map_err(|e| e.to_string());
        }
        Record::Line(line) => serde_json::from_slice(&line).map_err(|e| format!("not valid JSON: {e}"))?,
        Record::Json(value) => value,
    };
    let mut commands = match source {
        ExportSource::Posthog => posthog::event(value, None, limits),
        ExportSource::Segment => segment::message(&value, None, None, &options.segment, limits),
        ExportSource::Mixpanel => mixpanel::event(&value, &options.mixpanel_group_keys, limits),
        ExportSource::Amplitude => amplitude::event(&value, limits),
    }
    .map_err(|e| e.to_string())?;
    for command in &mut commands {
        if let Command::Track(event) = command {
            event.id.get_or_insert_with(derived);
        }
    }
    Ok(commands.into_iter().map(PreparedCommand::from).collect())
}
