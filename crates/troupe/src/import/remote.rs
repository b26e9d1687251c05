//! `troupe import --server URL --secret-key KEY`: the export's rows sent to a running troupe's
//! import route (`POST /api/projects/{p}/import?from=…`), which translates them exactly as a
//! local import does (same adapters, same derived ids), so the rows load once however often
//! they are sent. Rows go in requests of at most [`REQUEST_ROWS`] rows or [`REQUEST_BYTES`]
//! bytes; a request that fails on the way (network, 5xx, 429) is sent again.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::Deserialize;

use super::{csv_rows, ndjson_rows, print_summary, RawRow, Record, Row, Tally};
use crate::config::ImportArgs;

/// Rows per request; a request is one writer batch on the server.
const REQUEST_ROWS: usize = 5_000;
/// Bytes per request at most (the server takes 20 MB).
const REQUEST_BYTES: usize = 8 << 20;
/// Attempts of one request before the import stops.
const ATTEMPTS: u32 = 6;

/// The import route's answer.
#[derive(Deserialize)]
struct Answer {
    new_events: usize,
    duplicates: usize,
    profile_rows: usize,
    rejected: Vec<Rejected>,
}

#[derive(Deserialize)]
struct Rejected {
    line: usize,
    error: String,
}

pub async fn import_all(server: &str, args: &ImportArgs) -> Result<()> {
    let Some(secret) = &args.secret_key else {
        bail!("--server needs the project's secret key: --secret-key or TROUPE_SECRET_KEY");
    };
    let source = serde_json::to_value(troupe_ingest::export::ExportSource::from(args.source))?;
    let source = source.as_str().unwrap_or_default().to_string();
    let url = format!("{}/api/projects/{}/import?from={source}", server.trim_end_matches('/'), args.project);
    let client = reqwest::Client::builder().timeout(Duration::from_secs(300)).build()?;
    for file in &args.files {
        let tally = import_file(&client, &url, secret, args, file).await?;
        print_summary(file, &tally);
    }
    Ok(())
}

async fn import_file(
    client: &reqwest::Client,
    url: &str,
    secret: &str,
    args: &ImportArgs,
    path: &Path,
) -> Result<Tally> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let reader = BufReader::new(file);
    let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let rows: Box<dyn Iterator<Item = Row>> =
        if is_csv { Box::new(csv_rows(reader, args.source)) } else { Box::new(ndjson_rows(reader)) };
    let mut tally = Tally::default();
    let mut request = Request::default();
    for (line, row) in rows {
        tally.rows += 1;
        match row {
            Ok(RawRow { record, .. }) => request.push(line, record)?,
            Err(e) => tally.rejected.push((line, e)),
        }
        if request.lines.len() >= REQUEST_ROWS || request.body.len() >= REQUEST_BYTES {
            send(client, url, secret, std::mem::take(&mut request), &mut tally).await?;
        }
    }
    if !request.lines.is_empty() {
        send(client, url, secret, request, &mut tally).await?;
    }
    tally.rejected.sort_by_key(|(line, _)| *line);
    Ok(tally)
}

/// One request's NDJSON body and the file line of each of its lines.
#[derive(Default)]
struct Request {
    body: Vec<u8>,
    lines: Vec<usize>,
}

impl Request {
    fn push(&mut self, line: usize, record: Record) -> Result<()> {
        match record {
            Record::Line(text) => self.body.extend_from_slice(text.trim_ascii()),
            // A CSV row goes as the JSON object a local import makes of it.
            Record::Json(value) => serde_json::to_writer(&mut self.body, &value)?,
        }
        self.body.push(b'\n');
        self.lines.push(line);
        Ok(())
    }
}

/// Send one request until the server answers it (the rows' ids make a resend harmless), and
/// count its answer.
async fn send(client: &reqwest::Client, url: &str, secret: &str, request: Request, tally: &mut Tally) -> Result<()> {
    let mut wait = Duration::from_millis(250);
    for attempt in 1..=ATTEMPTS {
        let sent = client.post(url).bearer_auth(secret).header("content-type", "application/x-ndjson");
        let retry = match sent.body(request.body.clone()).send().await {
            Ok(response) if response.status().is_success() => {
                let answer: Answer = response.json().await.context("the server's answer is not the import's")?;
                count(answer, &request.lines, tally);
                return Ok(());
            }
            Ok(response) if response.status().is_server_error() || response.status().as_u16() == 429 => {
                let after = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse().ok());
                wait = after.map(Duration::from_secs).unwrap_or(wait);
                format!("the server answered {}", response.status())
            }
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                bail!("the server refused the import ({status}): {body}");
            }
            Err(e) => format!("cannot reach the server: {e}"),
        };
        if attempt == ATTEMPTS {
            bail!("{retry}; gave up after {ATTEMPTS} attempts (rows before line {} are loaded)", request.lines[0]);
        }
        eprintln!("{retry}; sending again in {wait:?}");
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(10));
    }
    Ok(())
}

fn count(answer: Answer, lines: &[usize], tally: &mut Tally) {
    tally.new_events += answer.new_events;
    tally.known_events += answer.duplicates;
    tally.profile_rows += answer.profile_rows;
    for rejected in answer.rejected {
        let line = lines.get(rejected.line.wrapping_sub(1)).copied().unwrap_or(rejected.line);
        tally.rejected.push((line, rejected.error));
    }
}
