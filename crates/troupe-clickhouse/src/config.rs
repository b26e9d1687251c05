//! Where the ClickHouse store lives: `clickhouse://user:pass@host:8123[,host2:8123…]/db[?cluster=name]`.
//!
//! One host is a single server. Several hosts with `cluster=` name the nodes of a cluster defined
//! in ClickHouse's `remote_servers` under that name: troupe creates its local tables on every
//! listed node (no ZooKeeper is needed for that) and reads and writes through Distributed tables.

use std::fmt;

use percent_encoding::percent_decode_str;

use crate::ClickHouseError;

#[derive(Clone, PartialEq, Eq)]
pub struct ClickHouseConfig {
    /// HTTP base URLs of the nodes, `http://host:port`; the first serves troupe's queries.
    pub nodes: Vec<String>,
    pub user: String,
    pub password: String,
    pub database: String,
    /// The `remote_servers` cluster the Distributed tables spread over; `None` for one server.
    pub cluster: Option<String>,
    /// Local tables are ReplicatedMergeTree (needs ZooKeeper and the `{shard}`/`{replica}` macros).
    pub replicated: bool,
    /// Persons, groups and client id hashes the writer keeps between batches, over all projects
    /// (`?writer_cache=`); what a batch reads beyond them is looked up in ClickHouse.
    pub writer_cache: usize,
}

/// The writer's default cache: about 1–2 GB at the bench's persons (see docs/clickhouse.md).
pub const DEFAULT_WRITER_CACHE: usize = 2_000_000;

impl fmt::Debug for ClickHouseConfig {
    /// Never prints the password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClickHouseConfig")
            .field("nodes", &self.nodes)
            .field("user", &self.user)
            .field("database", &self.database)
            .field("cluster", &self.cluster)
            .field("replicated", &self.replicated)
            .field("writer_cache", &self.writer_cache)
            .finish()
    }
}

impl ClickHouseConfig {
    /// Parse a `clickhouse://` URL. The default port is 8123, the default user `default`, the
    /// default database `troupe`.
    pub fn parse(url: &str) -> Result<Self, ClickHouseError> {
        let invalid = |why: &str| ClickHouseError::Config(format!("invalid ClickHouse URL: {why}"));
        let rest = url.strip_prefix("clickhouse://").ok_or_else(|| {
            invalid("it must start with clickhouse:// (e.g. clickhouse://default:@127.0.0.1:8123/troupe)")
        })?;
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, database) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let decode = |s: &str| percent_decode_str(s).decode_utf8().map(|c| c.into_owned());
        let (user, password) = match userinfo {
            Some(info) => {
                let (u, p) = info.split_once(':').unwrap_or((info, ""));
                (
                    decode(u).map_err(|_| invalid("the user is not UTF-8"))?,
                    decode(p).map_err(|_| invalid("the password is not UTF-8"))?,
                )
            }
            None => ("default".to_string(), String::new()),
        };
        let mut nodes = Vec::new();
        for host in hosts.split(',').map(str::trim) {
            if host.is_empty() {
                return Err(invalid("a host is missing"));
            }
            let with_port = if host.rsplit_once(':').is_some_and(|(_, p)| p.parse::<u16>().is_ok()) {
                host.to_string()
            } else {
                format!("{host}:8123")
            };
            nodes.push(format!("http://{with_port}"));
        }
        let database = if database.is_empty() { "troupe".to_string() } else { database.to_string() };
        if !database.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(invalid("the database name may only hold letters, digits and _"));
        }
        let mut config = ClickHouseConfig {
            nodes,
            user,
            password,
            database,
            cluster: None,
            replicated: false,
            writer_cache: DEFAULT_WRITER_CACHE,
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "cluster" if !value.is_empty() && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
                    config.cluster = Some(value.to_string())
                }
                "cluster" => return Err(invalid("cluster must be a remote_servers name (letters, digits, _)")),
                "replicated" => config.replicated = matches!(value, "1" | "true"),
                "writer_cache" => {
                    config.writer_cache =
                        value.parse().map_err(|_| invalid("writer_cache must be a number of entries (e.g. 2000000)"))?
                }
                other => {
                    return Err(invalid(&format!(
                        "unknown option '{other}' (known: cluster, replicated, writer_cache)"
                    )))
                }
            }
        }
        if config.nodes.len() > 1 && config.cluster.is_none() {
            return Err(invalid("several hosts need ?cluster=<remote_servers name>"));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_single_server() -> Result<(), ClickHouseError> {
        let c = ClickHouseConfig::parse("clickhouse://bob:p%40ss@db.local:9999/analytics")?;
        assert_eq!(c.nodes, vec!["http://db.local:9999"]);
        assert_eq!((c.user.as_str(), c.password.as_str(), c.database.as_str()), ("bob", "p@ss", "analytics"));
        assert_eq!(c.cluster, None);
        let d = ClickHouseConfig::parse("clickhouse://localhost")?;
        assert_eq!(
            (d.nodes[0].as_str(), d.user.as_str(), d.database.as_str()),
            ("http://localhost:8123", "default", "troupe")
        );
        Ok(())
    }

    #[test]
    fn parses_a_cluster() -> Result<(), ClickHouseError> {
        let c = ClickHouseConfig::parse("clickhouse://default:@127.0.0.1:8123,127.0.0.1:8124/t?cluster=two_shards")?;
        assert_eq!(c.nodes.len(), 2);
        assert_eq!(c.cluster.as_deref(), Some("two_shards"));
        Ok(())
    }

    #[test]
    fn rejects_bad_urls_with_a_reason() {
        for (url, why) in [
            ("http://localhost", "clickhouse://"),
            ("clickhouse://a:1,b:2/db", "cluster"),
            ("clickhouse://a/db-x", "database name"),
            ("clickhouse://a/db?shards=2", "unknown option"),
            ("clickhouse://a/db?writer_cache=lots", "writer_cache must be a number"),
        ] {
            let e = ClickHouseConfig::parse(url).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains(why), "{url}: {e}");
        }
    }

    #[test]
    fn debug_hides_the_password() -> Result<(), ClickHouseError> {
        let c = ClickHouseConfig::parse("clickhouse://u:secret@h/db")?;
        assert!(!format!("{c:?}").contains("secret"));
        Ok(())
    }
}
