//! The reference the benchmark holds troupe to: the same questions answered by ClickHouse's own
//! engine with its native functions (`uniqExact`, `windowFunnel`, arrays), over the same events
//! — read back from the embedded store after loading, so persons are resolved through the same
//! identity merges and events carry the same company ids — in a plain table ClickHouse orders as
//! it likes. The answers are printed beside troupe's; `windowFunnel` counts in whole seconds and
//! lets one event serve two steps, so its funnel counts may differ slightly from troupe's.

use std::time::{Duration as StdDuration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use troupe_clickhouse::testing::{ClickHouseCluster, Engine};
use troupe_clickhouse::{quote, ClickHouseConfig, Http};
use troupe_duckdb::DuckStore;
use troupe_store::{ScanRequest, Store};

use super::generate::{Shape, FUNNEL, RETURN_EVENT};
use crate::config::NativeReferences;

/// Rows per insert.
const CHUNK: usize = 200_000;

/// A ClickHouse server the references run on: one started for the run (Debian's 18.16, or
/// current ClickHouse of PyPI `chdb-core` behind the tests' HTTP front), or the one a
/// `--clickhouse` URL names.
pub struct Server {
    http: Http,
    described: String,
    /// "18.16", "26.9": the reference's name in the tables.
    version: String,
    /// Whether it knows `LowCardinality` (the tuned schema): every release since 19.x.
    tunable: bool,
    _local: Option<ClickHouseCluster>,
}

impl Server {
    pub async fn open(target: Where<'_>, shape: Shape) -> Result<Self> {
        let database = format!("troupe_native_{}_{}", shape.events, shape.seed);
        let (config, local) = match target {
            Where::Local(engine) => {
                let server = ClickHouseCluster::start_on(engine, 1)
                    .with_context(|| format!("cannot start {}", engine.name()))?;
                (server.config(&database), Some(server))
            }
            Where::Url(url) => (ClickHouseConfig::parse(url).context("--clickhouse")?, None),
        };
        let described = format!("{} database {}", config.nodes.join(", "), database);
        let node = config.nodes.first().cloned().unwrap_or_default();
        let http = Http::new(ClickHouseConfig { database: database.clone(), ..config })?;
        http.execute_on(&node, &format!("CREATE DATABASE IF NOT EXISTS {database}"), false).await?;
        let version: Vec<Version> = http.rows("SELECT version() AS version").await?;
        let full = version.first().map(|v| v.version.clone()).unwrap_or_default();
        let version: String = full.split('.').take(2).collect::<Vec<_>>().join(".");
        let major: u32 = version.split('.').next().and_then(|m| m.parse().ok()).unwrap_or(0);
        let engine = match target {
            Where::Local(Engine::Current) => "ClickHouse (chdb-core, in-process behind an HTTP front)",
            _ => "clickhouse-server",
        };
        Ok(Server {
            http,
            described: format!("{engine} {full}, {described}"),
            version,
            tunable: major >= 19,
            _local: local,
        })
    }
}

/// Where a reference runs.
#[derive(Clone, Copy)]
pub enum Where<'a> {
    Local(Engine),
    Url(&'a str),
}

/// The references a run asks for: each local engine wanted, and the server a `--clickhouse` URL
/// names.
pub fn wanted<'a>(asked: &[NativeReferences], target: Option<&'a str>) -> Vec<Where<'a>> {
    if asked.contains(&NativeReferences::None) {
        return Vec::new();
    }
    let all = asked.is_empty();
    let mut out = Vec::new();
    if all || asked.contains(&NativeReferences::Debian) {
        out.push(Where::Local(Engine::Debian));
    }
    if all || asked.contains(&NativeReferences::Current) {
        out.push(Where::Local(Engine::Current));
    }
    if all || asked.contains(&NativeReferences::Server) {
        if let Some(url) = target.filter(|t| super::clickhouse::local_engine(t).is_none()) {
            out.push(Where::Url(url));
        }
    }
    out
}

