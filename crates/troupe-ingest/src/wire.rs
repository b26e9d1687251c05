//! Field extraction shared by every protocol: typed reads of a JSON body that fail with an error
//! naming the field, and the timestamp formats clients send.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use troupe_core::{Command, CoreError, Limits, Properties};

pub type Body = Map<String, Value>;

/// The body as a JSON object.
pub fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Body, CoreError> {
    value.as_object().ok_or_else(|| CoreError::invalid(what, "must be a JSON object"))
}

/// An id field: a non-empty string (numbers are accepted and written as text, as clients send
/// numeric user ids), within the id length limit.
pub fn id(body: &Body, field: &str, limits: &Limits) -> Result<String, CoreError> {
    let value = opt_id(body, field)?.ok_or_else(|| CoreError::missing(field))?;
    limits.check_id(field, &value)?;
    Ok(value)
}

/// The first present of several alternative id fields (`user_id` or `distinct_id`).
pub fn id_of(body: &Body, fields: &[&str], limits: &Limits) -> Result<String, CoreError> {
    for field in fields {
        if let Some(value) = opt_id(body, field)? {
            limits.check_id(field, &value)?;
            return Ok(value);
        }
    }
    Err(CoreError::missing(fields.first().copied().unwrap_or("id")))
}

/// An optional id field (a client's event or request id), within the id length limit.
pub fn checked_opt_id(body: &Body, field: &str, limits: &Limits) -> Result<Option<String>, CoreError> {
    let id = opt_id(body, field)?;
    if let Some(id) = &id {
        limits.check_id(field, id)?;
    }
    Ok(id)
}

pub fn opt_id(body: &Body, field: &str) -> Result<Option<String>, CoreError> {
    match body.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Err(CoreError::missing(field)),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(CoreError::invalid(field, "must be a string")),
    }
}

/// `commands` of one request item guarded against the client's resends
/// ([`Command::once`]): with the client's id for the write when it sent one (`#n` tells the
/// commands of one item apart), else by content and `nonce`, for those that are not idempotent.
pub fn guarded(commands: Vec<Command>, client_id: Option<&str>, nonce: &str) -> Vec<Command> {
    commands
        .into_iter()
        .enumerate()
        .map(|(i, command)| command.once(client_id.map(|id| format!("{id}#{i}")).as_deref(), nonce))
        .collect()
}

/// A required string that is not an id (event names).
pub fn text(body: &Body, field: &str) -> Result<String, CoreError> {
    match body.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        None | Some(Value::Null) | Some(Value::String(_)) => Err(CoreError::missing(field)),
        Some(_) => Err(CoreError::invalid(field, "must be a string")),
    }
}

/// An object of properties; absent or null is empty. Checked against the size limit.
pub fn properties(body: &Body, field: &str, limits: &Limits) -> Result<Properties, CoreError> {
    let props = match body.get(field) {
        None | Some(Value::Null) => Properties::new(),
        Some(Value::Object(map)) => map.clone(),
        Some(_) => return Err(CoreError::invalid(field, "must be a JSON object")),
    };
    limits.check_properties(field, &props)?;
    Ok(props)
}

/// A list of values; a single value counts as a one-item list.
pub fn values(body: &Body, field: &str) -> Result<Vec<Value>, CoreError> {
    match body.get(field) {
        None | Some(Value::Null) => Err(CoreError::missing(field)),
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(other) => Ok(vec![other.clone()]),
    }
}

/// Any present value.
pub fn value(body: &Body, field: &str) -> Result<Value, CoreError> {
    match body.get(field) {
        None => Err(CoreError::missing(field)),
        Some(v) => Ok(v.clone()),
    }
}

/// A list of ids, or a single id.
pub fn id_list(body: &Body, field: &str, limits: &Limits) -> Result<Vec<String>, CoreError> {
    let items = match body.get(field) {
        None | Some(Value::Null) => return Err(CoreError::missing(field)),
        Some(Value::Array(items)) => items.clone(),
        Some(single) => vec![single.clone()],
    };
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        let id = match item {
            Value::String(s) if !s.trim().is_empty() => s,
            Value::Number(n) => n.to_string(),
            _ => return Err(CoreError::invalid(field, "must be a non-empty string or a list of them")),
        };
        limits.check_id(field, &id)?;
        ids.push(id);
    }
    Ok(ids)
}

