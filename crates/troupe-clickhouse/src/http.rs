//! ClickHouse's HTTP interface: statements in the body, settings in the URL, rows as
//! `JSONEachRow` both ways. Works with 18.16 and with current releases alike.

use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

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
enum Body {
    Text(String),
    Form { sql: String, tables: Vec<ExternalTable> },
}

#[derive(Clone)]
pub struct Http {
    client: reqwest::Client,
    config: ClickHouseConfig,
}

impl Http {
    pub fn new(config: ClickHouseConfig) -> Result<Self, ClickHouseError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(600))
            .connect_timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| ClickHouseError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Http { client, config })
    }

    pub fn config(&self) -> &ClickHouseConfig {
        &self.config
    }

    /// Send `body` to one node. `database` selects the default database of the statement
    /// (`None` before it exists).
    async fn post(
        &self,
        node: &str,
        database: Option<&str>,
        query: Option<&str>,
        body: Body,
    ) -> Result<Vec<u8>, ClickHouseError> {
        let mut params: Vec<(String, &str)> = SETTINGS.iter().map(|(k, v)| (k.to_string(), *v)).collect();
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
                for t in &tables {
                    params.push((format!("{}_structure", t.name), "id String"));
                }
                for t in tables {
                    let part = reqwest::multipart::Part::bytes(t.tsv()).file_name(t.name.clone());
                    form = form.part(t.name, part);
                }
                request.query(&params).multipart(form)
            }
        };
        // The client's error names the URL with its settings and maybe the statement: left out.
        let unreachable = |e: reqwest::Error| ClickHouseError::Unreachable {
            node: node.to_string(),
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

    /// Run a statement on the query node.
    pub async fn execute(&self, sql: &str) -> Result<(), ClickHouseError> {
        self.post(self.query_node(), Some(&self.config.database), None, Body::Text(sql.to_string())).await.map(|_| ())
    }

    /// Run a statement on one node, with or without the database selected (DDL of migrations).
    pub async fn execute_on(&self, node: &str, sql: &str, use_database: bool) -> Result<(), ClickHouseError> {
        let db = use_database.then_some(self.config.database.as_str());
        self.post(node, db, None, Body::Text(sql.to_string())).await.map(|_| ())
    }

    /// Run a SELECT on the query node and decode its rows.
    pub async fn rows<T: DeserializeOwned>(&self, sql: &str) -> Result<Vec<T>, ClickHouseError> {
        self.rows_on(self.query_node(), sql).await
    }

    pub async fn rows_on<T: DeserializeOwned>(&self, node: &str, sql: &str) -> Result<Vec<T>, ClickHouseError> {
        self.decode_rows(node, Some(&self.config.database), sql, Vec::new()).await
    }

    /// Run a SELECT that reads external tables on the query node and decode its rows.
    pub async fn rows_with<T: DeserializeOwned>(
        &self,
        sql: &str,
        tables: Vec<ExternalTable>,
    ) -> Result<Vec<T>, ClickHouseError> {
        self.decode_rows(self.query_node(), Some(&self.config.database), sql, tables).await
    }

    /// A SELECT on one node without selecting troupe's database (which may not exist yet).
    pub async fn system_rows<T: DeserializeOwned>(&self, node: &str, sql: &str) -> Result<Vec<T>, ClickHouseError> {
        self.decode_rows(node, None, sql, Vec::new()).await
    }

    async fn decode_rows<T: DeserializeOwned>(
        &self,
        node: &str,
        database: Option<&str>,
        sql: &str,
        tables: Vec<ExternalTable>,
    ) -> Result<Vec<T>, ClickHouseError> {
        tracing::debug!(target: "troupe_clickhouse::sql", "{sql}");
        let statement = format!("{sql}\nFORMAT JSONEachRow");
        let body = if tables.is_empty() { Body::Text(statement) } else { Body::Form { sql: statement, tables } };
        let body = self.post(node, database, None, body).await?;
        body.split(|b| *b == b'\n')
            .filter(|line| !line.is_empty())
            .map(|line| {
                serde_json::from_slice(line).map_err(|e| ClickHouseError::Decode(format!("{e} in a row of: {sql}")))
            })
            .collect()
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
        let body = String::from_utf8(body).map_err(|e| ClickHouseError::Decode(e.to_string()))?;
        let query = format!("INSERT INTO {table} FORMAT JSONEachRow");
        self.post(self.query_node(), Some(&self.config.database), Some(&query), Body::Text(body)).await.map(|_| ())
    }

    fn query_node(&self) -> &str {
        self.config.nodes.first().map(String::as_str).unwrap_or("http://127.0.0.1:8123")
    }
}

/// A ClickHouse string literal.
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
