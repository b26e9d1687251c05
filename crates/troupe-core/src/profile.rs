//! Profile operations on a person's or a group's properties (DESIGN.md §5).
//!
//! Every operation is all-or-nothing: it is computed on a copy and only replaces the properties
//! when every key succeeded, so a failing `increment` of two keys changes neither.

use serde_json::{Number, Value};

use crate::error::{json_kind, CoreError};
use crate::Properties;

/// One write to a profile. Mixpanel's map-shaped ops (`$add {a: 1, b: 2}`) carry several keys;
/// Trodo's carry one.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "op", content = "args", rename_all = "snake_case")]
pub enum ProfileOp {
    /// Overwrite each key.
    Set(Properties),
    /// Write each key only where it is absent.
    SetOnce(Properties),
    /// Remove each key.
    Unset(Vec<String>),
    /// Add a number to each key (absent counts as 0). Values are numbers by construction.
    Increment(Vec<(String, Number)>),
    /// Append values to a list, duplicates kept (absent starts an empty list).
    Append(Vec<(String, Vec<Value>)>),
    /// Append the values not already in the list.
    Union(Vec<(String, Vec<Value>)>),
    /// Remove every occurrence of the values from a list.
    Remove(Vec<(String, Vec<Value>)>),
    /// Delete the whole profile. Handled by the entity owner, a no-op on properties.
    Delete,
}

impl ProfileOp {
    /// The op's name as the API spells it, for logs and errors.
    pub fn name(&self) -> &'static str {
        match self {
            ProfileOp::Set(_) => "set",
            ProfileOp::SetOnce(_) => "set_once",
            ProfileOp::Unset(_) => "unset",
            ProfileOp::Increment(_) => "increment",
            ProfileOp::Append(_) => "append",
            ProfileOp::Union(_) => "union",
            ProfileOp::Remove(_) => "remove",
            ProfileOp::Delete => "delete",
        }
    }

    /// A JSON image of the write, for the size limit.
    pub fn payload(&self) -> Value {
        let pairs = |pairs: &Vec<(String, Vec<Value>)>| {
            Value::Object(pairs.iter().map(|(k, v)| (k.clone(), Value::Array(v.clone()))).collect())
        };
        match self {
            ProfileOp::Set(p) | ProfileOp::SetOnce(p) => Value::Object(p.clone()),
            ProfileOp::Unset(keys) => keys.iter().map(|k| Value::String(k.clone())).collect(),
            ProfileOp::Increment(p) => {
                Value::Object(p.iter().map(|(k, n)| (k.clone(), Value::Number(n.clone()))).collect())
            }
            ProfileOp::Append(p) | ProfileOp::Union(p) | ProfileOp::Remove(p) => pairs(p),
            ProfileOp::Delete => Value::Null,
        }
    }

    /// Build an `increment` from JSON values, refusing anything that is not a number.
    pub fn increment_from(
        field: &str,
        pairs: impl IntoIterator<Item = (String, Value)>,
    ) -> Result<ProfileOp, CoreError> {
        let mut out = Vec::new();
        for (key, value) in pairs {
            match value {
                Value::Number(n) => out.push((key, n)),
                other => {
                    return Err(CoreError::invalid(
                        field,
                        format!("increment of '{key}' needs a number, got {}", json_kind(&other)),
                    ))
                }
            }
        }
        Ok(ProfileOp::Increment(out))
    }
}

