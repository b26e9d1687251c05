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

/// Rows per insert.
const CHUNK: usize = 200_000;

/// A ClickHouse server to run the references on: the one `--clickhouse` names, or one started
/// for the run when `clickhouse-server` is installed. `Err` says why there is none.
pub struct Server {
    http: Http,
    described: String,
    _local: Option<ClickHouseCluster>,
}

impl Server {
    pub async fn open(target: Option<&str>, shape: Shape) -> Result<Self> {
        let database = format!("troupe_native_{}_{}", shape.events, shape.seed);
        // Without --clickhouse the reference runs on Debian's server, started for the run.
        let (config, local) = match target.map_or(Some(Engine::Debian), super::clickhouse::local_engine) {
            Some(engine) => {
                let server = ClickHouseCluster::start_on(engine, 1)
                    .with_context(|| format!("cannot start {}", engine.name()))?;
                (server.config(&database), Some(server))
            }
            None => (ClickHouseConfig::parse(target.unwrap_or_default()).context("--clickhouse")?, None),
        };
        let described = format!("{} database {}", config.nodes.join(", "), database);
        let node = config.nodes.first().cloned().unwrap_or_default();
        let http = Http::new(ClickHouseConfig { database: database.clone(), ..config })?;
        http.execute_on(&node, &format!("CREATE DATABASE IF NOT EXISTS {database}"), false).await?;
        let version: Vec<Version> = http.rows("SELECT version() AS version").await?;
        let version = version.first().map(|v| v.version.clone()).unwrap_or_default();
        Ok(Server { http, described: format!("clickhouse-server {version}, {described}"), _local: local })
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
    http.execute(
        "CREATE TABLE IF NOT EXISTS native_events (ts Int64, time DateTime, event String, person String, \
         companies Array(String)) ENGINE = MergeTree ORDER BY (event, time)",
    )
    .await?;
    http.execute(
        "CREATE TABLE IF NOT EXISTS native_companies (company String, plan String) ENGINE = MergeTree ORDER BY company",
    )
    .await?;
    #[derive(Deserialize)]
    struct Count {
        n: u64,
    }
    let have: Vec<Count> = http.rows("SELECT count() AS n FROM native_events").await?;
    if have.first().is_some_and(|c| c.n == events) {
        return Ok(None);
    }
    http.execute("TRUNCATE TABLE native_events").await?;
    http.execute("TRUNCATE TABLE native_companies").await?;
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

/// One question in ClickHouse's SQL: rows of `(label, v)`; the answer is the row labelled
/// `label` (the breakdown value asked for) or the single row.
struct NativeQuestion {
    sql: String,
    label: &'static str,
    /// The native functions it uses, for the report.
    functions: &'static str,
}

/// The questions of `super::questions` in the same order.
fn questions(shape: Shape) -> Vec<NativeQuestion> {
    let to = shape.end.timestamp_micros();
    let from = (shape.end - chrono::Duration::days(shape.days)).timestamp_micros();
    let range = format!("ts >= {from} AND ts < {to}");
    let steps: Vec<String> = FUNNEL.iter().map(|e| format!("event = {}", quote(e))).collect();
    let names: Vec<String> = FUNNEL.iter().map(|e| quote(e)).collect();
    let funnel = |actor: &str, join: &str| NativeQuestion {
        sql: format!(
            "SELECT '' AS label, toFloat64(countIf(level = 3)) AS v FROM \
             (SELECT {actor} AS actor, windowFunnel(1209600)(time, {steps}) AS level FROM native_events {join} \
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
                 FROM native_events ARRAY JOIN companies AS company WHERE {range} GROUP BY d)"
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
                  FROM native_events ARRAY JOIN companies AS company WHERE ts < {to} AND event IN ({start}, {back}) \
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
                   FROM native_events ARRAY JOIN companies AS company WHERE {range} AND event = {back} GROUP BY company) \
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
                  (SELECT company, toDate(time, 'UTC') AS d FROM native_events ARRAY JOIN companies AS company \
                   WHERE {range} AND event = 'Dashboard Viewed') AS viewed ANY LEFT JOIN native_companies USING company \
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
                  FROM (SELECT company, time, event FROM native_events ARRAY JOIN companies AS company \
                        WHERE {range} AND event IN ({names})) AS e \
                  ALL INNER JOIN (SELECT DISTINCT company, toDate(time, 'UTC') AS d FROM native_events \
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
                    FROM native_events ARRAY JOIN companies AS company WHERE {range} GROUP BY company) \
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

/// Time the native questions beside troupe's answers: `embedded` (the rows printed for the
/// embedded store) and, when the run had one, `on_clickhouse` (troupe's SQL on ClickHouse, the
/// comparison that says how well troupe pushes a question down). `None` (with the reason
/// printed) when no ClickHouse server is at hand.
pub async fn reference(
    target: Option<&str>,
    shape: Shape,
    store: &DuckStore,
    project: u32,
    (embedded, on_clickhouse): (&[Value], Option<&[Value]>),
    runs: usize,
) -> Result<Option<Value>> {
    let server = match Server::open(target, shape).await {
        Ok(server) => server,
        Err(e) => {
            println!(
                "ClickHouse native reference: skipped — {e:#} (scripts/setup-test-deps installs clickhouse-server; \
                 or pass --clickhouse clickhouse://…)"
            );
            return Ok(None);
        }
    };
    println!("ClickHouse native reference on {}: copying the events…", server.described);
    let load_seconds = load(&server.http, store, project, shape.events).await?;
    if let Some(s) = load_seconds {
        println!("copied {} events into a plain MergeTree table in {s:.1} s", shape.events);
    }
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>8} {:>12} {:>8}  answers (native / troupe)",
        "question", "cold ms", "native ms", "troupe ms", "ratio", "troupe-CH ms", "ratio"
    );
    let mut out = Vec::new();
    // The native questions come in the order of troupe's; those troupe did not run are skipped.
    let names = super::questions::all(shape, project, 0)?.into_iter().map(|q| q.name);
    for (q, name) in questions(shape).iter().zip(names) {
        let Some(e) = embedded.iter().find(|e| e["question"] == name) else { continue };
        let (cold, warm, answer) = time(&server.http, q, runs).await?;
        let troupe_ms = e["warm_ms"].as_f64().unwrap_or(f64::NAN);
        let troupe_answer = e["answer"].as_f64().unwrap_or(f64::NAN);
        let ratio = troupe_ms / ms(warm);
        // troupe's own SQL on ClickHouse for the same question, when the run had it.
        let on_clickhouse_ms =
            on_clickhouse.and_then(|qs| qs.iter().find(|c| c["question"] == name)).and_then(|c| c["warm_ms"].as_f64());
        let clickhouse_ratio = on_clickhouse_ms.map(|t| t / ms(warm));
        let or_dash = |v: Option<f64>, decimals: usize| v.map_or("-".to_string(), |v| format!("{v:.decimals$}"));
        println!(
            "{:<34} {:>10.1} {:>10.1} {:>10.1} {:>8.2} {:>12} {:>8}  {answer} / {troupe_answer}{}",
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
    Ok(Some(json!({"where": server.described, "copy_seconds": load_seconds, "questions": out})))
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