/// A schema the events are copied into, and the tables the questions read.
#[derive(Clone, Copy, PartialEq)]
enum Schema {
    /// What a first-time user writes: texts as `String`, persons and companies as their keys.
    Plain,
    /// What an expert chooses: event names as `LowCardinality(String)`, persons and companies as
    /// 64-bit hashes of their keys (troupe keeps dense integer ids), the same `ORDER BY`.
    Tuned,
}

impl Schema {
    fn events(self) -> &'static str {
        match self {
            Schema::Plain => "native_events",
            Schema::Tuned => "native_tuned_events",
        }
    }

    fn companies(self) -> &'static str {
        match self {
            Schema::Plain => "native_companies",
            Schema::Tuned => "native_tuned_companies",
        }
    }

    /// The columns of its events table and of its companies table.
    fn columns(self) -> (&'static str, &'static str) {
        match self {
            Schema::Plain => (
                "ts Int64, time DateTime, event String, person String, companies Array(String)",
                "company String, plan String",
            ),
            Schema::Tuned => (
                "ts Int64, time DateTime, event LowCardinality(String), person UInt64, companies Array(UInt64)",
                "company UInt64, plan LowCardinality(String)",
            ),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Schema::Plain => "bench's schema",
            Schema::Tuned => "tuned schema",
        }
    }
}

#[derive(Deserialize)]
struct Version {
    version: String,
}

#[derive(Serialize)]
struct EventRow<'a> {
    ts: i64,
    time: i64,
    event: &'a str,
    person: &'a str,
    companies: Vec<&'a str>,
}

#[derive(Serialize)]
struct CompanyRow<'a> {
    company: &'a str,
    plan: &'a str,
}

/// Copy the embedded project's events into `native_events` (and company plans into
/// `native_companies`) unless an earlier run did. Returns the seconds it took, if it loaded.
async fn load(http: &Http, store: &DuckStore, project: u32, events: u64) -> Result<Option<f64>> {
    if prepare(http, Schema::Plain, events).await? {
        return Ok(None);
    }
    let started = Instant::now();
    // The companies' properties too: the breakdown's native reference joins on their plan.
    let request = ScanRequest {
        group_types: vec!["company".into()],
        persons: true,
        group_details: true,
        ..ScanRequest::default()
    };
    let scan = store.scan(project, request).await?;
    let companies = scan.groups.first().context("the scan has no company column")?;
    let mut rows = Vec::with_capacity(CHUNK);
    for i in 0..scan.len() {
        let person = scan.person.get(i).and_then(|&p| scan.persons.get(p as usize)).map_or("", |a| a.key.as_str());
        rows.push(EventRow {
            ts: scan.ts[i],
            time: scan.ts[i].div_euclid(1_000_000),
            event: scan.name.get(i).and_then(|&n| scan.names.get(n as usize)).map_or("", String::as_str),
            person,
            companies: companies
                .of(i)
                .iter()
                .filter_map(|&c| companies.actors.get(c as usize))
                .map(|a| a.key.as_str())
                .collect(),
        });
        if rows.len() == CHUNK {
            http.insert("native_events", &rows).await?;
            rows.clear();
        }
    }
    http.insert("native_events", &rows).await?;
    let plans: Vec<CompanyRow> = companies
        .actors
        .iter()
        .filter_map(|a| {
            a.properties.get("plan").and_then(Value::as_str).map(|plan| CompanyRow { company: &a.key, plan })
        })
        .collect();
    http.insert("native_companies", &plans).await?;
    Ok(Some(started.elapsed().as_secs_f64()))
}

/// A schema's two tables, created when missing. `true` when its events table already holds
/// `events` rows (an earlier run loaded it); otherwise both are emptied for a load.
async fn prepare(http: &Http, schema: Schema, events: u64) -> Result<bool> {
    let (event_columns, company_columns) = schema.columns();
    let (events_table, companies_table) = (schema.events(), schema.companies());
    http.execute(&format!(
        "CREATE TABLE IF NOT EXISTS {events_table} ({event_columns}) ENGINE = MergeTree ORDER BY (event, time)"
    ))
    .await?;
    http.execute(&format!(
        "CREATE TABLE IF NOT EXISTS {companies_table} ({company_columns}) ENGINE = MergeTree ORDER BY company"
    ))
    .await?;
    #[derive(Deserialize)]
    struct Count {
        n: u64,
    }
    let have: Vec<Count> = http.rows(&format!("SELECT count() AS n FROM {events_table}")).await?;
    if have.first().is_some_and(|c| c.n == events) {
        return Ok(true);
    }
    http.execute(&format!("TRUNCATE TABLE {events_table}")).await?;
    http.execute(&format!("TRUNCATE TABLE {companies_table}")).await?;
    Ok(false)
}

