//! `troupe bench`: generate a B2B data set (deterministic from a seed), load it into an embedded
//! store, and time the insights the benchmark names, each beside a plain-SQL formulation of the
//! same question on the same engine (DuckDB), whose answer must match. Prints a table and writes
//! JSON so runs can be compared. docs/benchmarks.md says how to read it.

mod clickhouse;
mod export;
mod generate;
mod ingest;
mod limit;
mod native;
mod questions;

use std::time::{Duration as StdDuration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{TimeZone, Utc};
use futures_util::StreamExt;
use serde_json::{json, Value};
use troupe_duckdb::{DuckStore, EmbeddedConfig};
use troupe_store::{Document, NewProject, Store};

use crate::config::BenchArgs;
use generate::{Generator, Shape};
use questions::Question;

const BATCH: usize = 10_000;
/// Time after which a plain-SQL reference is not run again.
const REFERENCE_BUDGET: StdDuration = StdDuration::from_secs(20);

pub async fn run(args: BenchArgs) -> Result<()> {
    // RUST_LOG=troupe_clickhouse::sql=debug shows the SQL troupe sends to ClickHouse.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    }
    if let Some(threads) = args.threads {
        // The insights' parallel work runs on rayon's global pool, sized once per process.
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build_global()
            .context("--threads: the thread pool was already started")?;
    }
    let shape = Shape {
        events: args.size.unwrap_or(args.events),
        seed: args.seed,
        days: 90,
        end: Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).single().context("bench end date")?,
    };
    let ingestion = if args.ingest_events > 0 {
        println!(
            "ingestion: {} events in batches, then {} single-event requests, to a fresh troupe serve…",
            args.ingest_events, args.ingest_singles
        );
        let r = ingest::run(args.ingest_events, args.ingest_singles).await?;
        println!(
            "ingestion: {:.0} events/s in batches of 500 ({} events, {:.1} s); single events p50 {:.2} ms, p99 {:.2} ms; server peak RSS {:.0} MiB",
            r.batch_events as f64 / r.batch_seconds.max(1e-9),
            r.batch_events,
            r.batch_seconds,
            r.single_p50_ms,
            r.single_p99_ms,
            r.peak_rss_mib
        );
        Some(r.json())
    } else {
        None
    };
    let dir = args.data_dir.join(format!("events-{}-seed-{}", shape.events, shape.seed));
    // Every core for DuckDB: the plain-SQL reference runs on this store.
    let duckdb_threads = std::thread::available_parallelism().map(usize::from).unwrap_or(1);
    let config = EmbeddedConfig {
        data_dir: Some(dir.clone()),
        duckdb_threads,
        release_freed_memory: Some(crate::alloc::release_freed_memory),
        // As `troupe serve` opens it: the restart is measured as a server restarts.
        preload_columns: true,
        ..EmbeddedConfig::default()
    };
    let mut store = DuckStore::open(config.clone())?;
    let (project, load_seconds) = load(&store, shape).await?;
    let company_slot = company_slot(&store, project).await?;

    let machine = machine();
    println!(
        "troupe bench: {} events, {} users, {} companies, seed {}, {} cores ({} query threads), {} MiB memory (data in {})",
        shape.events,
        shape.users(),
        shape.companies(),
        shape.seed,
        machine["cores"],
        machine["query_threads"],
        machine["memory_mib"],
        dir.display()
    );
    if let Some(seconds) = load_seconds {
        println!("loaded through the store's writer: {seconds:.1} s, {:.0} events/s", shape.events as f64 / seconds);
    }
    let mut results = Vec::new();
    let selected: Vec<Question> =
        questions::all(shape, project, company_slot)?.into_iter().filter(|q| args.selects(q.name)).collect();
    if selected.is_empty() {
        bail!("--only {:?} selects no question", args.only);
    }
    // troupe answers every question before any reference runs, so that the process's peak
    // memory by then is troupe's own (the embedded store's columns load on the first question).
    let reset = ingest::reset_own_peak_rss();
    let mut answers = Vec::new();
    for q in &selected {
        answers.push(time_insight(&store, project, q, args.runs, shape).await?);
    }
    let questions_peak_rss_mib = ingest::peak_rss_mib(std::process::id());
    println!(
        "troupe's answers: process peak RSS {questions_peak_rss_mib:.0} MiB{} (before any reference ran)",
        if reset { "" } else { " since the start (the kernel refused to reset the mark)" }
    );
    let restart;
    (store, restart) = restart_to_first_answer(store, &config, project, (&selected[0], answers[0].2), shape).await?;
    println!("{:<40} {:>10} {:>10} {:>12} {:>8}  answer", "question", "cold ms", "warm ms", "plain SQL ms", "ratio");
    for (q, answer) in selected.iter().zip(answers) {
        let r = measure(&store, q, answer, args.runs).await?;
        println!(
            "{:<40} {:>10.1} {:>10.1} {:>12.1} {:>8.2}  {}",
            q.name,
            ms(r.cold),
            ms(r.warm),
            ms(r.reference),
            r.warm.as_secs_f64() / r.reference.as_secs_f64().max(1e-9),
            if r.matches {
                format!("{} (same as SQL)", r.answer)
            } else {
                format!("{} ≠ SQL {}", r.answer, r.reference_answer)
            }
        );
        results.push(json!({
            "question": q.name, "cold_ms": ms(r.cold), "warm_ms": ms(r.warm), "plain_sql_ms": ms(r.reference),
            "ratio_warm_to_plain_sql": r.warm.as_secs_f64() / r.reference.as_secs_f64().max(1e-9),
            "answer": r.answer, "plain_sql_answer": r.reference_answer, "answers_match": r.matches,
        }));
    }
    // The physical limit: the trend's columns at this machine's memory bandwidth.
    let bandwidth = limit::memory_bandwidth();
    let in_range = store
        .sql_numbers(format!(
            "SELECT count(*)::DOUBLE FROM events WHERE project_id = {project} AND ts >= TIMESTAMP '{}' AND ts < TIMESTAMP '{}'",
            (shape.end - chrono::Duration::days(shape.days)).format("%Y-%m-%d"),
            shape.end.format("%Y-%m-%d")
        ))
        .await?
        .first()
        .and_then(|r| r.first().copied())
        .unwrap_or(shape.events as f64);
    let trend_ms = results.iter().find(|r| r["question"] == questions::TREND).and_then(|r| r["warm_ms"].as_f64());
    let physical_limit = limit::trend_limit(in_range, bandwidth, trend_ms);
    let on_clickhouse = match &args.clickhouse {
        Some(target) => Some(clickhouse_column(target, shape, &results, &args).await?),
        None => None,
    };
    let import = if args.import { Some(import(shape, &args.data_dir)?) } else { None };
    let on_clickhouse_questions = on_clickhouse.as_ref().and_then(|c| c["questions"].as_array()).cloned();
    let troupe = native::Troupe { embedded: &results, on_clickhouse: on_clickhouse_questions.as_deref() };
    let native =
        native::reference(&args.references, args.clickhouse.as_deref(), shape, (&store, project), troupe, args.runs)
            .await?;
    let report = json!({
        "shape": {"events": shape.events, "users": shape.users(), "companies": shape.companies(), "seed": shape.seed, "days": shape.days},
        "machine": machine,
        "load_seconds": load_seconds,
        "ingestion": ingestion,
        "questions": results,
        "questions_peak_rss_mib": questions_peak_rss_mib,
        "restart": restart,
        "physical_limit": physical_limit,
        "troupe_on_clickhouse": on_clickhouse,
        "clickhouse_native_references": native,
        "import": import,
    });
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("report: {}", args.out.display());
    if results.iter().any(|r| r["answers_match"] == json!(false)) {
        bail!("troupe and the plain-SQL reference disagree (see the table)");
    }
    if report["troupe_on_clickhouse"]["questions"]
        .as_array()
        .is_some_and(|qs| qs.iter().any(|q| q["same_answer_as_embedded"] == json!(false)))
    {
        bail!("troupe on ClickHouse and on the embedded store disagree (see the table)");
    }
    Ok(())
}

