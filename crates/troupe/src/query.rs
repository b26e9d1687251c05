//! `troupe query`: answer an insight question from the command line, against the data directory
//! (server stopped) or a running server (`--server`), as JSON or as a table.

use std::io::Read;

use anyhow::{anyhow, bail, Context, Result};
use chrono::Utc;
use serde_json::Value;
use troupe_query::result::{
    FunnelResult, LifecycleResult, PathsResult, RetentionResult, StickinessResult, TrendsResult,
};
use troupe_query::{Insight, InsightResult};
use troupe_store::settings::{self, GeneralSettings, GENERAL_SETTINGS_ID};

use crate::config::{QueryArgs, QueryFormat};

pub async fn run(args: QueryArgs) -> Result<()> {
    // RUST_LOG=troupe_query=debug,troupe_duckdb=debug: where the question's time goes.
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
    }
    let text = read_query(&args.query)?;
    let value: serde_json::Value = serde_json::from_str(&text).context("the query is not JSON")?;
    let insight: Insight = troupe_query::spec::from_json(value).context("the query is not a valid insight")?;
    let result = match &args.server {
        Some(server) => ask_server(server, &args, &insight).await?,
        None => ask_store(&args, &insight).await?,
    };
    match args.format {
        QueryFormat::Json => println!("{}", serde_json::to_string_pretty(&result)?),
        QueryFormat::Table => print!("{}", table(&result)),
    }
    Ok(())
}

/// The argument is inline JSON, `-` for standard input, or a file.
fn read_query(arg: &str) -> Result<String> {
    if arg.trim_start().starts_with('{') {
        return Ok(arg.to_string());
    }
    if arg == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("cannot read the query from standard input")?;
        return Ok(text);
    }
    std::fs::read_to_string(arg).with_context(|| format!("cannot read the query file {arg}"))
}

async fn ask_store(args: &QueryArgs, insight: &Insight) -> Result<InsightResult> {
    let store = args.store.open_read_only().await.map_err(|e| {
        anyhow!("{e:#}\n(to ask a running server instead: --server http://127.0.0.1:8000 --secret-key …)")
    })?;
    let project = store
        .projects()
        .await?
        .into_iter()
        .find(|p| p.name == args.project)
        .ok_or_else(|| anyhow!("no project named {:?} ({})", args.project, args.store.describe()))?;
    let now = args.now.unwrap_or_else(Utc::now);
    // As the server does: days are the project's unless the question names a timezone.
    let mut insight = insight.clone();
    if insight.common().timezone.is_none() {
        let general: GeneralSettings = settings::load(store.as_ref(), project.id, GENERAL_SETTINGS_ID).await?;
        insight.common_mut().timezone = Some(general.timezone);
    }
    Ok(troupe_query::run(store.as_ref(), project.id, &insight, now).await?)
}

async fn ask_server(server: &str, args: &QueryArgs, insight: &Insight) -> Result<InsightResult> {
    let key =
        args.secret_key.as_deref().ok_or_else(|| anyhow!("--server needs --secret-key (or TROUPE_SECRET_KEY)"))?;
    let mut url = format!("{}/api/projects/{}/query", server.trim_end_matches('/'), args.project);
    if let Some(now) = args.now {
        url.push_str(&format!("?now={}", now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)));
    }
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(key)
        .json(insight)
        .send()
        .await
        .with_context(|| format!("cannot reach {server}"))?;
    let status = response.status();
    let body: Value = response.json().await.context("the server's answer is not JSON")?;
    if !status.is_success() {
        bail!("{status}: {}", body.get("error").and_then(Value::as_str).unwrap_or("(no message)"));
    }
    serde_json::from_value(body).map_err(|e| anyhow!("unexpected answer from the server: {e}"))
}

fn table(result: &InsightResult) -> String {
    match result {
        InsightResult::Trends(r) => trends_table(r),
        InsightResult::Funnel(r) => funnel_table(r),
        InsightResult::Retention(r) => retention_table(r),
        InsightResult::Stickiness(r) => stickiness_table(r),
        InsightResult::Lifecycle(r) => lifecycle_table(r),
        InsightResult::Paths(r) => paths_table(r),
    }
}

fn render(header: Vec<String>, rows: Vec<Vec<String>>) -> String {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r.get(c).map_or(0, String::len)).chain([header[c].len()]).max().unwrap_or(0))
        .collect();
    let line = |cells: &[String]| {
        let cells: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect();
        format!("{}\n", cells.join("  ").trim_end())
    };
    let mut out = line(&header);
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}

fn number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn line_name(label: &str, breakdown: &Option<String>, compare: Option<&str>) -> String {
    let mut name = label.to_string();
    if let Some(b) = breakdown {
        name.push_str(&format!(" [{b}]"));
    }
    if let Some(c) = compare {
        name.push_str(&format!(" ({c})"));
    }
    name
}

fn trends_table(r: &TrendsResult) -> String {
    let mut header = vec!["bucket".to_string()];
    header.extend(r.series.iter().map(|l| line_name(&l.label, &l.breakdown_value, l.compare.as_deref())));
    let mut rows: Vec<Vec<String>> = r
        .buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let mut row = vec![b.clone()];
            row.extend(r.series.iter().map(|l| l.data.get(i).map_or(String::new(), |x| number(*x))));
            row
        })
        .collect();
    let mut total = vec!["whole range".to_string()];
    total.extend(r.series.iter().map(|l| number(l.aggregated_value)));
    rows.push(total);
    render(header, rows)
}