/// The plain tables again in the tuned schema (`INSERT … SELECT` on the server), unless an
/// earlier run did. Returns the seconds it took, if it loaded.
async fn load_tuned(http: &Http, events: u64) -> Result<Option<f64>> {
    if prepare(http, Schema::Tuned, events).await? {
        return Ok(None);
    }
    let started = Instant::now();
    http.execute(
        "INSERT INTO native_tuned_events SELECT ts, time, event, cityHash64(person), \
         arrayMap(c -> cityHash64(c), companies) FROM native_events",
    )
    .await?;
    http.execute("INSERT INTO native_tuned_companies SELECT cityHash64(company), plan FROM native_companies").await?;
    // Merged into one part, as a table loaded once and queried many times would be by then.
    http.execute("OPTIMIZE TABLE native_tuned_events FINAL").await?;
    Ok(Some(started.elapsed().as_secs_f64()))
}

/// One question in ClickHouse's SQL: rows of `(label, v)`; the answer is the row labelled
/// `label` (the breakdown value asked for) or the single row.
struct NativeQuestion {
    sql: String,
    label: &'static str,
    /// The native functions it uses, for the report.
    functions: &'static str,
}

/// The questions of `super::questions` in the same order, on a schema's tables.
fn questions(shape: Shape, schema: Schema) -> Vec<NativeQuestion> {
    let (events, companies) = (schema.events(), schema.companies());
    let to = shape.end.timestamp_micros();
    let from = (shape.end - chrono::Duration::days(shape.days)).timestamp_micros();
    let range = format!("ts >= {from} AND ts < {to}");
    let steps: Vec<String> = FUNNEL.iter().map(|e| format!("event = {}", quote(e))).collect();
    let names: Vec<String> = FUNNEL.iter().map(|e| quote(e)).collect();
    let funnel = |actor: &str, join: &str| NativeQuestion {
        sql: format!(
            "SELECT '' AS label, toFloat64(countIf(level = 3)) AS v FROM \
             (SELECT {actor} AS actor, windowFunnel(1209600)(time, {steps}) AS level FROM {events} {join} \
              WHERE {range} AND event IN ({names}) GROUP BY actor)",
            steps = steps.join(", "),
            names = names.join(", ")
        ),
        label: "",
        functions: "windowFunnel",
    };
    let (start, back) = (quote(FUNNEL[0]), quote(RETURN_EVENT));
    vec![
        NativeQuestion {
            sql: format!(
                "SELECT '' AS label, toFloat64(sum(u)) AS v FROM (SELECT toDate(time, 'UTC') AS d, uniqExact(company) AS u \
                 FROM {events} ARRAY JOIN companies AS company WHERE {range} GROUP BY d)"
            ),
            label: "",
            functions: "uniqExact per day",
        },
        funnel("company", "ARRAY JOIN companies AS company"),
        funnel("person", ""),
        NativeQuestion {
            sql: format!(
                "SELECT '' AS label, toFloat64(sum(arrayCount((w, c) -> w > c, weeks, arrayResize([cohort], length(weeks), cohort)))) AS v FROM \
                 (SELECT company, minIf(ts, event = {start}) AS first, toMonday(toDate(minIf(time, event = {start}), 'UTC')) AS cohort, \
                  groupUniqArrayIf(toMonday(toDate(time, 'UTC')), event = {back} AND {range}) AS weeks \
                  FROM {events} ARRAY JOIN companies AS company WHERE ts < {to} AND event IN ({start}, {back}) \
                  GROUP BY company HAVING countIf(event = {start}) > 0 AND first >= {from})"
            ),
            label: "",
            // 18.16 lambdas cannot capture a subquery's column: the cohort travels as a second array.
            functions: "minIf, groupUniqArrayIf, arrayCount",
        },
        NativeQuestion {
            sql: format!(
                "SELECT '' AS label, toFloat64(sum(days * companies)) AS v FROM \
                 (SELECT days, count() AS companies FROM \
                  (SELECT company, uniqExact(toDate(time, 'UTC')) AS days \
                   FROM {events} ARRAY JOIN companies AS company WHERE {range} AND event = {back} GROUP BY company) \
                  GROUP BY days)"
            ),
            label: "",
            // Stickiness is a histogram: companies per number of active days (the answer sums it).
            functions: "uniqExact of days per company, then companies per count",
        },
        NativeQuestion {
            sql: format!(
                "SELECT plan AS label, toFloat64(sum(n)) AS v FROM \
                 (SELECT plan, d, count() AS n FROM \
                  (SELECT company, toDate(time, 'UTC') AS d FROM {events} ARRAY JOIN companies AS company \
                   WHERE {range} AND event = 'Dashboard Viewed') AS viewed ANY LEFT JOIN {companies} USING company \
                  GROUP BY plan, d) GROUP BY plan"
            ),
            label: "enterprise",
            // A trend: per plan and day, as troupe answers it (the answer sums the days).
            functions: "JOIN + GROUP BY plan, day",
        },
        NativeQuestion {
            // Each company's events once per day it entered on, the entry step held to that day.
            sql: format!(
                "SELECT '' AS label, toFloat64(countIf(level = 3)) AS v FROM \
                 (SELECT company, d, windowFunnel(1209600)(time, {s0} AND toDate(time, 'UTC') = d, {s1}, {s2}) AS level \
                  FROM (SELECT company, time, event FROM {events} ARRAY JOIN companies AS company \
                        WHERE {range} AND event IN ({names})) AS e \
                  ALL INNER JOIN (SELECT DISTINCT company, toDate(time, 'UTC') AS d FROM {events} \
                                  ARRAY JOIN companies AS company WHERE {range} AND event = {f0}) AS entries USING company \
                  GROUP BY company, d)",
                s0 = steps[0],
                s1 = steps[1],
                s2 = steps[2],
                f0 = quote(FUNNEL[0]),
                names = names.join(", ")
            ),
            label: "",
            functions: "windowFunnel per company and day of entry (JOIN on the entry days)",
        },
        NativeQuestion {
            // 18.16 lambdas cannot capture a column: the previous step travels as a second array.
            sql: format!(
                "SELECT '' AS label, toFloat64(sum(least(length(steps), 4) - 1)) AS v FROM \
                 (SELECT arrayFilter((x, p) -> x != p, tail, arrayPushFront(arrayPopBack(tail), '')) AS steps FROM \
                  (SELECT arraySlice(names, indexOf(names, {f0})) AS tail FROM \
                   (SELECT arrayMap(x -> x.2, arraySort(groupArray((ts, event)))) AS names \
                    FROM {events} ARRAY JOIN companies AS company WHERE {range} GROUP BY company) \
                   WHERE has(names, {f0})))",
                f0 = quote(FUNNEL[0])
            ),
            label: "",
            functions: "groupArray, arraySort, arraySlice, arrayFilter",
        },
    ]
}

