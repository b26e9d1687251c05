//! Running the real `troupe` binary: started on a free loopback port, stopped when dropped.

#![allow(dead_code)]

pub mod proxy;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

pub const SITE: &str = "site_acceptance";
pub const SECRET: &str = "trs_acceptance_secret";

/// How long a server may take to print that it listens (a demo fill included).
const START_TIMEOUT: Duration = Duration::from_secs(120);

pub fn troupe() -> Command {
    Command::new(env!("CARGO_BIN_EXE_troupe"))
}

pub struct Server {
    child: Child,
    pub base: String,
    /// Everything the server printed to stdout before it listened.
    pub banner: Vec<String>,
}

impl Server {
    /// `troupe serve` on 127.0.0.1 with an OS-chosen port, the default project's keys fixed.
    pub fn start(data_dir: &Path, extra_args: &[&str]) -> Server {
        Self::start_with(data_dir, extra_args, "warn", Stdio::inherit())
    }

    /// [`Server::start`] with the server's log (stderr, at `info`) written to `log`.
    pub fn start_logging_to(data_dir: &Path, extra_args: &[&str], log: &Path) -> Server {
        let file = std::fs::File::create(log).expect("log file");
        Self::start_with(data_dir, extra_args, "info", Stdio::from(file))
    }

    fn start_with(data_dir: &Path, extra_args: &[&str], log_level: &str, stderr: Stdio) -> Server {
        let mut child = troupe()
            .args(["serve", "--addr", "127.0.0.1:0", "--log-level", log_level, "--data-dir"])
            .arg(data_dir)
            .args(extra_args)
            .env("TROUPE_DEFAULT_PROJECT_KEY", SITE)
            .env("TROUPE_DEFAULT_SECRET_KEY", SECRET)
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("troupe starts");
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep draining after the test stops listening: a closed pipe would make the
            // server's later prints fail.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut banner = Vec::new();
        let deadline = std::time::Instant::now() + START_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("troupe did not report listening within {START_TIMEOUT:?}; printed {banner:?}");
                }
            };
            if let Some(rest) = line.strip_prefix("troupe listening on ") {
                let base = rest.split_whitespace().next().unwrap_or_default().to_string();
                banner.push(line);
                return Server { child, base, banner };
            }
            banner.push(line);
        }
    }

    /// The server's process id (to read its memory from /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// SIGKILL: no shutdown, no checkpoint.
    pub fn kill_9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        self.child.wait().expect("troupe exits")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

pub async fn get(server: &Server, path: &str) -> serde_json::Value {
    let response =
        reqwest::Client::new().get(server.url(path)).bearer_auth(SECRET).send().await.expect("troupe answers");
    assert!(response.status().is_success(), "GET {path}: {}", response.status());
    response.json().await.expect("JSON")
}

pub async fn status_of(server: &Server, path: &str) -> u16 {
    reqwest::Client::new().get(server.url(path)).bearer_auth(SECRET).send().await.expect("answers").status().as_u16()
}

/// `tests/acceptance/<script>`. Read at run time (cargo sets `CARGO_MANIFEST_DIR` for tests): a
/// test binary built from another checkout sharing the target dir must not point at its files.
fn acceptance_script(script: &str) -> String {
    let dir = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| env!("CARGO_MANIFEST_DIR").to_string());
    format!("{dir}/tests/acceptance/{script}")
}

