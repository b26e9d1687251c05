//! ClickHouse's HTTP interface: statements in the body, settings in the URL, rows as
//! `JSONEachRow` both ways. Works with 18.16 and with current releases alike.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::tsv::{Tsv, TsvRow};
use crate::{ClickHouseConfig, ClickHouseError};

/// Settings sent with every request. 64-bit integers as JSON numbers (not strings);
/// inserts into Distributed tables reach the shards before the answer (the durability promise);
/// a SELECT that mixes distributed subqueries must say GLOBAL, which troupe's SQL always does.
/// Queries may carry long constant lists (a breakdown's group keys, a condition's groups), which
/// the default parser limits (256 KiB, 50,000 AST elements) would refuse.
const SETTINGS: &[(&str, &str)] = &[
    ("output_format_json_quote_64bit_integers", "0"),
    ("insert_distributed_sync", "1"),
    ("max_query_size", "268435456"),
    ("max_ast_elements", "10000000"),
    ("max_expanded_ast_elements", "10000000"),
];

/// A one-column (`id String`) table sent along with a query (ClickHouse's "external data"),
/// for sets too large to write into the SQL: the query reads it as `GLOBAL IN <name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalTable {
    pub name: String,
    pub ids: Vec<String>,
}

impl ExternalTable {
    /// The rows as TabSeparated.
    fn tsv(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.ids.iter().map(|i| i.len() + 1).sum());
        for id in &self.ids {
            for b in id.bytes() {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b => out.push(b),
                }
            }
            out.push(b'\n');
        }
        out
    }
}

/// What a request carries: a statement (or an insert's rows), or a query with external tables.
/// Cheap to clone: a request failing over to the next node is sent again.
#[derive(Clone)]
enum Body {
    Text(Bytes),
    Form { sql: String, tables: Arc<Vec<ExternalTable>> },
}

impl Body {
    fn text(text: String) -> Self {
        Body::Text(Bytes::from(text))
    }
}

/// Whether a request may go to the next node after one did not answer.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Failover {
    /// A read: whatever happened at the node that did not answer, asking another is harmless.
    Read,
    /// A write: only when the node was never reached (the connection was refused or timed out),
    /// never after it may have written.
    Write,
}

#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    config: ClickHouseConfig,
    /// The node of the URL that last answered: requests go there first, then to the others in
    /// URL order when it does not answer.
    preferred: Arc<AtomicUsize>,
    /// The server takes `insert_deduplication_token` (ClickHouse 22.2 and later; not 18.16).
    insert_tokens: Arc<std::sync::atomic::AtomicBool>,
    /// Erasures in flight, as this process last saw them (see [`crate::erasing`]).
    erasing: Arc<crate::erasing::Erasing>,
}