#[derive(Deserialize)]
struct Row {
    label: String,
    v: f64,
}

/// What the references are compared with: troupe's rows on the embedded store (as printed), and
/// troupe's on its ClickHouse store when the run had one.
pub struct Troupe<'a> {
    pub embedded: &'a [Value],
    pub on_clickhouse: Option<&'a [Value]>,
}

/// Time the native questions on every reference asked for, each beside troupe's answers, then
/// one table of troupe beside every reference (and DuckDB's plain SQL). `None` when no
/// reference could run (each reason printed).
pub async fn reference(
    asked: &[NativeReferences],
    target: Option<&str>,
    shape: Shape,
    (store, project): (&DuckStore, u32),
    troupe: Troupe<'_>,
    runs: usize,
) -> Result<Option<Value>> {
    let mut references = Vec::new();
    let mut columns: Vec<(String, Vec<Option<f64>>)> = Vec::new();
    for place in wanted(asked, target) {
        let server = match Server::open(place, shape).await {
            Ok(server) => server,
            Err(e) => {
                let what = match place {
                    Where::Local(engine) => engine.name().to_string(),
                    Where::Url(url) => url.to_string(),
                };
                println!(
                    "ClickHouse native reference on {what}: skipped — {e:#} (scripts/setup-test-deps installs \
                     clickhouse-server and chdb-core; --references picks which run)"
                );
                continue;
            }
        };
        println!("ClickHouse native reference on {}: copying the events…", server.described);
        let copy_seconds = load(&server.http, store, project, shape.events).await?;
        if let Some(s) = copy_seconds {
            println!("copied {} events into a plain MergeTree table in {s:.1} s", shape.events);
        }
        // troupe on ClickHouse beside the reference of the same place only.
        let same_place = match (place, target) {
            (Where::Local(engine), Some(t)) => super::clickhouse::local_engine(t) == Some(engine),
            (Where::Url(url), Some(t)) => url == t,
            (_, None) => false,
        };
        let on_clickhouse = troupe.on_clickhouse.filter(|_| same_place);
        let mut schemas = vec![Schema::Plain];
        if server.tunable {
            schemas.push(Schema::Tuned);
        }
        for schema in schemas {
            let copy_seconds = match schema {
                Schema::Plain => copy_seconds,
                Schema::Tuned => {
                    let seconds = load_tuned(&server.http, shape.events).await?;
                    if let Some(s) = seconds {
                        println!("copied them into the tuned schema in {s:.1} s");
                    }
                    seconds
                }
            };
            println!("ClickHouse {} ({}):", server.version, schema.name());
            let rows = time_schema(&server, schema, shape, (troupe.embedded, on_clickhouse), runs).await?;
            let label = match schema {
                Schema::Plain => format!("CH {}", server.version),
                Schema::Tuned => format!("CH {} tuned", server.version),
            };
            let warm = troupe
                .embedded
                .iter()
                .map(|e| rows.iter().find(|r| r["question"] == e["question"]).and_then(|r| r["warm_ms"].as_f64()))
                .collect();
            columns.push((label.clone(), warm));
            references.push(json!({
                "reference": label, "where": server.described, "schema": schema.name(),
                "copy_seconds": copy_seconds, "questions": rows,
            }));
        }
    }
    if references.is_empty() {
        return Ok(None);
    }
    let summary = summary(troupe.embedded, &columns);
    Ok(Some(json!({"references": references, "summary": summary})))
}