/// Apply `op` to `props`. Returns whether anything changed.
pub fn apply(props: &mut Properties, op: &ProfileOp) -> Result<bool, CoreError> {
    let mut next = props.clone();
    match op {
        ProfileOp::Set(values) => {
            for (k, v) in values {
                next.insert(k.clone(), v.clone());
            }
        }
        ProfileOp::SetOnce(values) => {
            for (k, v) in values {
                next.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        ProfileOp::Unset(keys) => {
            for k in keys {
                next.shift_remove(k);
            }
        }
        ProfileOp::Increment(pairs) => {
            for (k, by) in pairs {
                let sum = match next.get(k) {
                    None | Some(Value::Null) => by.clone(),
                    Some(Value::Number(current)) => add_numbers(k, current, by)?,
                    Some(other) => {
                        return Err(CoreError::NotANumber { property: k.clone(), found: json_kind(other).into() })
                    }
                };
                next.insert(k.clone(), Value::Number(sum));
            }
        }
        ProfileOp::Append(pairs) => {
            for (k, values) in pairs {
                list_mut(&mut next, k, "append")?.extend(values.iter().cloned());
            }
        }
        ProfileOp::Union(pairs) => {
            for (k, values) in pairs {
                let list = list_mut(&mut next, k, "union")?;
                for v in values {
                    if !list.contains(v) {
                        list.push(v.clone());
                    }
                }
            }
        }
        ProfileOp::Remove(pairs) => {
            for (k, values) in pairs {
                match next.get_mut(k) {
                    None | Some(Value::Null) => {}
                    Some(Value::Array(list)) => list.retain(|item| !values.contains(item)),
                    Some(other) => {
                        return Err(CoreError::NotAList {
                            property: k.clone(),
                            found: json_kind(other).into(),
                            op: "remove".into(),
                        })
                    }
                }
            }
        }
        ProfileOp::Delete => {}
    }
    let changed = next != *props;
    *props = next;
    Ok(changed)
}

/// The list at `key`, created empty when absent; an error when it holds something else.
fn list_mut<'a>(props: &'a mut Properties, key: &str, op: &'static str) -> Result<&'a mut Vec<Value>, CoreError> {
    let slot = props.entry(key.to_string()).or_insert(Value::Null);
    if slot.is_null() {
        *slot = Value::Array(Vec::new());
    }
    match slot {
        Value::Array(list) => Ok(list),
        other => Err(CoreError::NotAList { property: key.to_string(), found: json_kind(other).into(), op: op.into() }),
    }
}

/// Integers stay integers while they fit; anything else is added as a float.
fn add_numbers(key: &str, a: &Number, b: &Number) -> Result<Number, CoreError> {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        if let Some(sum) = x.checked_add(y) {
            return Ok(Number::from(sum));
        }
    }
    let sum = a.as_f64().unwrap_or(0.0) + b.as_f64().unwrap_or(0.0);
    Number::from_f64(sum)
        .ok_or_else(|| CoreError::invalid(key, "increment overflowed to a value that is not a finite number"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn props(v: Value) -> Properties {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn set_overwrites_and_set_once_keeps_the_first_value() {
        let mut p = props(json!({"plan": "free"}));
        apply(&mut p, &ProfileOp::Set(props(json!({"plan": "pro", "seats": 3})))).unwrap();
        apply(&mut p, &ProfileOp::SetOnce(props(json!({"plan": "x", "created": "2020"})))).unwrap();
        assert_eq!(Value::Object(p), json!({"plan": "pro", "seats": 3, "created": "2020"}));
    }

    #[test]
    fn unset_removes_keys_and_keeps_the_order_of_the_rest() {
        let mut p = props(json!({"a": 1, "b": 2, "c": 3}));
        apply(&mut p, &ProfileOp::Unset(vec!["b".into(), "missing".into()])).unwrap();
        assert_eq!(p.keys().collect::<Vec<_>>(), vec!["a", "c"]);
    }

    #[test]
    fn increment_adds_integers_as_integers_and_starts_absent_keys_at_zero() {
        let mut p = props(json!({"seats": 5}));
        let op = ProfileOp::increment_from("f", [("seats".into(), json!(5)), ("logins".into(), json!(1))]).unwrap();
        apply(&mut p, &op).unwrap();
        assert_eq!(Value::Object(p.clone()), json!({"seats": 10, "logins": 1}));
        let op = ProfileOp::increment_from("f", [("seats".into(), json!(0.5))]).unwrap();
        apply(&mut p, &op).unwrap();
        assert_eq!(p["seats"], json!(10.5));
    }

    #[test]
    fn increment_of_a_non_number_property_is_an_error_and_changes_nothing() {
        let mut p = props(json!({"plan": "pro", "seats": 1}));
        let op = ProfileOp::increment_from("f", [("seats".into(), json!(1)), ("plan".into(), json!(1))]).unwrap();
        let err = apply(&mut p, &op).unwrap_err();
        assert_eq!(err, CoreError::NotANumber { property: "plan".into(), found: "a string".into() });
        assert_eq!(p["seats"], json!(1), "the op is all-or-nothing");
    }

    #[test]
    fn increment_by_a_non_number_is_refused_when_built() {
        let err = ProfileOp::increment_from("value", [("seats".into(), json!("5"))]).unwrap_err();
        assert_eq!(err.field(), "value");
    }

    #[test]
    fn append_keeps_duplicates_and_union_does_not() {
        let mut p = Properties::new();
        apply(&mut p, &ProfileOp::Append(vec![("tags".into(), vec![json!("a"), json!("a")])])).unwrap();
        apply(&mut p, &ProfileOp::Union(vec![("tags".into(), vec![json!("a"), json!("b")])])).unwrap();
        apply(&mut p, &ProfileOp::Union(vec![("f".into(), vec![json!("sso"), json!("sso")])])).unwrap();
        assert_eq!(p["tags"], json!(["a", "a", "b"]));
        assert_eq!(p["f"], json!(["sso"]));
    }

    #[test]
    fn remove_deletes_every_occurrence_from_a_list() {
        let mut p = props(json!({"tags": ["a", "b", "a", 1]}));
        apply(&mut p, &ProfileOp::Remove(vec![("tags".into(), vec![json!("a"), json!(1)])])).unwrap();
        assert_eq!(p["tags"], json!(["b"]));
        assert!(!apply(&mut p, &ProfileOp::Remove(vec![("nope".into(), vec![json!(1)])])).unwrap());
    }

    #[test]
    fn list_ops_on_a_scalar_are_errors() {
        let mut p = props(json!({"plan": "pro"}));
        for op in [
            ProfileOp::Append(vec![("plan".into(), vec![json!(1)])]),
            ProfileOp::Union(vec![("plan".into(), vec![json!(1)])]),
            ProfileOp::Remove(vec![("plan".into(), vec![json!(1)])]),
        ] {
            let err = apply(&mut p, &op).unwrap_err();
            assert_eq!(err.code(), "not_a_list", "{op:?}");
        }
        assert_eq!(Value::Object(p), json!({"plan": "pro"}));
    }

    #[test]
    fn apply_reports_whether_anything_changed() {
        let mut p = props(json!({"plan": "pro"}));
        assert!(!apply(&mut p, &ProfileOp::Set(props(json!({"plan": "pro"})))).unwrap());
        assert!(apply(&mut p, &ProfileOp::Set(props(json!({"plan": "team"})))).unwrap());
    }
}
