//! Real ClickHouse servers for tests and the benchmark, on free loopback ports with data
//! directories of their own, stopped when dropped — and by a watchdog when the process that
//! started them is gone, so a crashed test run leaves nothing behind. Two engines:
//!
//! - [`Engine::Debian`]: Debian's `clickhouse-server` (18.16) from a minimal config of ours; one
//!   or several servers, each a shard of [`CLUSTER`].
//! - [`Engine::Current`]: current ClickHouse (26.x), the in-process engine of PyPI `chdb-core`
//!   behind a small ClickHouse-HTTP front (`testing/chdb_front.py`, which says what it does not
//!   cover: one node, no Distributed tables, no `system.query_log`).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{ClickHouseConfig, ClickHouseError};

/// The `remote_servers` name of clusters started here.
pub const CLUSTER: &str = "troupe_test";

/// The writer cache of test databases: none, so the writer forgets everything between
/// batches and every test also checks that what it looks up in ClickHouse is what it would have
/// held (the suites compare the answers with the embedded store's).
pub const TEST_WRITER_CACHE: usize = 0;

/// Which ClickHouse the tests run on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// Debian's `clickhouse-server` package (18.16).
    Debian,
    /// ClickHouse 26.x of PyPI `chdb-core` behind `testing/chdb_front.py`.
    Current,
}

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::Debian, Engine::Current];

    pub fn name(self) -> &'static str {
        match self {
            Engine::Debian => "ClickHouse 18.16 (Debian)",
            Engine::Current => "ClickHouse 26.x (chdb-core)",
        }
    }
}

/// One running server.
pub struct ClickHouseServer {
    child: Child,
    pub engine: Engine,
    pub http_port: u16,
    /// The native protocol's port (Debian's server only; the front speaks HTTP alone).
    pub tcp_port: Option<u16>,
    pub dir: PathBuf,
}

/// Servers started together; with several, each is one shard of [`CLUSTER`].
pub struct ClickHouseCluster {
    pub servers: Vec<ClickHouseServer>,
}

/// How several Debian servers form [`CLUSTER`].
#[derive(Clone, Copy)]
enum Layout {
    /// Each server one shard.
    Shards,
    /// The servers the replicas of one shard.
    Replicas,
}

static DATABASES: AtomicU32 = AtomicU32::new(0);

impl ClickHouseCluster {
    /// Start `shards` of Debian's servers (1 = a single server, no cluster).
    pub fn start(shards: usize) -> Result<Self, ClickHouseError> {
        Self::start_on(Engine::Debian, shards)
    }

    /// Start `shards` servers of `engine` (the current engine serves one node only).
    pub fn start_on(engine: Engine, shards: usize) -> Result<Self, ClickHouseError> {
        if engine == Engine::Current {
            if shards != 1 {
                return Err(ClickHouseError::Config(
                    "the chdb front is one node: clusters are tested on Debian's server only".into(),
                ));
            }
            let mut server = ClickHouseServer::start_front(free_port()?)?;
            server.wait_ready()?;
            return Ok(ClickHouseCluster { servers: vec![server] });
        }
        Self::start_debian(Layout::Shards, shards)
    }

    /// Start `replicas` Debian servers as the replicas of one shard of [`CLUSTER`], with
    /// `internal_replication` off: the Distributed table writes every row to each replica itself
    /// (no ZooKeeper needed) and reads from any replica that answers.
    pub fn start_replicas(replicas: usize) -> Result<Self, ClickHouseError> {
        Self::start_debian(Layout::Replicas, replicas)
    }

