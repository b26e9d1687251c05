//! JSON objects read one level deep: each member's value stays the raw JSON text it was sent
//! as, borrowed from the input. For bulk paths (the import) where most of an event — its
//! properties — is stored as JSON text anyway: checking it once as valid JSON and copying the
//! text costs a fraction of building a map of values and serializing it again.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

/// Members kept in a list until this many; past it, repeated keys are found through a map.
const LINEAR_LOOKUP_MEMBERS: usize = 32;

/// A JSON object's members in order, values unparsed. A repeated key keeps its first place
/// and its last value, as serde_json's own (order-preserving) map does.
#[derive(Debug, Default)]
pub struct RawObject<'a> {
    members: Vec<(Cow<'a, str>, &'a RawValue)>,
}

impl<'a> RawObject<'a> {
    /// The object `text`, or why it is not one (a JSON syntax error, or another kind of value).
    pub fn parse(text: &'a str) -> serde_json::Result<Self> {
        serde_json::from_str(text)
    }

    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.members.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// A member's value parsed, `None` when absent.
    pub fn value(&self, key: &str) -> Option<Value> {
        self.get(key).map(parsed)
    }

    /// Take a member out, parsed.
    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let at = self.members.iter().position(|(k, _)| k == key)?;
        let (_, raw) = self.members.remove(at);
        Some(parsed(raw))
    }

    /// Every member parsed, as a map.
    pub fn parsed(&self) -> serde_json::Map<String, Value> {
        self.members.iter().map(|(k, raw)| (k.to_string(), parsed(raw))).collect()
    }

    /// The object as compact JSON text: keys escaped as JSON, values copied as they came.
    pub fn to_json(&self) -> String {
        let len: usize = self.members.iter().map(|(k, v)| k.len() + v.get().len() + 4).sum();
        let mut out = String::with_capacity(len + 2);
        out.push('{');
        for (i, (key, value)) in self.members.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            // Serializing a string cannot fail.
            out.push_str(&serde_json::to_string(key.as_ref()).unwrap_or_default());
            out.push(':');
            out.push_str(value.get());
        }
        out.push('}');
        out
    }

    fn insert(&mut self, key: Cow<'a, str>, value: &'a RawValue, index: &mut Option<foldhash::HashMap<String, usize>>) {
        let existing = match index {
            Some(index) => index.get(key.as_ref()).copied(),
            None => self.members.iter().position(|(k, _)| *k == key),
        };
        match existing {
            Some(at) => self.members[at].1 = value,
            None => {
                if let Some(index) = index {
                    index.insert(key.to_string(), self.members.len());
                }
                self.members.push((key, value));
                if index.is_none() && self.members.len() > LINEAR_LOOKUP_MEMBERS {
                    *index = Some(self.members.iter().enumerate().map(|(i, (k, _))| (k.to_string(), i)).collect());
                }
            }
        }
    }
}

/// A raw value as a JSON value. Its text was checked as JSON when the object was read.
fn parsed(raw: &RawValue) -> Value {
    serde_json::from_str(raw.get()).unwrap_or(Value::Null)
}

/// A JSON object whose member `nested` is read as an object of raw members in the same pass
/// (rather than kept as raw text and read again), and that member: `None` when absent or
/// null, `Err(())` when it is not an object.
pub type WithNested<'a> = (RawObject<'a>, Result<Option<RawObject<'a>>, ()>);

/// `text` as a [`WithNested`] object.
pub fn parse_with_nested<'a>(text: &'a str, nested: &'static str) -> serde_json::Result<WithNested<'a>> {
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let parsed = deserializer.deserialize_map(NestedVisitor { nested })?;
    deserializer.end()?;
    Ok(parsed)
}

struct NestedVisitor {
    nested: &'static str,
}

impl<'de> Visitor<'de> for NestedVisitor {
    type Value = WithNested<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        read_members(map, Some(self.nested))
    }
}