/// One table: troupe's warm time beside DuckDB's plain SQL and every ClickHouse reference, the
/// best reference and troupe's ratio to it (issue 25's target: ≤ 0.7).
fn summary(embedded: &[Value], columns: &[(String, Vec<Option<f64>>)]) -> Vec<Value> {
    let or_dash = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.1}"));
    print!("\nevery reference, warm ms:\n{:<40} {:>9} {:>11}", "question", "troupe", "DuckDB SQL");
    for (label, _) in columns {
        print!(" {label:>14}");
    }
    println!(" {:>16} {:>8}", "best reference", "ratio");
    let mut out = Vec::new();
    for (q, e) in embedded.iter().enumerate() {
        let troupe = e["warm_ms"].as_f64().unwrap_or(f64::NAN);
        let mut refs: Vec<(String, f64)> = Vec::new();
        refs.extend(e["plain_sql_ms"].as_f64().map(|v| ("DuckDB SQL".to_string(), v)));
        refs.extend(columns.iter().filter_map(|(label, warm)| Some((label.clone(), (*warm.get(q)?)?))));
        let best = refs.iter().min_by(|a, b| a.1.total_cmp(&b.1)).cloned();
        print!(
            "{:<40} {:>9.1} {:>11}",
            e["question"].as_str().unwrap_or_default(),
            troupe,
            or_dash(e["plain_sql_ms"].as_f64())
        );
        for (_, warm) in columns {
            print!(" {:>14}", or_dash(warm.get(q).copied().flatten()));
        }
        let ratio = best.as_ref().map(|(_, ms)| troupe / ms);
        println!(
            " {:>16} {:>8}",
            best.as_ref().map_or("-".to_string(), |(label, _)| label.clone()),
            ratio.map_or("-".to_string(), |r| format!("{r:.2}"))
        );
        out.push(json!({
            "question": e["question"], "troupe_warm_ms": troupe,
            "references_warm_ms": refs.iter().map(|(l, v)| (l.clone(), json!(v))).collect::<serde_json::Map<_, _>>(),
            "best_reference": best.as_ref().map(|(l, _)| l.clone()), "ratio_troupe_to_best": ratio,
        }));
    }
    out
}