impl Http {
    pub fn new(config: ClickHouseConfig) -> Result<Self, ClickHouseError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ClickHouseError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Http {
            client,
            config,
            preferred: Arc::new(AtomicUsize::new(0)),
            insert_tokens: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            erasing: Arc::default(),
        })
    }

    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    /// This process's view of the erasures in flight, shared by every clone.
    pub fn erasing(&self) -> &crate::erasing::Erasing {
        &self.erasing
    }

    /// Send `body` to one node. `database` selects the default database of the statement
    /// (`None` before it exists).
    async fn post(
        &self,
        node: &str,
        database: Option<&str>,
        query: Option<&str>,
        token: Option<&str>,
        body: Body,
    ) -> Result<Vec<u8>, ClickHouseError> {
        let mut params: Vec<(String, &str)> = SETTINGS.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        if let Some(token) = token {
            params.push(("insert_deduplication_token".into(), token));
        }
        if let Some(db) = database {
            params.push(("database".into(), db));
        }
        if let Some(q) = query {
            params.push(("query".into(), q));
        }
        // Credentials as HTTP basic auth, which every ClickHouse release reads: never in the URL,
        // which ends up in error texts and proxies' logs.
        let request = self.client.post(format!("{node}/")).basic_auth(&self.config.user, Some(&self.config.password));
        let request = match body {
            Body::Text(text) => request.query(&params).body(text),
            Body::Form { sql, tables } => {
                // The statement travels as a form field (the URL would limit its length); each
                // table's structure must be a URL parameter.
                let mut form = reqwest::multipart::Form::new().text("query", sql);
                for t in tables.iter() {
                    params.push((format!("{}_structure", t.name), "id String"));
                }
                for t in tables.iter() {
                    let part = reqwest::multipart::Part::bytes(t.tsv()).file_name(t.name.clone());
                    form = form.part(t.name.clone(), part);
                }
                request.query(&params).multipart(form)
            }
        };
        // The client's error names the URL with its settings and maybe the statement: left out.
        let unreachable = |e: reqwest::Error| ClickHouseError::Unreachable {
            node: node.to_string(),
            sent: !e.is_connect(),
            message: e.without_url().to_string(),
        };
        let response = request.send().await.map_err(unreachable)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            let message = String::from_utf8_lossy(&bytes).trim().to_string();
            return Err(ClickHouseError::Server { status: status.as_u16(), message });
        }
        Ok(bytes.to_vec())
    }

    /// Send to the preferred node, failing over to the others in turn when one does not answer
    /// (a cluster's Distributed tables exist on every node, so any node serves troupe's SQL).
    async fn post_any(
        &self,
        failover: Failover,
        query: Option<&str>,
        token: Option<&str>,
        body: Body,
    ) -> Result<Vec<u8>, ClickHouseError> {
        let nodes = &self.config.nodes;
        let first = self.preferred.load(Ordering::Relaxed);
        let mut tried = 0;
        loop {
            let at = (first + tried) % nodes.len().max(1);
            let node = nodes.get(at).map(String::as_str).unwrap_or("http://127.0.0.1:8123");
            let answer = self.post(node, Some(&self.config.database), query, token, body.clone()).await;
            tried += 1;
            match &answer {
                Err(ClickHouseError::Unreachable { sent, .. })
                    if tried < nodes.len() && (failover == Failover::Read || !sent) =>
                {
                    tracing::warn!("ClickHouse at {node} does not answer; trying the next node of the URL");
                    continue;
                }
                Ok(_) if at != first => {
                    tracing::info!("ClickHouse queries go to {node} now");
                    self.preferred.store(at, Ordering::Relaxed);
                }
                _ => {}
            }
            return answer;
        }
    }

    /// Run a statement (on the preferred node, or the next when it cannot be reached).
    pub async fn execute(&self, sql: &str) -> Result<(), ClickHouseError> {
        self.post_any(Failover::Write, None, None, Body::text(sql.to_string())).await.map(|_| ())
    }

    /// Run a statement on one node, with or without the database selected (DDL of migrations).
    pub async fn execute_on(&self, node: &str, sql: &str, use_database: bool) -> Result<(), ClickHouseError> {
        let db = use_database.then_some(self.config.database.as_str());
        self.post(node, db, None, None, Body::text(sql.to_string())).await.map(|_| ())
    }

    /// Run a SELECT (on the preferred node, or the next that answers) and decode its rows.
    pub async fn rows<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, ClickHouseError> {
        self.rows_with(sql, Vec::new()).await
    }

    /// A SELECT on one node.
    pub async fn rows_on<T: DeserializeOwned>(&self, node: &str, sql: &str) -> Result<Vec<T>, ClickHouseError> {
        let body = self.post(node, Some(&self.config.database), None, None, select(sql, Vec::new())).await?;
        decode_rows(&body, sql)
    }

    /// Run a SELECT that reads external tables and decode its rows.
    pub async fn rows_with<T: DeserializeOwned>(
        &self,
        sql: &str,
        tables: Vec<ExternalTable>,
    ) -> Result<Vec<T>, ClickHouseError> {
        let body = self.post_any(Failover::Read, None, None, select(sql, tables)).await?;
        decode_rows(&body, sql)
    }

    /// Run a SELECT that reads external tables, its rows as `RowBinary` (see
    /// [`crate::row_binary`]): for results of many numbers, which ClickHouse writes and troupe
    /// reads several times faster than as JSON.
    pub async fn binary_rows_with(&self, sql: &str, tables: Vec<ExternalTable>) -> Result<Vec<u8>, ClickHouseError> {
        self.post_any(Failover::Read, None, None, select_as(sql, tables, "RowBinary")).await
    }

    /// A SELECT on one node without selecting troupe's database (which may not exist yet).
    pub async fn system_rows<T: DeserializeOwned>(&self, node: &str, sql: &str) -> Result<Vec<T>, ClickHouseError> {
        let body = self.post(node, None, None, None, select(sql, Vec::new())).await?;
        decode_rows(&body, sql)
    }

    /// Whether `node` takes insert deduplication tokens (see [`Http::insert_tsv`]).
    pub async fn takes_insert_tokens(&self, node: &str) -> Result<bool, ClickHouseError> {
        #[derive(serde::Deserialize)]
        struct Row {
            n: u64,
        }
        let sql = "SELECT count() AS n FROM system.settings WHERE name = 'insert_deduplication_token'";
        let rows: Vec<Row> = self.system_rows(node, sql).await?;
        Ok(rows.first().is_some_and(|r| r.n > 0))
    }

    /// Find out once whether the server takes insert deduplication tokens.
    pub async fn detect_insert_tokens(&self) -> Result<(), ClickHouseError> {
        let node = self.config.nodes.first().cloned().unwrap_or_default();
        let takes = self.takes_insert_tokens(&node).await?;
        self.insert_tokens.store(takes, Ordering::Relaxed);
        Ok(())
    }

    /// Insert rows into a table of troupe's database; answers once ClickHouse has them.
    pub async fn insert<T: Serialize>(&self, table: &str, rows: &[T]) -> Result<(), ClickHouseError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut body = Vec::with_capacity(rows.len() * 128);
        for row in rows {
            serde_json::to_writer(&mut body, row).map_err(|e| ClickHouseError::Decode(e.to_string()))?;
            body.push(b'\n');
        }
        self.insert_body(&format!("INSERT INTO {table} FORMAT JSONEachRow"), body, None).await
    }

    /// Insert rows that write themselves as `TabSeparated` (see [`crate::tsv`]) into `columns`
    /// of a table — the format for tables filled by the million.
    ///
    /// With a deduplication token, when the server takes one: ClickHouse drops a later insert
    /// into the same table with the same token (the table keeps the tokens of its latest
    /// inserts), so an insert that arrives late — after troupe took it for failed and wrote the
    /// batch again — is not stored twice.
    pub async fn insert_tsv<T: TsvRow>(
        &self,
        table: &str,
        columns: &str,
        rows: &[T],
        token: Option<&str>,
    ) -> Result<(), ClickHouseError> {
        if rows.is_empty() {
            return Ok(());
        }
        let mut tsv = Tsv::with_capacity(rows.len() * 256);
        for row in rows {
            row.write(&mut tsv);
            tsv.end_row();
        }
        let query = format!("INSERT INTO {table} ({columns}) FORMAT TabSeparated");
        self.insert_body(&query, tsv.into_bytes(), token).await
    }

    async fn insert_body(&self, query: &str, body: Vec<u8>, token: Option<&str>) -> Result<(), ClickHouseError> {
        let token = token.filter(|_| self.insert_tokens.load(Ordering::Relaxed));
        self.post_any(Failover::Write, Some(query), token, Body::Text(Bytes::from(body))).await.map(|_| ())
    }
}