    fn start_debian(layout: Layout, nodes: usize) -> Result<Self, ClickHouseError> {
        let binary = std::env::var("TROUPE_CLICKHOUSE_SERVER").unwrap_or_else(|_| "clickhouse-server".into());
        let ports: Vec<(u16, u16)> =
            (0..nodes).map(|_| Ok((free_port()?, free_port()?))).collect::<Result<_, ClickHouseError>>()?;
        let replica = |tcp: &u16| format!("<replica><host>127.0.0.1</host><port>{tcp}</port></replica>");
        let remote = match layout {
            _ if nodes == 1 => String::new(),
            Layout::Shards => {
                let shards: String = ports.iter().map(|(_, tcp)| format!("<shard>{}</shard>", replica(tcp))).collect();
                format!("<remote_servers><{CLUSTER}>{shards}</{CLUSTER}></remote_servers>")
            }
            Layout::Replicas => {
                let replicas: String = ports.iter().map(|(_, tcp)| replica(tcp)).collect();
                format!(
                    "<remote_servers><{CLUSTER}><shard><internal_replication>false</internal_replication>\
                     {replicas}</shard></{CLUSTER}></remote_servers>"
                )
            }
        };
        let mut servers = Vec::new();
        for (http_port, tcp_port) in ports {
            servers.push(ClickHouseServer::start(&binary, http_port, tcp_port, &remote)?);
        }
        for server in &mut servers {
            server.wait_ready()?;
        }
        Ok(ClickHouseCluster { servers })
    }

    /// A `clickhouse://` config for a database of its own (created by migrating).
    pub fn fresh_database(&self) -> ClickHouseConfig {
        let n = DATABASES.fetch_add(1, Ordering::Relaxed);
        let db = format!("troupe_{}_{n}", std::process::id());
        self.config(&db)
    }

    pub fn config(&self, database: &str) -> ClickHouseConfig {
        ClickHouseConfig {
            nodes: self.servers.iter().map(|s| format!("http://127.0.0.1:{}", s.http_port)).collect(),
            user: "default".into(),
            password: String::new(),
            database: database.into(),
            cluster: (self.servers.len() > 1).then(|| CLUSTER.to_string()),
            replicated: false,
            writer_cache: TEST_WRITER_CACHE,
        }
    }

    /// A `clickhouse://` URL signing in as [`PASSWORD_USER`] with [`TEST_PASSWORD`] (for tests
    /// that no password leaks into replies or logs).
    pub fn url_with_password(&self, database: &str) -> String {
        self.url(database).replacen("default:@", &format!("{PASSWORD_USER}:{TEST_PASSWORD}@"), 1)
    }

    /// The same as a `clickhouse://` URL (for `troupe serve --store`).
    pub fn url(&self, database: &str) -> String {
        self.url_with_writer_cache(database, TEST_WRITER_CACHE)
    }

    /// The same with a writer cache of its own (the bench's writer runs with the default).
    pub fn url_with_writer_cache(&self, database: &str, writer_cache: usize) -> String {
        let hosts: Vec<String> = self.servers.iter().map(|s| format!("127.0.0.1:{}", s.http_port)).collect();
        let cluster = if self.servers.len() > 1 { format!("&cluster={CLUSTER}") } else { String::new() };
        format!("clickhouse://default:@{}/{database}?writer_cache={writer_cache}{cluster}", hosts.join(","))
    }
}

fn free_port() -> Result<u16, ClickHouseError> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| ClickHouseError::Config(format!("no free port: {e}")))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| ClickHouseError::Config(e.to_string()))
}

