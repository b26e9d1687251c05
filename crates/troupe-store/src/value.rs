//! How a property value reads in a filter, defined once for the query layer's scan path and for
//! backends that evaluate filters themselves: its text, its number, whether it is a JSON number.
//! [`PropertyIndex`] is those three per top-level property, what a backend stores beside each
//! event to evaluate [`crate::aggregate::ValueCondition`]s exactly.

use serde_json::Value;
use troupe_core::Properties;

/// A value as text: a string as itself, anything else as its JSON.
pub fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A value as a number: a JSON number, or a string that parses as one (after trimming; "NaN"
/// is not a number).
pub fn number_of(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok().filter(|n| !n.is_nan()),
        _ => None,
    }
}

/// Numbers compare as numbers (`1` equals `1.0` and `"1"`), everything else by its text.
pub fn equal(a: &Value, b: &Value) -> bool {
    match (number_of(a), number_of(b)) {
        (Some(x), Some(y)) if a.is_number() || b.is_number() => x == y,
        _ => text_of(a) == text_of(b),
    }
}

/// What kind of JSON value a property holds, as stored in [`PropertyIndex::kinds`].
pub const KIND_STRING: u8 = 0;
pub const KIND_NUMBER: u8 = 1;
pub const KIND_OTHER: u8 = 2;

/// The top-level properties of an event that are set (not null), in parallel arrays.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PropertyIndex {
    pub keys: Vec<String>,
    pub texts: Vec<String>,
    /// The texts lowercased with Unicode's rules, for case-insensitive matching.
    pub lowers: Vec<String>,
    /// [`number_of`], NaN where there is none.
    pub numbers: Vec<f64>,
    pub kinds: Vec<u8>,
}

impl PropertyIndex {
    pub fn new(properties: &Properties) -> Self {
        let mut index = PropertyIndex::default();
        for (key, value) in properties.iter().filter(|(_, v)| !v.is_null()) {
            index.keys.push(key.clone());
            let text = text_of(value);
            index.lowers.push(text.to_lowercase());
            index.texts.push(text);
            index.numbers.push(number_of(value).unwrap_or(f64::NAN));
            index.kinds.push(match value {
                Value::String(_) => KIND_STRING,
                Value::Number(_) => KIND_NUMBER,
                _ => KIND_OTHER,
            });
        }
        index
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn numbers_compare_as_numbers_and_the_rest_as_text() {
        assert!(equal(&json!(1), &json!(1.0)) && equal(&json!(" 1 "), &json!(1)) && equal(&json!("1"), &json!(1)));
        assert!(!equal(&json!("1.0"), &json!("1")), "two strings compare as text");
        assert!(equal(&json!(true), &json!("true")));
    }

    #[test]
    fn the_index_leaves_out_nulls_and_keeps_each_reading() {
        let props: Properties =
            serde_json::from_value(json!({"a": "x", "b": 2.5, "c": null, "d": [1], "e": "7"})).unwrap_or_default();
        let index = PropertyIndex::new(&props);
        assert_eq!(index.keys, vec!["a", "b", "d", "e"]);
        assert_eq!(index.texts, vec!["x", "2.5", "[1]", "7"]);
        let kelvin: Properties = serde_json::from_value(json!({"t": "\u{212A}elvin"})).unwrap_or_default();
        assert_eq!(PropertyIndex::new(&kelvin).lowers, vec!["kelvin"], "Unicode lowercasing, not ASCII");
        assert_eq!(index.kinds, vec![KIND_STRING, KIND_NUMBER, KIND_OTHER, KIND_STRING]);
        assert!(index.numbers[0].is_nan() && index.numbers[1] == 2.5 && index.numbers[3] == 7.0);
    }
}