/// A SELECT's request, rows asked for as `JSONEachRow`.
fn select(sql: &str, tables: Vec<ExternalTable>) -> Body {
    select_as(sql, tables, "JSONEachRow")
}

fn select_as(sql: &str, tables: Vec<ExternalTable>, format: &str) -> Body {
    tracing::debug!(target: "troupe_clickhouse::sql", "{sql}");
    let statement = format!("{sql}\nFORMAT {format}");
    if tables.is_empty() {
        Body::text(statement)
    } else {
        Body::Form { sql: statement, tables: Arc::new(tables) }
    }
}

fn decode_rows<T: DeserializeOwned>(body: &[u8], sql: &str) -> Result<Vec<T>, ClickHouseError> {
    body.split(|b| *b == b'\n')
        .filter(|line| !line.is_empty())
        .map(|line| {
            serde_json::from_slice(line).map_err(|e| ClickHouseError::Decode(format!("{e} in a row of: {sql}")))
        })
        .collect()
}

/// A ClickHouse string literal.
/// Texts as a list of SQL literals, `'a', 'b'`, for `IN (…)` or `[…]`; an empty list is `''`
/// (an `IN` list cannot be empty, and no text troupe matches is empty).
pub fn quote_list(texts: &[String]) -> String {
    if texts.is_empty() {
        return "''".into();
    }
    texts.iter().map(|t| quote(t)).collect::<Vec<_>>().join(", ")
}

pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\'' => out.push_str("\\'"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// A ClickHouse Float64 literal that reads back as the same number (`nan`, `inf` included).
pub fn float_literal(n: f64) -> String {
    if n.is_nan() {
        "nan".into()
    } else if n.is_infinite() {
        if n > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        // Rust's shortest representation that parses back to the same double.
        format!("{n:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClickHouseConfig;

    /// An unreachable node's error (the text the writer logs) names the node but carries no
    /// credentials: they travel as basic auth, and the client's URL is left out.
    #[tokio::test]
    async fn errors_never_carry_the_password() {
        let config = ClickHouseConfig::parse("clickhouse://troupe:s3cret-pw@127.0.0.1:1/db").expect("a valid URL");
        let http = Http::new(config).expect("client");
        let error = http.execute("SELECT 1").await.expect_err("nothing listens on port 1").to_string();
        assert!(error.contains("127.0.0.1:1"), "{error}");
        assert!(!error.contains("s3cret-pw") && !error.contains("password"), "{error}");
    }

    #[test]
    fn quoting_escapes_what_would_end_the_literal() {
        assert_eq!(quote("it's a \\ test\n"), "'it\\'s a \\\\ test\\n'");
    }
}
