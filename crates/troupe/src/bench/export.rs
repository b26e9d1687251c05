//! The import part of the benchmark: the generated data set written once as a PostHog-style
//! NDJSON export (the shape `troupe import --from posthog` reads), then timed through `troupe
//! import` in its own process into a fresh data directory.
//!
//! PostHog events name their groups themselves (`$groups`, one key per type), so each event
//! carries the user's company and active team as the generator's memberships say at that point;
//! person and group profiles travel as `$set` and `$groupidentify` rows, identity as `$identify`.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use serde_json::{json, Map, Value};
use troupe_core::{Command, MembershipOp, ProfileOp};

use super::generate::{Generator, Shape};

/// Write the export unless an earlier run did (written to a temporary name, renamed when
/// complete). Returns its path and the number of its event rows.
pub fn write(shape: Shape, dir: &Path) -> Result<(PathBuf, u64)> {
    let path = dir.join(format!("posthog-{}-seed-{}.ndjson", shape.events, shape.seed));
    if path.exists() {
        return Ok((path, shape.events));
    }
    std::fs::create_dir_all(dir)?;
    let partial = path.with_extension("partial");
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(&partial)?);
    let mut groups: HashMap<String, Map<String, Value>> = HashMap::new();
    let start = (shape.end - chrono::Duration::days(shape.days)).to_rfc3339();
    let mut generator = Generator::new(shape);
    loop {
        let batch = generator.next_batch(10_000);
        if batch.is_empty() {
            break;
        }
        for command in batch {
            if let Some(row) = row(command, &mut groups, &start) {
                serde_json::to_writer(&mut out, &row)?;
                out.write_all(b"\n")?;
            }
        }
    }
    out.flush()?;
    drop(out);
    std::fs::rename(&partial, &path)?;
    Ok((path, shape.events))
}

/// One command as an export row (`None`: memberships, which PostHog has no row for).
fn row(command: Command, groups: &mut HashMap<String, Map<String, Value>>, start: &str) -> Option<Value> {
    match command {
        Command::Track(e) => {
            let mut properties = e.properties;
            if let Some(g) = groups.get(&e.distinct_id) {
                properties.insert("$groups".into(), Value::Object(g.clone()));
            }
            let timestamp = e.timestamp.map(|t| t.to_rfc3339());
            Some(
                json!({"event": e.event, "distinct_id": e.distinct_id, "timestamp": timestamp, "properties": properties}),
            )
        }
        Command::Membership { distinct_id, group_type, op } => {
            // One group per type in PostHog: the company, and the active team.
            let key = match op {
                MembershipOp::Set(keys) => keys.into_iter().next(),
                _ => None,
            };
            if let Some(key) = key {
                groups.entry(distinct_id).or_default().insert(group_type, Value::from(key));
            }
            None
        }
        Command::Identify { anon_distinct_id, distinct_id } => {
            if let Some(g) = groups.remove(&anon_distinct_id) {
                groups.insert(distinct_id.clone(), g);
            }
            Some(json!({"event": "$identify", "distinct_id": distinct_id, "timestamp": start,
                        "properties": {"$anon_distinct_id": anon_distinct_id}}))
        }
        Command::PersonProfile { distinct_id, op: ProfileOp::Set(set) } => {
            Some(json!({"event": "$set", "distinct_id": distinct_id, "timestamp": start, "properties": {"$set": set}}))
        }
        Command::GroupProfile { group_type, group_key, op: ProfileOp::Set(set), .. } => Some(json!({
            "event": "$groupidentify", "distinct_id": "bench", "timestamp": start,
            "properties": {"$group_type": group_type, "$group_key": group_key, "$group_set": set}
        })),
        _ => None,
    }
}

/// `troupe import --from posthog` of the export into a fresh data directory, in its own process:
/// the seconds it took (an error if any row was rejected).
pub fn time_import(export: &Path) -> Result<f64> {
    let dir = tempfile::tempdir().context("temp dir")?;
    let exe = std::env::current_exe().context("the troupe binary")?;
    let run = |args: &[&str]| -> Result<String> {
        let output = std::process::Command::new(&exe)
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .with_context(|| format!("cannot run troupe {}", args[0]))?;
        if !output.status.success() {
            bail!("troupe {} failed: {}", args[0], String::from_utf8_lossy(&output.stderr));
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    };
    run(&["project", "create", "imported"])?;
    let file = export.to_str().context("the export's path is not UTF-8")?;
    let started = Instant::now();
    let summary = run(&["import", "--from", "posthog", "--project", "imported", file])?;
    let seconds = started.elapsed().as_secs_f64();
    // Every row must have loaded, or the rate means nothing.
    if !summary.contains(" 0 rejected") {
        bail!("troupe import rejected rows of the export: {summary}");
    }
    Ok(seconds)
}