/// A number field.
pub fn number(body: &Body, field: &str) -> Result<serde_json::Number, CoreError> {
    match body.get(field) {
        None | Some(Value::Null) => Err(CoreError::missing(field)),
        Some(Value::Number(n)) => Ok(n.clone()),
        Some(_) => Err(CoreError::invalid(field, "must be a number")),
    }
}

/// A timestamp in any of the formats clients send: RFC 3339 text (`Z` or an offset), epoch
/// milliseconds (Trodo, JavaScript) or epoch seconds (Mixpanel's float), told apart by size.
/// Times outside the range troupe stores (1970 to 2100) are refused naming the field.
pub fn timestamp(body: &Body, field: &str) -> Result<Option<DateTime<Utc>>, CoreError> {
    let bad = || CoreError::invalid(field, "must be an ISO 8601 time or epoch seconds/milliseconds");
    let time = match body.get(field) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(s)) => match s.parse::<f64>() {
            Ok(n) => epoch(n).ok_or_else(bad)?,
            Err(_) => DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).map_err(|_| bad())?,
        },
        Some(Value::Number(n)) => n.as_f64().and_then(epoch).ok_or_else(bad)?,
        Some(_) => return Err(bad()),
    };
    if !troupe_core::event::in_time_range(time) {
        return Err(CoreError::invalid(
            field,
            format!("{} is out of range: {}", time.to_rfc3339(), troupe_core::event::TIME_RANGE),
        ));
    }
    Ok(Some(time))
}

/// Epoch seconds below 10^11 (until the year 5138), milliseconds above.
fn epoch(n: f64) -> Option<DateTime<Utc>> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let micros = if n < 1e11 { n * 1e6 } else { n * 1e3 };
    DateTime::from_timestamp_micros(micros as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(v: Value) -> Body {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn timestamps_in_every_client_format_agree() {
        let expected = DateTime::parse_from_rfc3339("2026-11-23T08:16:02.985Z").map(|t| t.with_timezone(&Utc)).ok();
        for v in [
            json!("2026-11-23T08:16:02.985Z"),
            json!("2026-11-23T08:16:02.985+00:00"),
            json!(1795421762985_i64),
            json!(1795421762.985),
        ] {
            let got = timestamp(&body(json!({"t": v.clone()})), "t").expect("parses");
            let diff = (got.unwrap_or_default() - expected.unwrap_or_default()).num_milliseconds().abs();
            assert!(diff <= 1, "{v} parsed as {got:?}");
        }
        assert_eq!(timestamp(&body(json!({"t": "yesterday"})), "t").unwrap_err().field(), "t");
    }

    #[test]
    fn times_out_of_the_stored_range_are_refused_naming_the_field() {
        for v in [
            json!(8_210_000_000_000_000_i64),
            json!(-1),
            json!(1e300),
            json!("1969-12-31T23:59:59Z"),
            json!("2100-01-01T00:00:00Z"),
            json!("+262143-12-31T23:59:59Z"),
            json!("9999999999999999999999"),
        ] {
            let err = timestamp(&body(json!({"sent_at": v.clone()})), "sent_at").expect_err("refused");
            assert_eq!((err.field(), err.code()), ("sent_at", "invalid_field"), "{v}");
        }
        assert!(timestamp(&body(json!({"t": "1970-01-01T00:00:00Z"})), "t").is_ok());
        assert!(timestamp(&body(json!({"t": "2099-12-31T23:59:59Z"})), "t").is_ok());
    }

    #[test]
    fn ids_accept_numbers_and_refuse_other_types_naming_the_field() {
        let limits = Limits::default();
        assert_eq!(id(&body(json!({"userId": 42})), "userId", &limits).ok().as_deref(), Some("42"));
        assert_eq!(id(&body(json!({"userId": {"a": 1}})), "userId", &limits).unwrap_err().field(), "userId");
        assert_eq!(id(&body(json!({})), "userId", &limits).unwrap_err().code(), "missing_field");
        assert_eq!(id(&body(json!({"userId": "x".repeat(201)})), "userId", &limits).unwrap_err().code(), "too_long");
    }

    #[test]
    fn id_lists_take_one_id_or_many() {
        let limits = Limits::default();
        assert_eq!(id_list(&body(json!({"g": "a"})), "g", &limits).ok(), Some(vec!["a".to_string()]));
        assert_eq!(id_list(&body(json!({"g": ["a", "b"]})), "g", &limits).ok().map(|v| v.len()), Some(2));
        assert!(id_list(&body(json!({"g": [""]})), "g", &limits).is_err());
    }
}