/// The questions on one schema of a server, each printed beside troupe's answer.
async fn time_schema(
    server: &Server,
    schema: Schema,
    shape: Shape,
    (embedded, on_clickhouse): (&[Value], Option<&[Value]>),
    runs: usize,
) -> Result<Vec<Value>> {
    println!(
        "{:<40} {:>10} {:>10} {:>10} {:>8} {:>12} {:>8}  answers (native / troupe)",
        "question", "cold ms", "native ms", "troupe ms", "ratio", "troupe-CH ms", "ratio"
    );
    let mut out = Vec::new();
    // The native questions come in the order of troupe's; those troupe did not run are skipped.
    let names = super::questions::all(shape, 0, 0)?.into_iter().map(|q| q.name);
    for (q, name) in questions(shape, schema).iter().zip(names) {
        let Some(e) = embedded.iter().find(|e| e["question"] == name) else { continue };
        let (cold, warm, answer) = time(&server.http, q, runs).await?;
        let troupe_ms = e["warm_ms"].as_f64().unwrap_or(f64::NAN);
        let troupe_answer = e["answer"].as_f64().unwrap_or(f64::NAN);
        let ratio = troupe_ms / ms(warm);
        // troupe's own SQL on ClickHouse for the same question, when the run had it here.
        let on_clickhouse_ms =
            on_clickhouse.and_then(|qs| qs.iter().find(|c| c["question"] == name)).and_then(|c| c["warm_ms"].as_f64());
        let clickhouse_ratio = on_clickhouse_ms.map(|t| t / ms(warm));
        let or_dash = |v: Option<f64>, decimals: usize| v.map_or("-".to_string(), |v| format!("{v:.decimals$}"));
        println!(
            "{:<40} {:>10.1} {:>10.1} {:>10.1} {:>8.2} {:>12} {:>8}  {answer} / {troupe_answer}{}",
            name,
            ms(cold),
            ms(warm),
            troupe_ms,
            ratio,
            or_dash(on_clickhouse_ms, 1),
            or_dash(clickhouse_ratio, 2),
            if (answer - troupe_answer).abs() < 1e-6 { " (same)" } else { "" }
        );
        out.push(json!({
            "question": name, "native_functions": q.functions, "cold_ms": ms(cold), "warm_ms": ms(warm),
            "troupe_warm_ms": troupe_ms, "ratio_troupe_to_native": ratio,
            "troupe_on_clickhouse_warm_ms": on_clickhouse_ms,
            "ratio_troupe_on_clickhouse_to_native": clickhouse_ratio,
            "answer": answer, "troupe_answer": troupe_answer,
        }));
    }
    Ok(out)
}

/// The first answer's time, the median of `runs` more, and the answer.
async fn time(http: &Http, q: &NativeQuestion, runs: usize) -> Result<(StdDuration, StdDuration, f64)> {
    let started = Instant::now();
    let rows: Vec<Row> = http.rows(&q.sql).await?;
    let cold = started.elapsed();
    let mut times = Vec::new();
    for _ in 0..runs.max(1) {
        let started = Instant::now();
        http.rows::<Row>(&q.sql).await?;
        times.push(started.elapsed());
    }
    times.sort();
    let answer = rows.iter().find(|r| r.label == q.label).map_or(0.0, |r| r.v);
    Ok((cold, times[times.len() / 2], answer))
}

fn ms(d: StdDuration) -> f64 {
    d.as_secs_f64() * 1000.0
}