impl ClickHouseServer {
    fn start(binary: &str, http_port: u16, tcp_port: u16, remote_servers: &str) -> Result<Self, ClickHouseError> {
        let dir = server_dir(http_port);
        let setup = |e: std::io::Error| ClickHouseError::Config(format!("cannot prepare {}: {e}", dir.display()));
        std::fs::create_dir_all(&dir).map_err(setup)?;
        let d = dir.display();
        let config = format!(
            "<yandex>
  <logger><level>warning</level><log>{d}/server.log</log><errorlog>{d}/error.log</errorlog></logger>
  <listen_host>127.0.0.1</listen_host>
  <http_port>{http_port}</http_port>
  <tcp_port>{tcp_port}</tcp_port>
  <path>{d}/data/</path>
  <tmp_path>{d}/tmp/</tmp_path>
  <user_files_path>{d}/user_files/</user_files_path>
  <format_schema_path>{d}/format_schemas/</format_schema_path>
  <users_config>{d}/users.xml</users_config>
  <mark_cache_size>268435456</mark_cache_size>
  <uncompressed_cache_size>268435456</uncompressed_cache_size>
  <max_concurrent_queries>100</max_concurrent_queries>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <query_log><database>system</database><table>query_log</table><flush_interval_milliseconds>1000</flush_interval_milliseconds></query_log>
  {remote_servers}
</yandex>
"
        );
        let config_path = dir.join("config.xml");
        std::fs::write(&config_path, config).map_err(setup)?;
        std::fs::write(dir.join("users.xml"), users_xml()?).map_err(setup)?;
        // The watchdog stops the server (and removes its directory unless TROUPE_CLICKHOUSE_KEEP is
        // set, for reading its logs) once this process is gone.
        let script = r#"binary="$1"; config="$2"; parent="$3"; dir="$4"
start() { "$binary" --config-file="$config" >>"$dir/stdout.log" 2>&1 & server=$!; }
start
# Runs until this process is gone or `stop` exists. A server killed while `hold` exists (a
# test's outage) is started again once `hold` is gone; `held` says the watchdog has seen it
# down (so the test does not remove `hold` before).
running() { kill -0 "$parent" 2>/dev/null && [ ! -e "$dir/stop" ]; }
# A killed server stays a zombie until reaped, and `kill -0` succeeds on a zombie.
server_alive() { [ -e "/proc/$server" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$server/status" 2>/dev/null; }
while running; do
    if ! server_alive; then
        wait "$server" 2>/dev/null
        [ -e "$dir/hold" ] || break
        touch "$dir/held"
        while [ -e "$dir/hold" ] && running; do sleep 0.2; done
        running || break
        rm -f "$dir/held"
        start
    fi
    sleep 0.2
done
kill "$server" 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do server_alive || break; sleep 0.2; done
kill -9 "$server" 2>/dev/null; wait "$server" 2>/dev/null
[ -n "$TROUPE_CLICKHOUSE_KEEP" ] || rm -rf "$dir""#;
        let child = Command::new("sh")
            .args(["-c", script, "sh", binary])
            .arg(&config_path)
            .arg(std::process::id().to_string())
            .arg(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| ClickHouseError::Config(format!("cannot start {binary}: {e}")))?;
        Ok(ClickHouseServer { child, engine: Engine::Debian, http_port, tcp_port: Some(tcp_port), dir })
    }

    /// The chdb front, run by the tests' Python (`TROUPE_TEST_PYTHON`, where
    /// `scripts/setup-test-deps` installs `chdb-core`), which watches this process itself.
    fn start_front(http_port: u16) -> Result<Self, ClickHouseError> {
        let dir = server_dir(http_port);
        let setup = |e: std::io::Error| ClickHouseError::Config(format!("cannot prepare {}: {e}", dir.display()));
        std::fs::create_dir_all(&dir).map_err(setup)?;
        let python = test_python();
        let front = concat!(env!("CARGO_MANIFEST_DIR"), "/testing/chdb_front.py");
        let log = std::fs::File::create(dir.join("stdout.log")).map_err(setup)?;
        let child = Command::new(&python)
            .arg(front)
            .arg(http_port.to_string())
            .arg(&dir)
            .arg(std::process::id().to_string())
            .arg(format!("{PASSWORD_USER}:{TEST_PASSWORD}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().map_err(setup)?)
            .stderr(log)
            .spawn()
            .map_err(|e| ClickHouseError::Config(format!("cannot start {python} {front}: {e}")))?;
        Ok(ClickHouseServer { child, engine: Engine::Current, http_port, tcp_port: None, dir })
    }

    /// An outage: the server is killed (`kill -9`) and stays down until [`Self::revive`].
    /// Debian's server only.
    pub fn kill(&self) {
        if std::fs::write(self.dir.join("hold"), b"").is_err() {
            return;
        }
        let _ = Command::new("pkill").args(["-9", "-f", "--", &self.pattern()]).status();
        // Down once the watchdog has seen it down (else a quick `revive` could come first).
        let started = Instant::now();
        while !self.dir.join("held").exists() && started.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Start a [`Self::kill`]ed server again, on its data, and wait until it answers.
    pub fn revive(&mut self) -> Result<(), ClickHouseError> {
        let _ = std::fs::remove_file(self.dir.join("hold"));
        self.wait_ready()
    }

    /// The server's own command line (the watchdog's holds the config path only as a separate
    /// argument).
    fn pattern(&self) -> String {
        format!("--config-file={}", self.dir.join("config.xml").display())
    }

    fn wait_ready(&mut self) -> Result<(), ClickHouseError> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if ping(self.http_port) {
                return Ok(());
            }
            // The front is the child itself: when it has exited, waiting longer is pointless.
            if self.engine == Engine::Current && matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let log = std::fs::read_to_string(self.dir.join("stdout.log")).unwrap_or_default();
        let errors = std::fs::read_to_string(self.dir.join("error.log")).unwrap_or_default();
        let what = match self.engine {
            Engine::Debian => "clickhouse-server (is Debian's clickhouse-server installed?",
            Engine::Current => "the chdb front (is chdb-core installed for TROUPE_TEST_PYTHON?",
        };
        Err(ClickHouseError::Config(format!(
            "{what} scripts/setup-test-deps installs it) on port {} did not answer within 60 s: {}{}",
            self.http_port,
            tail(&log),
            tail(&errors)
        )))
    }
}

/// The Python with `chdb-core`: `TROUPE_TEST_PYTHON`, else the venv `scripts/setup-test-deps`
/// makes (so `troupe bench` finds it without the tests' environment), else `python3`.
fn test_python() -> String {
    if let Ok(python) = std::env::var("TROUPE_TEST_PYTHON") {
        return python;
    }
    let cache = std::env::var("TROUPE_TEST_CACHE")
        .ok()
        .or_else(|| std::env::var("HOME").ok().map(|home| format!("{home}/.cache/troupe-test")));
    cache
        .map(|cache| format!("{cache}/venv/bin/python"))
        .filter(|python| std::path::Path::new(python).exists())
        .unwrap_or_else(|| "python3".into())
}

/// A user with a password, beside Debian's `default` (no password).
pub const PASSWORD_USER: &str = "troupe_pw";
/// Its password: a test greps replies and logs for it.
pub const TEST_PASSWORD: &str = "Pw-8c1f-do-not-leak";

/// Debian's users, plus [`PASSWORD_USER`] allowed from loopback.
fn users_xml() -> Result<String, ClickHouseError> {
    let system = std::fs::read_to_string("/etc/clickhouse-server/users.xml")
        .map_err(|e| ClickHouseError::Config(format!("cannot read /etc/clickhouse-server/users.xml: {e}")))?;
    let user = format!(
        "<{PASSWORD_USER}><password>{TEST_PASSWORD}</password><networks><ip>::1</ip><ip>127.0.0.1</ip></networks>\
         <profile>default</profile><quota>default</quota></{PASSWORD_USER}>\n    </users>"
    );
    let with_user = match system.rfind("</users>") {
        Some(at) => format!("{}{user}{}", &system[..at], &system[at + "</users>".len()..]),
        None => return Err(ClickHouseError::Config("no </users> in /etc/clickhouse-server/users.xml".into())),
    };
    // Queries are logged (`system.query_log`), so tests can read how many rows one read.
    match with_user.find("<profiles>").and_then(|p| with_user[p..].find("<default>").map(|d| p + d)) {
        Some(at) => {
            let at = at + "<default>".len();
            Ok(format!("{}<log_queries>1</log_queries>{}", &with_user[..at], &with_user[at..]))
        }
        None => Err(ClickHouseError::Config("no default profile in /etc/clickhouse-server/users.xml".into())),
    }
}

fn server_dir(http_port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("troupe-clickhouse-{}-{http_port}", std::process::id()))
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// The HTTP interface answers `GET /ping` with `Ok.`.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream.write_all(b"GET /ping HTTP/1.0\r\nHost: localhost\r\n\r\n").is_err() {
        return false;
    }
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer.contains("Ok.")
}

impl Drop for ClickHouseServer {
    /// Stop the server: the watchdog sees `stop`, stops it, removes the directory and exits.
    fn drop(&mut self) {
        if self.engine == Engine::Current {
            let _ = self.child.kill();
            let _ = self.child.wait();
            let _ = std::fs::remove_dir_all(&self.dir);
            return;
        }
        let _ = std::fs::write(self.dir.join("stop"), b"");
        let _ = self.child.wait();
    }
}