fn funnel_table(r: &FunnelResult) -> String {
    let header = ["breakdown", "step", "event", "count", "from first", "from previous", "dropped", "median time"];
    let mut rows = Vec::new();
    let mut add = |breakdown: &str, steps: &[troupe_query::result::FunnelStep]| {
        for s in steps {
            rows.push(vec![
                breakdown.to_string(),
                (s.index + 1).to_string(),
                s.name.clone(),
                s.count.to_string(),
                format!("{:.1}%", s.conversion_from_first * 100.0),
                format!("{:.1}%", s.conversion_from_previous * 100.0),
                s.dropped.to_string(),
                s.median_seconds.map_or(String::new(), |m| format!("{m:.0}s")),
            ]);
        }
    };
    add("all", &r.steps);
    for b in &r.breakdowns {
        add(b.breakdown_value.as_deref().unwrap_or("(not set)"), &b.steps);
    }
    let mut out = render(header.iter().map(|h| h.to_string()).collect(), rows);
    if let Some(o) = &r.conversion_over_time {
        out.push_str(&format!(
            "\nconversion from step {} to step {} by interval of entry:\n",
            o.from_step + 1,
            o.to_step + 1
        ));
        let header = ["interval", "breakdown", "entered", "converted", "rate"].map(String::from).to_vec();
        let rows = o
            .lines
            .iter()
            .flat_map(|line| {
                o.buckets.iter().enumerate().map(move |(b, bucket)| {
                    vec![
                        bucket.clone(),
                        line.breakdown_value.clone().unwrap_or_else(|| "all".into()),
                        line.entered[b].to_string(),
                        line.converted[b].to_string(),
                        format!("{:.1}%", line.conversion_rate[b] * 100.0),
                    ]
                })
            })
            .collect();
        out.push_str(&render(header, rows));
    }
    if let Some(t) = &r.time_to_convert {
        out.push_str(&format!("\ntime to convert from step {} to step {}:\n", t.from_step + 1, t.to_step + 1));
        let header = ["from", "to", "actors"].map(String::from).to_vec();
        let rows = t
            .bins
            .iter()
            .map(|b| vec![format!("{:.0}s", b.from_seconds), format!("{:.0}s", b.to_seconds), b.count.to_string()]);
        out.push_str(&render(header, rows.collect()));
    }
    out.push_str(&actors_list(r.actors.as_deref()));
    out
}

fn retention_table(r: &RetentionResult) -> String {
    let periods = r.buckets.len();
    let mut header = vec!["cohort".to_string(), "breakdown".to_string(), "size".to_string()];
    header.extend((0..periods).map(|p| format!("+{p}")));
    let rows = r
        .rows
        .iter()
        .map(|row| {
            let mut cells =
                vec![row.cohort.clone(), row.breakdown_value.clone().unwrap_or_default(), row.size.to_string()];
            cells.extend(row.values.iter().map(|c| format!("{:.0}%", c.percentage)));
            cells
        })
        .chain(r.means.iter().map(|m| {
            let mut cells = vec!["mean".to_string(), m.breakdown_value.clone().unwrap_or_default(), String::new()];
            cells.extend(m.values.iter().map(|c| format!("{:.0}%", c.percentage)));
            cells
        }))
        .collect();
    let mut out = render(header, rows);
    out.push_str(&actors_list(r.actors.as_deref()));
    out
}

fn stickiness_table(r: &StickinessResult) -> String {
    let mut header = vec!["intervals".to_string()];
    header.extend(r.series.iter().map(|l| line_name(&l.label, &l.breakdown_value, None)));
    let rows = r
        .intervals
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut row = vec![n.to_string()];
            row.extend(r.series.iter().map(|l| l.data.get(i).map_or(String::new(), u64::to_string)));
            row
        })
        .collect();
    render(header, rows)
}

fn lifecycle_table(r: &LifecycleResult) -> String {
    let header = ["bucket", "new", "returning", "resurrecting", "dormant"].map(String::from).to_vec();
    let rows = r
        .buckets
        .iter()
        .enumerate()
        .map(|(i, b)| {
            vec![
                b.clone(),
                r.new[i].to_string(),
                r.returning[i].to_string(),
                r.resurrecting[i].to_string(),
                r.dormant[i].to_string(),
            ]
        })
        .collect();
    render(header, rows)
}

fn paths_table(r: &PathsResult) -> String {
    let mut out = format!("{} actors with a path\n", r.actors_with_paths);
    let header = ["step", "from", "to", "actors"].map(String::from).to_vec();
    let rows = r
        .edges
        .iter()
        .map(|e| vec![format!("{} → {}", e.step, e.step + 1), e.source.clone(), e.target.clone(), e.actors.to_string()])
        .collect();
    out.push_str(&render(header, rows));
    out.push_str("\nmost common paths:\n");
    let header = ["actors", "path"].map(String::from).to_vec();
    let rows = r.sequences.iter().map(|s| vec![s.actors.to_string(), s.steps.join(" → ")]).collect();
    out.push_str(&render(header, rows));
    out.push_str(&actors_list(r.actors.as_deref()));
    out
}

/// The actors a question listed, one a line (nothing when it listed none).
fn actors_list(actors: Option<&[troupe_store::Actor]>) -> String {
    let Some(actors) = actors else { return String::new() };
    let mut out = format!("\nactors ({}):\n", actors.len());
    for a in actors {
        out.push_str(&format!("  {} {}\n", a.key, a.name.as_deref().unwrap_or(&a.distinct_ids.join(", "))));
    }
    out
}