/// The questions again through troupe's ClickHouse store, each beside the embedded store's warm
/// time (`embedded`, the rows just printed) and checked to give the same answer.
async fn clickhouse_column(target: &str, shape: Shape, embedded: &[Value], args: &BenchArgs) -> Result<Value> {
    println!("troupe on ClickHouse ({target}): loading the same data set…");
    let ch = clickhouse::open(target, shape).await?;
    if let Some(seconds) = ch.load_seconds {
        println!(
            "loaded through the ClickHouse store's writer: {seconds:.1} s, {:.0} events/s",
            shape.events as f64 / seconds
        );
    }
    let rows = match time_on_clickhouse(&ch, shape, embedded, args).await {
        Ok(rows) => rows,
        Err(e) => {
            // Closed, the writer marks itself stopped: the next run need not wait for its
            // heartbeat to age before migrating.
            drop(ch.close().await);
            return Err(e);
        }
    };
    let described = ch.described.clone();
    let load_seconds = ch.load_seconds;
    let url = ch.url.clone();
    // The writer gives the database up when closed: a `troupe serve` takes it over.
    let server = ch.close().await;
    let writer = writer_restart(&url, shape).await?;
    drop(server);
    Ok(json!({"where": described, "load_seconds": load_seconds, "questions": rows, "writer_restart": writer}))
}

