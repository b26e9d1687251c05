//! Conversions between Rust values and DuckDB values.

use chrono::{DateTime, Utc};
use duckdb::types::{TimeUnit, Value};
use troupe_core::Properties;

pub fn ts(at: DateTime<Utc>) -> Value {
    Value::Timestamp(TimeUnit::Microsecond, at.timestamp_micros())
}

/// Timestamps are selected as `epoch_us(col)`.
pub fn from_micros(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or_default()
}

pub fn text_list<'a>(items: impl IntoIterator<Item = &'a String>) -> Value {
    Value::List(items.into_iter().map(|s| Value::Text(s.clone())).collect())
}

pub fn list_of_text(value: Value) -> Vec<String> {
    match value {
        Value::List(items) | Value::Array(items) => items
            .into_iter()
            .filter_map(|v| match v {
                Value::Text(s) => Some(s),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub fn json(props: &Properties) -> String {
    serde_json::to_string(props).unwrap_or_else(|_| "{}".to_string())
}

/// Stored JSON is always written by us; a row that fails to parse reads as empty rather than
/// failing the whole query.
pub fn parse_json(text: &str) -> Properties {
    serde_json::from_str(text).unwrap_or_default()
}
