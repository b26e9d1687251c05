//! Ingestion benchmark: a real `troupe serve` in its own process on a loopback port, fed over
//! HTTP by this process (the load generator), bounded in count and time. Measures events/s in
//! batches, the latency of single-event requests, and the server's peak memory.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const KEY: &str = "bench_ingest_key";
const BATCH: usize = 500;
const CONCURRENCY: usize = 4;
/// No phase runs longer than this, whatever the counts asked.
const TIME_LIMIT: Duration = Duration::from_secs(120);

pub struct IngestReport {
    pub batch_events: u64,
    pub batch_seconds: f64,
    pub single_requests: usize,
    pub single_p50_ms: f64,
    pub single_p99_ms: f64,
    pub peak_rss_mib: f64,
}

impl IngestReport {
    pub fn json(&self) -> Value {
        json!({
            "batch_events": self.batch_events, "batch_seconds": self.batch_seconds,
            "batch_events_per_second": self.batch_events as f64 / self.batch_seconds.max(1e-9),
            "single_requests": self.single_requests, "single_p50_ms": self.single_p50_ms,
            "single_p99_ms": self.single_p99_ms, "server_peak_rss_mib": self.peak_rss_mib,
        })
    }
}

pub async fn run(events: u64, singles: usize) -> Result<IngestReport> {
    let dir = tempfile::tempdir().context("temp dir for the ingestion server")?;
    let data_dir = dir.path().to_string_lossy().into_owned();
    let (mut server, base) = start_server(&["--data-dir", &data_dir]).await?;
    let result = measure(&base, KEY, events, singles, server.id()).await;
    let _ = server.kill().await;
    result
}

/// A writer started on a ClickHouse database that already holds a data set, then fed over HTTP.
pub struct WriterReport {
    pub start_seconds: f64,
    pub rss_at_start_mib: f64,
    pub ingest: IngestReport,
}

impl WriterReport {
    pub fn json(&self) -> Value {
        json!({
            "start_seconds": self.start_seconds, "rss_at_start_mib": self.rss_at_start_mib,
            "ingestion": self.ingest.json(),
        })
    }
}

/// Start `troupe serve --store <url>` on the loaded database (the time until it listens, its
/// memory then), and send `events` events to the project whose ingestion key is `key`: persons
/// and companies the data set has, ids it has not.
pub async fn restart_on(url: &str, key: &str, events: u64) -> Result<WriterReport> {
    let started = Instant::now();
    let (mut server, base) = start_server(&["--store", url]).await?;
    let start_seconds = started.elapsed().as_secs_f64();
    let rss_at_start_mib = server.id().map_or(f64::NAN, |pid| status_mib(pid, "VmRSS:"));
    let result = measure(&base, key, events, 0, server.id()).await;
    stop(&mut server).await;
    Ok(WriterReport { start_seconds, rss_at_start_mib, ingest: result? })
}

/// Stop a server as an operator would (SIGTERM), so a writer gives its database up at once
/// (a killed one holds it for 20 s); killed after 10 s.
async fn stop(server: &mut Child) {
    if let Some(pid) = server.id() {
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status().await;
        if tokio::time::timeout(Duration::from_secs(10), server.wait()).await.is_ok() {
            return;
        }
    }
    let _ = server.kill().await;
}

async fn start_server(store: &[&str]) -> Result<(Child, String)> {
    let exe = std::env::current_exe().context("cannot find the troupe binary")?;
    let mut child = Command::new(exe)
        .args(["serve", "--addr", "127.0.0.1:0", "--log-level", "warn"])
        .args(store)
        .env("TROUPE_DEFAULT_PROJECT_KEY", KEY)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("cannot start troupe serve")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await? {
            if let Some(rest) = line.strip_prefix("troupe listening on ") {
                return Ok::<_, std::io::Error>(rest.split_whitespace().next().map(str::to_string));
            }
        }
        Ok(None)
    })
    .await
    .context("troupe serve did not start within 60 s")??
    .context("troupe serve exited before listening")?;
    // Keep draining so the server never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, base))
}