/// The questions on the ClickHouse store, each beside the embedded store's warm time.
async fn time_on_clickhouse(
    ch: &clickhouse::OnClickHouse,
    shape: Shape,
    embedded: &[Value],
    args: &BenchArgs,
) -> Result<Vec<Value>> {
    println!("{:<40} {:>10} {:>10} {:>14} {:>8}  answer", "question", "cold ms", "warm ms", "embedded ms", "ratio");
    let mut rows = Vec::new();
    let selected = questions::all(shape, ch.project, 0)?.into_iter().filter(|q| args.selects(q.name));
    for (q, e) in selected.zip(embedded) {
        let (cold, warm, answer) = time_insight(&ch.store, ch.project, &q, args.runs, shape).await?;
        let embedded_ms = e["warm_ms"].as_f64().unwrap_or(f64::NAN);
        let same = e["answer"].as_f64().is_some_and(|a| (a - answer).abs() < 1e-6);
        println!(
            "{:<40} {:>10.1} {:>10.1} {:>14.1} {:>8.2}  {}",
            q.name,
            ms(cold),
            ms(warm),
            embedded_ms,
            ms(warm) / embedded_ms,
            if same {
                format!("{answer} (same as embedded)")
            } else {
                format!("{answer} ≠ embedded {}", e["answer"])
            }
        );
        rows.push(json!({
            "question": q.name, "cold_ms": ms(cold), "warm_ms": ms(warm), "embedded_warm_ms": embedded_ms,
            "ratio_to_embedded": ms(warm) / embedded_ms, "answer": answer, "same_answer_as_embedded": same,
        }));
    }
    Ok(rows)
}

/// Events sent to the restarted writer: enough to see its memory settle, bounded in time.
const RESTART_EVENTS: u64 = 200_000;