/// An object's members; the one named `nested`, if any, read as an object of its own.
fn read_members<'de, A: MapAccess<'de>>(mut map: A, nested: Option<&str>) -> Result<WithNested<'de>, A::Error> {
    let mut object = RawObject { members: Vec::with_capacity(map.size_hint().unwrap_or(8)) };
    let mut inner = Ok(None);
    let mut index = None;
    while let Some(Key(key)) = map.next_key()? {
        if nested == Some(key.as_ref()) {
            inner = map.next_value::<MaybeObject>()?.0;
        } else {
            let value: &'de RawValue = map.next_value()?;
            object.insert(key, value, &mut index);
        }
    }
    Ok((object, inner))
}

/// An object of raw members, nothing for null, or `Err(())` for any other value.
struct MaybeObject<'a>(Result<Option<RawObject<'a>>, ()>);

impl<'de> Deserialize<'de> for MaybeObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(MaybeObjectVisitor)
    }
}

struct MaybeObjectVisitor;

impl<'de> Visitor<'de> for MaybeObjectVisitor {
    type Value = MaybeObject<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        ObjectVisitor.visit_map(map).map(|o| MaybeObject(Ok(Some(o))))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(MaybeObject(Ok(None)))
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(MaybeObject(Err(())))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(MaybeObject(Err(())))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(MaybeObject(Err(())))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(MaybeObject(Err(())))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(MaybeObject(Err(())))
    }

    fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
        Ok(MaybeObject(Err(())))
    }
}

impl<'de> Deserialize<'de> for RawObject<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ObjectVisitor)
    }
}

struct ObjectVisitor;

impl<'de> Visitor<'de> for ObjectVisitor {
    type Value = RawObject<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        read_members(map, None).map(|(object, _)| object)
    }
}

/// A member name, borrowed from the input unless it had escapes to undo.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v.to_string())))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Key(Cow::Owned(v)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Rewritten text means the same JSON, members in order, repeated keys as serde_json keeps
    /// them, escapes in keys and values intact.
    #[test]
    fn rewritten_objects_mean_what_they_said() {
        let many: String = (0..40).map(|i| format!("\"k{i}\": {i}, ")).collect();
        for text in [
            r#"{}"#,
            r#"{"a": 1, "b": {"c": [1, 2, {"d": null}]}, "e": "x\"y\\z\u00e9"}"#,
            r#"{"a\nb": true, "plain": 1.50, "big": 12345678901234567890}"#,
            r#"{"a": 1, "b": 2, "a": 3}"#,
            &format!("{{{many}\"k3\": \"again\", \"last\": 0}}"),
        ] {
            let object = RawObject::parse(text).expect("an object");
            let through_values: Value = serde_json::from_str(text).expect("valid JSON");
            let rewritten: Value = serde_json::from_str(&object.to_json()).expect("rewritten text is JSON");
            assert_eq!(rewritten, through_values, "{text}");
            let keys = |v: &Value| v.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>());
            assert_eq!(keys(&rewritten), keys(&through_values), "member order of {text}");
        }
    }

    #[test]
    fn members_are_read_and_taken_out_parsed() {
        let mut object = RawObject::parse(r#"{"$set": {"plan": "pro"}, "n": 2, "s": "t"}"#).expect("an object");
        assert_eq!(object.value("n"), Some(json!(2)));
        assert_eq!(object.remove("$set"), Some(json!({"plan": "pro"})));
        assert_eq!(object.remove("$set"), None);
        assert_eq!(object.to_json(), r#"{"n":2,"s":"t"}"#);
        assert_eq!(object.parsed(), json!({"n": 2, "s": "t"}).as_object().cloned().unwrap_or_default());
    }

    #[test]
    fn other_values_and_broken_text_are_refused() {
        for text in ["[1, 2]", "\"text\"", "null", "{\"a\": }", "{\"a\": 1"] {
            assert!(RawObject::parse(text).is_err(), "{text}");
        }
    }
}