const NAMES: [&str; 4] = ["Signed In", "Chart Created", "Dashboard Viewed", "Report Exported"];

fn event(i: u64) -> Value {
    let name = NAMES[(i % 4) as usize];
    json!({
        "event_name": name,
        "distinct_id": format!("u{}", i % 10_000),
        "event_id": format!("ingest-{i}"),
        "custom_properties": {"plan": "pro", "n": i, "$current_url": format!("/p/{}", i % 997)},
        "groups": {"company": format!("c{}", i % 500)},
    })
}

async fn measure(base: &str, key: &str, events: u64, singles: usize, pid: Option<u32>) -> Result<IngestReport> {
    let client = reqwest::Client::new();
    let bulk = format!("{base}/api/events/bulk");
    // The bodies are built before the clock starts and `CONCURRENCY` requests are kept in flight
    // (not sent in waves): what is timed is the server, not the generator's JSON.
    let bodies: Vec<(u64, Vec<u8>)> = (0..events)
        .step_by(BATCH)
        .map(|first| {
            let count = (events - first).min(BATCH as u64);
            let body = json!({"events": (first..first + count).map(event).collect::<Vec<_>>()});
            serde_json::to_vec(&body).map(|bytes| (count, bytes))
        })
        .collect::<Result<_, _>>()?;
    let started = Instant::now();
    let mut sent = 0u64;
    let mut replies = futures_util::stream::iter(bodies)
        .map(|(count, body)| {
            let request = client
                .post(&bulk)
                .header("X-Trodo-Site-Id", key)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body)
                .send();
            async move { (count, request.await) }
        })
        .buffer_unordered(CONCURRENCY);
    while let Some((count, reply)) = replies.next().await {
        let reply = reply.context("the server stopped answering")?;
        if !reply.status().is_success() {
            bail!("the server refused a batch: {}", reply.status());
        }
        sent += count;
        if started.elapsed() >= TIME_LIMIT {
            break;
        }
    }
    drop(replies);
    let batch_seconds = started.elapsed().as_secs_f64();

    let single = format!("{base}/api/events");
    let mut latencies = Vec::with_capacity(singles);
    let phase = Instant::now();
    for i in 0..singles {
        if phase.elapsed() >= TIME_LIMIT {
            break;
        }
        let at = Instant::now();
        let reply = client.post(&single).header("X-Trodo-Site-Id", key).json(&event(events + i as u64)).send().await?;
        if !reply.status().is_success() {
            bail!("the server refused an event: {}", reply.status());
        }
        latencies.push(at.elapsed().as_secs_f64() * 1000.0);
    }
    latencies.sort_by(f64::total_cmp);
    let pick =
        |p: f64| latencies.get(((latencies.len() as f64 - 1.0) * p).round() as usize).copied().unwrap_or(f64::NAN);
    Ok(IngestReport {
        batch_events: sent,
        batch_seconds,
        single_requests: latencies.len(),
        single_p50_ms: pick(0.5),
        single_p99_ms: pick(0.99),
        peak_rss_mib: pid.map_or(f64::NAN, peak_rss_mib),
    })
}

/// A process's high-water resident memory (`VmHWM`).
pub fn peak_rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmHWM:")
}

/// A memory line of `/proc/<pid>/status`, in MiB.
pub fn rss_mib(pid: u32) -> f64 {
    status_mib(pid, "VmRSS:")
}

fn status_mib(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with(field)).and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kb| kb / 1024.0)
}

/// Start this process's high-water mark again from its current resident memory (Linux's
/// `clear_refs` 5), so that a later [`peak_rss_mib`] covers only what came after. False when
/// the kernel refuses (the mark then covers the whole run).
pub fn reset_own_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
