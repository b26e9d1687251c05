//! The command line: every setting as a flag with a `TROUPE_*` environment variable, defaults
//! shown in `--help`. This is the one place configuration is defined.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use troupe_core::Limits;
use troupe_duckdb::EmbeddedConfig;

#[derive(Debug, Parser)]
#[command(name = "troupe", version, about = "Self-hostable product analytics built around groups")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: ingestion for every supported client, the read API.
    Serve(ServeArgs),
    /// Fill a project with realistic B2B sample data (companies, teams, users, weeks of events).
    Demo(DemoArgs),
    /// Load event exports from PostHog, Mixpanel or Segment (NDJSON or CSV); re-runs skip what is
    /// already loaded (run while the server is stopped).
    Import(ImportArgs),
    /// Answer an insight question (trends, funnel, retention, stickiness, lifecycle) given as
    /// JSON (docs/insights.md), from the data directory or from a running server (--server).
    Query(QueryArgs),
    /// Benchmark: generate a B2B data set, load it, and time the insights beside plain SQL on
    /// the same engine (docs/benchmarks.md).
    Bench(BenchArgs),
    /// Create or upgrade the store's schema (ClickHouse: every node of the URL; the embedded store
    /// migrates itself when opened, this just reports its version).
    Migrate {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Create and list projects (run while the server is stopped).
    Project {
        #[command(subcommand)]
        command: ProjectCommand,
    },
    /// Erase, anonymize or export a person (docs/semantics.md, "Privacy"): in the data directory (server
    /// stopped) or through a running server (--server).
    Person {
        #[command(subcommand)]
        command: PersonCommand,
    },
    /// List, rename and delete a project's group types: in the data directory (server stopped)
    /// or through a running server (--server).
    GroupType {
        #[command(subcommand)]
        command: GroupTypeCommand,
    },
    /// Dashboard accounts: add one (with a role in a project), reset a password, list, remove.
    /// Through the running server when it holds the data directory, else on the store directly.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// A project's keys: named secret keys with a scope and an expiry, and rotation of the
    /// ingestion key with an overlap. Through the running server when there is one.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Copy the embedded store into a new directory while the server runs (consistent: the
    /// state of one instant, every acknowledged write before it).
    Backup {
        /// A new or empty directory for the copy.
        #[arg(long)]
        to: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Put a backup into a new data directory (--data-dir); start the server on it after.
    Restore {
        /// The directory `troupe backup --to` wrote.
        #[arg(long)]
        from: PathBuf,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account: a member of one project with a role, or an instance administrator
    /// (admin of every project). The password is read from standard input with
    /// --password-stdin, or made up and printed.
    Add {
        email: String,
        /// The project the user joins (name or id).
        #[arg(long)]
        project: Option<String>,
        /// viewer, member or admin (default member).
        #[arg(long)]
        role: Option<String>,
        #[arg(long)]
        instance_admin: bool,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set a new password (read with --password-stdin, or made up and printed); the account's
    /// sessions end.
    ResetPassword {
        email: String,
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Remove an account; its sessions end.
    Remove {
        email: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the accounts with their roles.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Make a secret key; it is printed once (only its hash is kept).
    Create {
        #[arg(long, default_value = "default")]
        project: String,
        #[arg(long)]
        name: String,
        /// read (data and saved insights), query (also asks questions), admin (everything).
        #[arg(long)]
        scope: String,
        #[arg(long)]
        expires_in_days: Option<i64>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List the keys (secret keys by name, scope, hint and expiry).
    List {
        #[arg(long, default_value = "default")]
        project: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Revoke a secret key (by id or name) at once.
    Revoke {
        key: String,
        #[arg(long, default_value = "default")]
        project: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Make a new ingestion key; the old one keeps working for --overlap-hours.
    RotateIngestion {
        #[arg(long, default_value = "default")]
        project: String,
        #[arg(long, default_value_t = 168.0)]
        overlap_hours: f64,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum PersonCommand {
    /// Erase a person found by any of its distinct ids or its person id: profile, ids,
    /// memberships, charges and every event of its ids. Repeating it is harmless.
    Erase(PersonArgs),
    /// Anonymize a person: its events stay (counts do not change) under one pseudonym, its
    /// profile and the project's personal fields (privacy settings) are removed.
    Anonymize(PersonArgs),
    /// Write a person's data as one JSON document (profile, ids, memberships, charges, every
    /// event) to --out or standard output.
    Export {
        #[command(flatten)]
        person: PersonArgs,
        /// The file to write (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Args)]
pub struct PersonArgs {
    /// Any distinct id of the person, or its person id.
    pub id: String,
    #[command(flatten)]
    pub target: Target,
}

/// Where an administrative command acts: a project in the data directory (server stopped), or
/// through a running server's API.
#[derive(Debug, Args)]
pub struct Target {
    #[command(flatten)]
    pub store: StoreArgs,
    #[arg(long, default_value = "default")]
    pub project: String,
    /// Go through a running troupe (e.g. http://127.0.0.1:8000) instead of opening the data
    /// directory.
    #[arg(long, env = "TROUPE_SERVER")]
    pub server: Option<String>,
    /// The project's secret key, for --server.
    #[arg(long, env = "TROUPE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum GroupTypeCommand {
    /// List the project's group types with their slots and group counts.
    List(Target),
    /// Rename a group type's key (it keeps its slot, so events keep their attribution).
    Rename {
        from: String,
        to: String,
        #[command(flatten)]
        target: Target,
    },
    /// Delete a group type: its groups, every membership in them and the events' attribution
    /// to it go, and its slot is free for a new type.
    Delete {
        name: String,
        #[command(flatten)]
        target: Target,
    },
}

#[derive(Debug, Args)]
pub struct StoreArgs {
    /// Where the data lives: `embedded` (the default: DuckDB in --data-dir, nothing to install) or
    /// a ClickHouse URL, `clickhouse://user:pass@host:8123/db`, for a cluster
    /// `clickhouse://user:pass@host1:8123,host2:8123/db?cluster=<remote_servers name>`
    /// (docs/clickhouse.md). Run `troupe migrate` with the same URL first.
    #[arg(long = "store", env = "TROUPE_STORE", default_value = "embedded", hide_env_values = true)]
    pub store: String,
    /// ClickHouse with several troupe processes: the base URL of the one that applies writes
    /// (e.g. http://10.0.0.5:8000); this process forwards its writes there and reads ClickHouse
    /// directly. Unset: this process is the writer.
    #[arg(long, env = "TROUPE_WRITER_URL")]
    pub writer_url: Option<String>,
    /// Shared secret between the writer and the processes forwarding to it (`/internal/v1`).
    #[arg(long, env = "TROUPE_INTERNAL_SECRET", hide_env_values = true)]
    pub internal_secret: Option<String>,
    /// Directory of the embedded store; created when missing.
    #[arg(long, env = "TROUPE_DATA_DIR", default_value = "./troupe-data")]
    pub data_dir: PathBuf,
    /// Group types one project may have.
    #[arg(long, env = "TROUPE_MAX_GROUP_TYPES", default_value_t = 10, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub max_group_types: u16,
    /// Seconds within which an identical event without an id is taken as a client retry.
    #[arg(long, env = "TROUPE_DEDUPE_WINDOW_SECS", default_value_t = 30)]
    pub dedupe_window_secs: u32,
}

impl StoreArgs {
    pub fn embedded(&self) -> EmbeddedConfig {
        EmbeddedConfig {
            data_dir: Some(self.data_dir.clone()),
            limits: Limits { max_group_types: usize::from(self.max_group_types), ..Limits::default() },
            dedupe_window: chrono::Duration::seconds(i64::from(self.dedupe_window_secs)),
            release_freed_memory: Some(crate::alloc::release_freed_memory),
            ..EmbeddedConfig::default()
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "TROUPE_ADDR", default_value = "127.0.0.1:8000")]
    pub addr: SocketAddr,
    /// Log filter: error, warn, info, debug, trace, or a tracing directive.
    #[arg(long, env = "TROUPE_LOG", default_value = "info")]
    pub log_level: String,
    /// Log lines as text, or as one JSON object per line (with the request id of the request
    /// being served) for a log collector.
    #[arg(long, env = "TROUPE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Ingestion key of the `default` project when it is created (for scripts and tests).
    #[arg(long = "project-key", env = "TROUPE_DEFAULT_PROJECT_KEY")]
    pub project_key: Option<String>,
    /// Secret key of the `default` project when it is created (for scripts and tests).
    #[arg(long = "secret-key", env = "TROUPE_DEFAULT_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// Fill the `default` project with sample data when it has none.
    #[arg(long)]
    pub demo: bool,
    /// Group type of Segment's `group` calls and `context.groupId` (Segment has one kind of group).
    #[arg(long, env = "TROUPE_SEGMENT_GROUP_TYPE", default_value = "company")]
    pub segment_group_type: String,
    /// Mixpanel group keys, comma-separated: person and event properties with these names are
    /// group memberships and attribution.
    #[arg(long, env = "TROUPE_MIXPANEL_GROUP_KEYS", default_value = "company", value_delimiter = ',')]
    pub mixpanel_group_keys: Vec<String>,
    #[command(flatten)]
    pub rate_limits: RateLimitArgs,
    /// Make first-run setup ask for a one-time token printed at start, even on a loopback
    /// address (troupe behind a reverse proxy). Always on for a non-loopback address.
    #[arg(long, env = "TROUPE_REQUIRE_SETUP_TOKEN")]
    pub require_setup_token: bool,
    /// The bearer key Prometheus sends to scrape `/metrics`; unset, `/metrics` answers only
    /// requests from this machine.
    #[arg(long, env = "TROUPE_METRICS_KEY", hide_env_values = true)]
    pub metrics_key: Option<String>,
    /// On SIGTERM/SIGINT, how long requests under way (batches being written) may take to finish
    /// before the process exits anyway.
    #[arg(long, env = "TROUPE_SHUTDOWN_TIMEOUT_SECS", default_value_t = 30)]
    pub shutdown_timeout_secs: u64,
}

/// Ingestion and sign-in rate limits (token buckets; docs/api.md "Rate limits"). Rates count
/// commands: an event or a profile write is one.
#[derive(Debug, Args)]
pub struct RateLimitArgs {
    /// Turn every rate limit off.
    #[arg(long, env = "TROUPE_NO_RATE_LIMITS")]
    pub no_rate_limits: bool,
    /// Commands per second one project may send, sustained.
    #[arg(long, env = "TROUPE_PROJECT_RATE", default_value_t = 500_000)]
    pub project_rate: u32,
    /// Commands one project may send at once above its rate.
    #[arg(long, env = "TROUPE_PROJECT_BURST", default_value_t = 1_000_000)]
    pub project_burst: u32,
    /// A project's own rate and burst, as NAME=RATE[:BURST] (repeat the flag, or separate with
    /// commas); the burst defaults to twice the rate.
    #[arg(long = "project-rate-for", env = "TROUPE_PROJECT_RATE_FOR", value_delimiter = ',', value_parser = project_rate)]
    pub project_rate_for: Vec<(String, troupe_server::rate_limit::Rate)>,
    /// Commands per second one distinct id may send, sustained (writes with the ingestion key).
    #[arg(long, env = "TROUPE_DISTINCT_ID_RATE", default_value_t = 100)]
    pub distinct_id_rate: u32,
    /// Commands one distinct id may send at once above its rate.
    #[arg(long, env = "TROUPE_DISTINCT_ID_BURST", default_value_t = 1_000)]
    pub distinct_id_burst: u32,
    /// Sign-in and setup attempts per minute from one address (after a burst of 10).
    #[arg(long, env = "TROUPE_SIGN_IN_PER_MINUTE", default_value_t = 10)]
    pub sign_in_per_minute: u32,
}

impl RateLimitArgs {
    pub fn settings(&self) -> troupe_server::rate_limit::RateLimitSettings {
        use troupe_server::rate_limit::{Rate, RateLimitSettings};
        RateLimitSettings {
            enabled: !self.no_rate_limits,
            project: Rate { per_second: self.project_rate, burst: self.project_burst },
            projects: self.project_rate_for.iter().cloned().collect(),
            distinct_id: Rate { per_second: self.distinct_id_rate, burst: self.distinct_id_burst },
            sign_in_per_minute: self.sign_in_per_minute,
        }
    }
}

/// `NAME=RATE[:BURST]`.
fn project_rate(text: &str) -> Result<(String, troupe_server::rate_limit::Rate), String> {
    let (name, rate) = text.split_once('=').ok_or_else(|| format!("'{text}': expected NAME=RATE[:BURST]"))?;
    let number = |s: &str| s.trim().parse::<u32>().map_err(|_| format!("'{text}': '{s}' is not a whole number"));
    let (per_second, burst) = match rate.split_once(':') {
        Some((rate, burst)) => (number(rate)?, number(burst)?),
        None => (number(rate)?, number(rate)?.saturating_mul(2)),
    };
    Ok((name.trim().to_string(), troupe_server::rate_limit::Rate { per_second, burst }))
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Project to fill (created when missing).
    #[arg(long, default_value = "default")]
    pub project: String,
    /// Seed of the generator: the same seed gives the same data.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Number of companies.
    #[arg(long, default_value_t = 24)]
    pub companies: usize,
    /// Days of activity, ending now.
    #[arg(long, default_value_t = 90)]
    pub days: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum ExportSource {
    Posthog,
    Mixpanel,
    Segment,
    /// Amplitude's Export API rows (unzipped NDJSON) or HTTP API events.
    Amplitude,
}

impl From<ExportSource> for troupe_ingest::export::ExportSource {
    fn from(source: ExportSource) -> Self {
        use troupe_ingest::export::ExportSource as Source;
        match source {
            ExportSource::Posthog => Source::Posthog,
            ExportSource::Mixpanel => Source::Mixpanel,
            ExportSource::Segment => Source::Segment,
            ExportSource::Amplitude => Source::Amplitude,
        }
    }
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// Which tool the export comes from: one event (message) per NDJSON line or CSV row, in that
    /// tool's own shape.
    #[arg(long = "from", value_enum)]
    pub source: ExportSource,
    /// Project to load into.
    #[arg(long, default_value = "default")]
    pub project: String,
    /// Load through a running troupe (its import route, e.g. `http://127.0.0.1:8000`) instead of
    /// opening the data directory, which a running server holds. Same rows, same ids, same
    /// deduplication: an import sent twice loads once.
    #[arg(long, env = "TROUPE_SERVER")]
    pub server: Option<String>,
    /// The project's secret key, for `--server`.
    #[arg(long, env = "TROUPE_SECRET_KEY", requires = "server")]
    pub secret_key: Option<String>,
    /// Group type of Segment `group` messages and `context.groupId` (local import; a server uses
    /// its own `--segment-group-type`).
    #[arg(long, default_value = "company")]
    pub segment_group_type: String,
    /// Mixpanel group keys, comma-separated.
    #[arg(long, default_value = "company", value_delimiter = ',')]
    pub mixpanel_group_keys: Vec<String>,
    /// Export files: `.csv` is read as CSV (a header row; `properties.x` columns nest), anything
    /// else as NDJSON.
    #[arg(required = true)]
    pub files: Vec<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum ProjectCommand {
    /// Create a project and print its keys.
    Create {
        name: String,
        #[command(flatten)]
        store: StoreArgs,
        /// Use this ingestion key instead of a random one.
        #[arg(long)]
        ingestion_key: Option<String>,
    },
    /// List projects with their ingestion keys.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum QueryFormat {
    Json,
    Table,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    #[command(flatten)]
    pub store: StoreArgs,
    /// The insight as JSON: inline (`'{"kind": "trends", …}'`), a file, or `-` for standard input.
    pub query: String,
    #[arg(long, default_value = "default")]
    pub project: String,
    /// Answer as of this instant (RFC 3339) instead of now: relative ranges and cohorts'
    /// "last N days" count from it.
    #[arg(long)]
    pub now: Option<chrono::DateTime<chrono::Utc>>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: QueryFormat,
    /// Ask a running troupe (e.g. http://127.0.0.1:8000) instead of opening the data directory.
    #[arg(long, env = "TROUPE_SERVER")]
    pub server: Option<String>,
    /// The project's secret key, for --server.
    #[arg(long, env = "TROUPE_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Events to generate (the standard sizes are 1000000 and 10000000); users = events / 100,
    /// companies = events / 2000.
    #[arg(long, default_value_t = 1_000_000, conflicts_with = "size")]
    pub events: u64,
    /// A standard size instead of --events: `1m` or `10m` (also `100k`).
    #[arg(long, value_parser = parse_size)]
    pub size: Option<u64>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Where generated data sets are kept (one subdirectory per size and seed, reused by later runs).
    #[arg(long, env = "TROUPE_BENCH_DIR", default_value = "./troupe-bench-data")]
    pub data_dir: PathBuf,
    /// Warm runs per question (the median is reported).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
    /// The JSON report.
    #[arg(long, default_value = "bench-report.json")]
    pub out: PathBuf,
    /// Events sent in batches of 500 to a `troupe serve` started for the purpose (0 skips the
    /// ingestion part).
    #[arg(long, default_value_t = 200_000)]
    pub ingest_events: u64,
    /// Single-event requests timed one after another.
    #[arg(long, default_value_t = 2_000)]
    pub ingest_singles: usize,
    /// Also load the data into troupe's ClickHouse store and time the same questions there:
    /// `local` starts Debian's clickhouse-server (18.16) on a free loopback port for the run (its
    /// data is removed after), `local-current` current ClickHouse (PyPI `chdb-core` behind the
    /// tests' HTTP front, with `TROUPE_TEST_PYTHON`), or a `clickhouse://` URL of a server to use (the data set is kept there
    /// and reused, like the embedded one).
    #[arg(long, env = "TROUPE_BENCH_CLICKHOUSE")]
    pub clickhouse: Option<String>,
    /// Also time `troupe import` of the data set as a PostHog NDJSON export (written once into
    /// the data directory, reused by later runs).
    #[arg(long)]
    pub import: bool,
    /// Only the questions whose name contains this text (repeatable), e.g. `--only funnel` while
    /// working on one kind.
    #[arg(long)]
    pub only: Vec<String>,
    /// Threads the questions may use (default: every core), e.g. `--threads 1` to see how a
    /// question scales.
    #[arg(long)]
    pub threads: Option<usize>,
    /// The ClickHouse native references to run (repeatable): `debian` (Debian's
    /// clickhouse-server 18.16 started for the run, the bench's schema), `current` (ClickHouse
    /// 26.x of PyPI `chdb-core`, the bench's schema and the tuned one), `server` (the server a
    /// `--clickhouse` URL names), `none`. Default: all of them.
    #[arg(long, value_enum)]
    pub references: Vec<NativeReferences>,
}

/// Which ClickHouse engines answer the bench's native reference questions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum NativeReferences {
    Debian,
    Current,
    Server,
    None,
}

impl BenchArgs {
    /// Whether `--only` selects the question (every question without `--only`).
    pub fn selects(&self, question: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|text| question.contains(text.as_str()))
    }
}

/// `1m`, `10m`, `100k`, or a plain number of events.
fn parse_size(text: &str) -> Result<u64, String> {
    let lower = text.trim().to_ascii_lowercase();
    let (digits, factor) = match lower.strip_suffix('m') {
        Some(d) => (d, 1_000_000),
        None => match lower.strip_suffix('k') {
            Some(d) => (d, 1_000),
            None => (lower.as_str(), 1),
        },
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{text:?} is not a size: use 1m, 10m, 100k or a number of events"))
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn bench_sizes_read_as_event_counts() {
        assert_eq!(parse_size("10m"), Ok(10_000_000));
        assert_eq!(parse_size("1M"), Ok(1_000_000));
        assert_eq!(parse_size("100k"), Ok(100_000));
        assert_eq!(parse_size("20000"), Ok(20_000));
        assert!(parse_size("ten").is_err_and(|e| e.contains("1m, 10m")));
        assert!(parse_size("0m").is_err());
    }
}