/// Run `tests/acceptance/<script>` with the test venv's Python; panics with its output on failure.
pub async fn run_flow(script: &str, args: &[&str]) -> String {
    let python = std::env::var("TROUPE_TEST_PYTHON").unwrap_or_else(|_| {
        panic!("TROUPE_TEST_PYTHON is not set: run ./scripts/test, which installs the real clients into a venv")
    });
    let path = acceptance_script(script);
    let output = tokio::process::Command::new(python).arg(path).args(args).output().await.expect("python runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// Run `tests/acceptance/<script>` with node, the real npm clients from the test cache on NODE_PATH.
pub async fn run_node_flow(script: &str, args: &[&str]) -> String {
    let modules = std::env::var("TROUPE_TEST_NODE_MODULES").unwrap_or_else(|_| {
        panic!("TROUPE_TEST_NODE_MODULES is not set: run ./scripts/test, which installs the real npm clients")
    });
    let path = acceptance_script(script);
    let output = tokio::process::Command::new("node")
        .arg(path)
        .args(args)
        .env("NODE_PATH", modules)
        .output()
        .await
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{script} failed:\n{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    stdout
}

/// How a flow's requests reach troupe.
#[derive(Debug, Clone, Copy)]
pub enum Route {
    Direct,
    /// Through a [`proxy::FaultProxy`] that must fail at least this many stored requests.
    Through(proxy::Fault, usize),
}

/// A troupe server in a temp data dir after one acceptance flow ran against it.
pub struct Session {
    pub server: Server,
    /// What the flow printed.
    pub stdout: String,
    _dir: tempfile::TempDir,
}

impl Session {
    pub fn stop(self) -> std::process::ExitStatus {
        self.server.stop()
    }
}

/// Start troupe, run `tests/acceptance/<script>` (`.py` with Python, else node) against it with
/// the default project's key and `extra_args`, directly or through a fault proxy.
pub async fn session(script: &str, route: Route, extra_args: &[&str]) -> Session {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &[]);
    let proxy = match route {
        Route::Direct => None,
        Route::Through(fault, _) => Some(proxy::FaultProxy::with_fault(&server.base, fault).await),
    };
    let base = proxy.as_ref().map_or(server.base.clone(), |p| p.base.clone());
    let mut args = vec![base.as_str(), SITE];
    args.extend_from_slice(extra_args);
    let stdout =
        if script.ends_with(".py") { run_flow(script, &args).await } else { run_node_flow(script, &args).await };
    if let (Some(proxy), Route::Through(_, at_least)) = (&proxy, route) {
        let failed = proxy.failed();
        assert!(failed >= at_least, "the proxy failed {failed} stored requests, expected at least {at_least}");
    }
    Session { server, stdout, _dir: dir }
}

/// (event name, attribution) of each event in a profile's `recent_events`, newest first.
pub fn names_and_groups(events: &serde_json::Value) -> Vec<(String, serde_json::Value)> {
    events
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| (e["event"].as_str().unwrap_or_default().to_string(), e["groups"].clone()))
        .collect()
}

pub async fn post_query(server: &Server, query: serde_json::Value) -> serde_json::Value {
    post(server, "/api/projects/default/query", query).await
}

/// POST JSON with the default project's secret key; the JSON answer, which must be a success.
pub async fn post(server: &Server, path: &str, body: serde_json::Value) -> serde_json::Value {
    let response = reqwest::Client::new()
        .post(server.url(path))
        .bearer_auth(SECRET)
        .json(&body)
        .send()
        .await
        .expect("troupe answers");
    assert!(response.status().is_success(), "POST {path} {body}: {}", response.status());
    response.json().await.expect("JSON")
}

/// The insight every protocol's session answers alike, whichever client sent it: one company
/// signed in (distinct companies over yesterday and today, so a session across midnight counts
/// the same).
pub async fn companies_signed_in(server: &Server) -> f64 {
    let query = serde_json::json!({
        "kind": "trends", "count_by": {"group_type": "company"}, "date_range": {"from": "-1d"},
        "series": [{"event": "Signed In", "math": "unique"}]
    });
    let answer = post_query(server, query).await;
    answer["series"][0]["aggregated_value"].as_f64().unwrap_or(-1.0)
}

/// Users going from "Signed In" to "Report Exported", counted through identity merges.
pub async fn sign_in_to_export(server: &Server) -> Vec<u64> {
    let query = serde_json::json!({
        "kind": "funnel", "date_range": {"from": "-1d"},
        "steps": [{"event": "Signed In"}, {"event": "Report Exported"}]
    });
    let answer = post_query(server, query).await;
    answer["steps"].as_array().into_iter().flatten().map(|s| s["count"].as_u64().unwrap_or(0)).collect()
}

/// A count as the dashboard writes it (en-US thousands separators).
pub fn fmt_count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A dashboard flow in headless Chromium (`tests/acceptance/<script>`, given the server's URL and
/// a screenshot folder `<target>/tmp/<shots>/`, emptied first): what it read, from its
/// `RESULT {"name": value}` lines, and where its screenshots are.
pub async fn browser_flow(
    server: &Server,
    script: &str,
    shots: &str,
) -> (std::collections::BTreeMap<String, serde_json::Value>, std::path::PathBuf) {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(shots);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    let stdout = run_node_flow(script, &[&server.base, &dir.display().to_string()]).await;
    println!("screenshots: {}", dir.display());
    (results(&stdout), dir)
}

/// A browser flow given its own arguments: what it read, from its `RESULT` lines.
pub async fn browser_flow_with(script: &str, args: &[&str]) -> std::collections::BTreeMap<String, serde_json::Value> {
    let stdout = run_node_flow(script, args).await;
    results(&stdout)
}

fn results(stdout: &str) -> std::collections::BTreeMap<String, serde_json::Value> {
    stdout
        .lines()
        .filter_map(|l| l.strip_prefix("RESULT "))
        .filter_map(|l| serde_json::from_str::<std::collections::BTreeMap<String, serde_json::Value>>(l).ok())
        .flatten()
        .collect()
}

/// A customer's site on another origin: `/` and `/other` load troupe's `/sdk.js` from `troupe`
/// and call `troupe.init` with the test project's key (`?flush=<ms>` sets the flush interval).
pub async fn sdk_site(troupe: &str) -> (String, tokio::task::JoinHandle<()>) {
    use axum::extract::Query;
    use axum::response::Html;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("site binds");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let troupe = troupe.to_string();
    let page = move |Query(q): Query<std::collections::HashMap<String, String>>| {
        let troupe = troupe.clone();
        async move {
            let flush = q.get("flush").and_then(|f| f.parse::<u64>().ok()).unwrap_or(1000);
            Html(format!(
                "<!doctype html><html><head><title>Acme app</title><script src=\"{troupe}/sdk.js\"></script></head>\
                 <body><p>Acme</p><script>troupe.init('{SITE}', {{ host: '{troupe}', flushInterval: {flush} }});</script></body></html>"
            ))
        }
    };
    let app =
        axum::Router::new().route("/", axum::routing::get(page.clone())).route("/other", axum::routing::get(page));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, task)
}