/// A `troupe serve` started on the loaded database: how long it takes to start and how much
/// memory it holds, then fed the data set's persons and companies with new event ids.
async fn writer_restart(url: &str, shape: Shape) -> Result<Value> {
    let report = ingest::restart_on(url, "bench", RESTART_EVENTS).await?;
    println!(
        "troupe serve on the {}-event database: started in {:.2} s, RSS {:.0} MiB; then {:.0} events/s over HTTP \
         ({} events in batches of 500), peak RSS {:.0} MiB",
        shape.events,
        report.start_seconds,
        report.rss_at_start_mib,
        report.ingest.batch_events as f64 / report.ingest.batch_seconds.max(1e-9),
        report.ingest.batch_events,
        report.ingest.peak_rss_mib
    );
    Ok(report.json())
}

/// The data set as a PostHog export through `troupe import`, timed.
fn import(shape: Shape, data_dir: &std::path::Path) -> Result<Value> {
    println!("import: writing the data set as a PostHog NDJSON export (once)…");
    let (file, events) = export::write(shape, data_dir)?;
    let bytes = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
    let seconds = export::time_import(&file)?;
    let rate = events as f64 / seconds.max(1e-9);
    println!(
        "import: troupe import --from posthog of {} ({:.0} MiB, {events} events): {seconds:.1} s, {rate:.0} events/s",
        file.display(),
        bytes as f64 / (1024.0 * 1024.0)
    );
    Ok(
        json!({"file": file.display().to_string(), "bytes": bytes, "events": events, "seconds": seconds, "events_per_second": rate}),
    )
}

