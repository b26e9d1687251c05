//! Request bodies parsed as JSON within limits that hold *while* parsing: how deep values nest,
//! how long one array is, how many values the whole body holds. A body over a limit is refused
//! as soon as the parser gets there, so a hostile body costs what it took to read up to that
//! point, not the tens of bytes of memory per value that a whole `serde_json::Value` tree of it
//! would take (a 20 MB body holding a 10-million-element array parsed to ~1.5 GB before).

use std::cell::Cell;
use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use thiserror::Error;

/// What one body may hold. The defaults fit any batch the real clients send (posthog-python and
/// the Segment libraries cap a batch at 500 KB; a 20 MB body of events holds ~1M values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonLimits {
    /// Arrays and objects inside each other.
    pub max_depth: usize,
    /// Items of one array (a batch's events, a property's list).
    pub max_array_items: usize,
    /// Values of every kind in the whole body (each array, object, key's value and scalar).
    pub max_values: usize,
}

impl Default for JsonLimits {
    fn default() -> Self {
        JsonLimits { max_depth: 64, max_array_items: 100_000, max_values: 2_000_000 }
    }
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum JsonError {
    /// Not JSON at all (the parser's own message, with line and column).
    #[error("request body is not valid JSON: {0}")]
    Syntax(String),
    /// Valid as far as it was read, but over a limit.
    #[error("request body is too large: {0}")]
    OverLimit(String),
}

/// Parse `bytes` as one JSON value within `limits`.
pub fn parse(bytes: &[u8], limits: &JsonLimits) -> Result<Value, JsonError> {
    let budget = Budget { limits, values: Cell::new(0), over: Cell::new(None) };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = Limited { budget: &budget, depth: 0 }.deserialize(&mut deserializer).and_then(|value| {
        deserializer.end()?;
        Ok(value)
    });
    match (parsed, budget.over.take()) {
        (_, Some(over)) => Err(JsonError::OverLimit(over)),
        (Ok(value), None) => Ok(value),
        (Err(e), None) => Err(JsonError::Syntax(e.to_string())),
    }
}

/// Parse `bytes` within `limits` into a typed shape (through a [`Value`]: the typed shapes are
/// small, and the limits apply to the text whatever the shape asks for).
pub fn parse_as<T: serde::de::DeserializeOwned>(bytes: &[u8], limits: &JsonLimits) -> Result<T, JsonError> {
    // The error names where in the body the value was wrong (`segment_group: unknown variant…`).
    serde_path_to_error::deserialize(parse(bytes, limits)?).map_err(|e| match e.path().to_string() {
        path if path == "." => JsonError::Syntax(e.inner().to_string()),
        path => JsonError::Syntax(format!("{path}: {}", e.inner())),
    })
}

struct Budget<'a> {
    limits: &'a JsonLimits,
    values: Cell<usize>,
    /// The limit that stopped the parse, told apart from a syntax error.
    over: Cell<Option<String>>,
}

impl Budget<'_> {
    /// Count one more value.
    fn take<E: serde::de::Error>(&self) -> Result<(), E> {
        let values = self.values.get() + 1;
        self.values.set(values);
        if values > self.limits.max_values {
            return Err(self.refuse(format!("it holds more than {} JSON values", self.limits.max_values)));
        }
        Ok(())
    }

    fn refuse<E: serde::de::Error>(&self, why: String) -> E {
        let error = E::custom(&why);
        self.over.set(Some(why));
        error
    }
}

/// A value at `depth`, built as a [`Value`] while the budget lasts.
#[derive(Clone, Copy)]
struct Limited<'a, 'b> {
    budget: &'a Budget<'b>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Limited<'_, '_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.budget.take()?;
        deserializer.deserialize_any(self)
    }
}