fn ms(d: StdDuration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// The bench project, generated and loaded once per (events, seed): later runs reuse it. The
/// load time when this run loaded it.
async fn load(store: &dyn Store, shape: Shape) -> Result<(u32, Option<f64>)> {
    if let Some(p) = store.projects().await?.into_iter().find(|p| p.name == "bench") {
        let complete = store.documents(p.id, "bench").await?.iter().any(|d| d.id == "loaded");
        if !complete {
            bail!("an earlier load of this data set was interrupted; delete its directory and run again");
        }
        return Ok((p.id, None));
    }
    let project = store
        .create_project(NewProject {
            name: "bench".into(),
            ingestion_key: "bench".into(),
            secret_key_hash: String::new(),
        })
        .await?;
    let started = Instant::now();
    let mut generator = Generator::new(shape);
    let bar = indicatif::ProgressBar::new(shape.events);
    // Two batches in flight, as concurrent clients keep a writer busy: the next batch is
    // applied while the previous one is being written. They reach the writer in order.
    let batches = std::iter::from_fn(|| {
        let batch = generator.next_batch(BATCH);
        (!batch.is_empty()).then_some(batch)
    });
    let mut applied = futures_util::stream::iter(batches).map(|batch| store.apply(project.id, batch)).buffered(2);
    let mut loaded = 0;
    while let Some(results) = applied.next().await {
        for r in results? {
            r.context("the generator produced a command the rules refuse")?;
            loaded += 1;
        }
        // Commands (identities, memberships and events): about the events' count.
        bar.set_position(loaded.min(shape.events));
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    // Marked only when complete, so an interrupted load is not taken for a finished one.
    let marker = Document {
        kind: "bench".into(),
        id: "loaded".into(),
        body: json!({"seconds": seconds}),
        updated_at: Utc::now(),
    };
    store.put_document(project.id, marker).await?;
    Ok((project.id, Some(seconds)))
}

/// Restart-to-first-answer: the store closed (which saves the columns' snapshots), opened again
/// and asked `q`; then the same with the snapshots deleted (the first question reads every
/// event from DuckDB, as on a first start or after a rewrite). Returns the store, open.
async fn restart_to_first_answer(
    store: DuckStore,
    config: &EmbeddedConfig,
    project: u32,
    (q, expected): (&Question, f64),
    shape: Shape,
) -> Result<(DuckStore, Value)> {
    let mut store = Some(store);
    let mut rows = Vec::new();
    for snapshot in [true, false] {
        drop(store.take());
        // What the closed store freed is not the reopened one's memory.
        crate::alloc::release_freed_memory();
        let snapshots = config.data_dir.as_ref().map(|dir| dir.join(troupe_duckdb::SNAPSHOT_DIR));
        if let (false, Some(dir)) = (snapshot, &snapshots) {
            std::fs::remove_dir_all(dir).with_context(|| format!("cannot delete {}", dir.display()))?;
        }
        let reset = ingest::reset_own_peak_rss();
        let started = Instant::now();
        let opened = DuckStore::open(config.clone())?;
        let open = started.elapsed();
        let open_rss = ingest::rss_mib(std::process::id());
        let answer = troupe_query::run(&opened, project, &q.insight, shape.end).await?;
        let first = started.elapsed();
        let peak = ingest::peak_rss_mib(std::process::id());
        if (q.checksum)(&answer) != expected {
            bail!("after a restart {:?} answered {} instead of {expected}", q.name, (q.checksum)(&answer));
        }
        println!(
            "restart to first answer ({}): {:.0} ms (store open {:.0} ms, then {:?} {:.0} ms); RSS {open_rss:.0} MiB when open, peak {peak:.0} MiB{}",
            if snapshot { "columns from their snapshot" } else { "no snapshot: every event from DuckDB" },
            ms(first),
            ms(open),
            q.name,
            ms(first - open),
            if reset { "" } else { " since the start" },
        );
        rows.push(json!({
            "from_snapshot": snapshot, "restart_to_first_answer_ms": ms(first), "open_ms": ms(open),
            "question": q.name, "answer": (q.checksum)(&answer), "rss_when_open_mib": open_rss, "peak_rss_mib": peak,
        }));
        store = Some(opened);
    }
    let store = store.context("the store was not reopened")?;
    Ok((store, json!(rows)))
}

async fn company_slot(store: &DuckStore, project: u32) -> Result<u8> {
    store
        .group_types(project)
        .await?
        .into_iter()
        .find(|t| t.group_type == "company")
        .map(|t| t.index)
        .context("the bench project has no company group type")
}

struct Measured {
    cold: StdDuration,
    warm: StdDuration,
    reference: StdDuration,
    answer: f64,
    reference_answer: f64,
    matches: bool,
}

/// The first answer's time, the median of `runs` more, and the answer.
async fn time_insight(
    store: &dyn Store,
    project: u32,
    q: &Question,
    runs: usize,
    shape: Shape,
) -> Result<(StdDuration, StdDuration, f64)> {
    let now = shape.end;
    let started = Instant::now();
    let result = troupe_query::run(store, project, &q.insight, now).await?;
    let cold = started.elapsed();
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        troupe_query::run(store, project, &q.insight, now).await?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok((cold, times[times.len() / 2], (q.checksum)(&result)))
}

/// troupe's times and answer (from [`time_insight`]) beside the plain-SQL reference's.
async fn measure(
    store: &DuckStore,
    q: &Question,
    (cold, warm, answer): (StdDuration, StdDuration, f64),
    runs: usize,
) -> Result<Measured> {
    let mut reference_times = Vec::new();
    let mut reference_answer = f64::NAN;
    let started_all = Instant::now();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        let rows = store.sql_numbers(q.sql.clone()).await?;
        reference_times.push(started.elapsed());
        reference_answer = rows.first().and_then(|r| r.first()).copied().unwrap_or(f64::NAN);
        // A slow formulation (the plain-SQL funnel takes about a minute at 10M) is not repeated
        // for minutes: its median is taken over the runs done by then.
        if started_all.elapsed() > REFERENCE_BUDGET {
            break;
        }
    }
    reference_times.sort();
    Ok(Measured {
        cold,
        warm,
        reference: reference_times[reference_times.len() / 2],
        answer,
        reference_answer,
        matches: (answer - reference_answer).abs() < 1e-6,
    })
}

fn machine() -> Value {
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0);
    let threads = rayon::current_num_threads();
    let memory_mib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb / 1024);
    json!({"cores": cores, "query_threads": threads, "memory_mib": memory_mib})
}