impl Limited<'_, '_> {
    fn nested<E: serde::de::Error>(self) -> Result<Self, E> {
        let depth = self.depth + 1;
        if depth > self.budget.limits.max_depth {
            return Err(self
                .budget
                .refuse(format!("arrays and objects are nested more than {} deep", self.budget.limits.max_depth)));
        }
        Ok(Limited { depth, ..self })
    }
}

impl<'de> Visitor<'de> for Limited<'_, '_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let child = self.nested()?;
        let max = self.budget.limits.max_array_items;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(child)? {
            if items.len() == max {
                return Err(self.budget.refuse(format!("an array holds more than {max} items")));
            }
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let child = self.nested()?;
        let mut object = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(child)?;
            // As serde_json's own `Value`: a repeated key keeps its last value.
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

impl JsonError {
    /// Whether the body was refused for its size (413) rather than its syntax (400).
    pub fn is_over_limit(&self) -> bool {
        matches!(self, JsonError::OverLimit(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_within_the_limits_parse_like_serde_json() {
        let text = r#"{"batch":[{"event":"a","properties":{"n":1,"f":1.5,"neg":-3,"big":18446744073709551615,
            "s":"x\u00e9\n","t":true,"z":null,"list":[1,[2,[3]]],"o":{}}}],"k":"first","k":"last"}"#;
        let expected: Value = serde_json::from_str(text).expect("valid");
        assert_eq!(parse(text.as_bytes(), &JsonLimits::default()), Ok(expected));
        assert_eq!(parse(b"[]", &JsonLimits::default()), Ok(json!([])));
        assert_eq!(parse(b" 42 ", &JsonLimits::default()), Ok(json!(42)));
    }

    #[test]
    fn syntax_errors_are_not_limits() {
        for bad in [&b"{"[..], b"", b"[1,]", b"{\"a\":1} x", b"\xff", b"[1e999999]"] {
            let err = parse(bad, &JsonLimits::default()).expect_err("refused");
            assert!(!err.is_over_limit(), "{err}");
        }
    }

    #[test]
    fn a_long_array_is_refused_where_it_crosses_the_limit() {
        let limits = JsonLimits { max_array_items: 3, ..JsonLimits::default() };
        assert!(parse(b"[1,2,3]", &limits).is_ok());
        let err = parse(b"{\"p\":[1,2,3,4, oops this is never read", &limits).expect_err("refused");
        assert_eq!(err, JsonError::OverLimit("an array holds more than 3 items".into()));
    }

    #[test]
    fn depth_and_value_count_are_bounded() {
        let limits = JsonLimits { max_depth: 3, max_values: 6, ..JsonLimits::default() };
        assert!(parse(b"[[[1]]]", &limits).is_ok());
        assert!(parse(b"[[[[1]]]]", &limits).expect_err("deep").is_over_limit());
        assert!(parse(b"{\"a\":{\"b\":{\"c\":{}}}}", &limits).expect_err("deep").is_over_limit());
        assert!(parse(b"[1,2,3,4,5]", &limits).is_ok());
        assert!(parse(b"[1,2,3,4,5,6]", &limits).expect_err("many").is_over_limit());
        // Far past serde_json's own recursion limit: refused by ours first, without a stack overflow.
        let deep = "[".repeat(100_000);
        assert!(parse(deep.as_bytes(), &JsonLimits::default()).expect_err("deep").is_over_limit());
    }

    #[test]
    fn typed_shapes_parse_through_the_limits() {
        #[derive(serde::Deserialize, Debug, PartialEq)]
        struct Shape {
            values: Vec<u32>,
        }
        let limits = JsonLimits { max_array_items: 2, ..JsonLimits::default() };
        assert_eq!(parse_as::<Shape>(b"{\"values\":[1,2]}", &limits), Ok(Shape { values: vec![1, 2] }));
        assert!(parse_as::<Shape>(b"{\"values\":[1,2,3]}", &limits).expect_err("long").is_over_limit());
        assert!(!parse_as::<Shape>(b"{\"values\":\"x\"}", &limits).expect_err("type").is_over_limit());
    }
}
