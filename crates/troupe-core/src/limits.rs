//! Size limits (DESIGN.md §8). Adapters call these with their own wire field names so that an
//! error names the field the client actually sent (`userId`, `distinct_id`, `groupKey`, …).

use crate::error::CoreError;
use crate::Properties;

/// Limits of one project. The defaults are the documented ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Serialized JSON size of one event's properties or one profile write.
    pub max_properties_bytes: usize,
    /// Characters in an event name.
    pub max_event_name_chars: usize,
    /// Characters in any id: distinct ids, group keys, group type names, event ids.
    pub max_id_chars: usize,
    /// Group types one project may have.
    pub max_group_types: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_properties_bytes: 32 * 1024, max_event_name_chars: 200, max_id_chars: 200, max_group_types: 10 }
    }
}

impl Limits {
    /// A non-empty id of at most `max_id_chars` characters.
    pub fn check_id(&self, field: &str, id: &str) -> Result<(), CoreError> {
        check_text(field, id, self.max_id_chars)
    }

    /// A non-empty event name of at most `max_event_name_chars` characters.
    pub fn check_event_name(&self, field: &str, name: &str) -> Result<(), CoreError> {
        check_text(field, name, self.max_event_name_chars)
    }

    /// Properties whose JSON serialization fits `max_properties_bytes`.
    pub fn check_properties(&self, field: &str, properties: &Properties) -> Result<(), CoreError> {
        self.check_serialized_size(field, properties)
    }

    /// Any JSON payload (a list of values for `union`, …) within `max_properties_bytes`.
    pub fn check_json_size(&self, field: &str, value: &serde_json::Value) -> Result<(), CoreError> {
        self.check_serialized_size(field, value)
    }

    /// Counted while serializing, without building the text: every event passes here on the
    /// single writer.
    fn check_serialized_size(&self, field: &str, value: &impl serde::Serialize) -> Result<(), CoreError> {
        let mut counter = ByteCounter(0);
        let bytes = serde_json::to_writer(&mut counter, value).map(|_| counter.0).unwrap_or(usize::MAX);
        self.check_json_len(field, bytes)
    }

    /// JSON text of `bytes` bytes within `max_properties_bytes`.
    pub fn check_json_len(&self, field: &str, bytes: usize) -> Result<(), CoreError> {
        if bytes > self.max_properties_bytes {
            return Err(CoreError::TooLarge { field: field.to_string(), bytes, max: self.max_properties_bytes });
        }
        Ok(())
    }
}

/// A writer that only counts the bytes written to it.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn check_text(field: &str, text: &str, max: usize) -> Result<(), CoreError> {
    // As `trim().is_empty()`, but stops at the first visible character.
    if text.chars().all(char::is_whitespace) {
        return Err(CoreError::missing(field));
    }
    // A text has at most as many characters as bytes: most ids are settled without counting.
    if text.len() <= max {
        return Ok(());
    }
    let len = text.chars().count();
    if len > max {
        return Err(CoreError::TooLong { field: field.to_string(), len, max });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_must_be_non_empty_and_at_most_200_chars() {
        let limits = Limits::default();
        assert!(limits.check_id("userId", &"a".repeat(200)).is_ok());
        let err = limits.check_id("userId", &"a".repeat(201)).unwrap_err();
        assert_eq!(err, CoreError::TooLong { field: "userId".into(), len: 201, max: 200 });
        assert_eq!(limits.check_id("userId", " ").unwrap_err(), CoreError::missing("userId"));
    }

    #[test]
    fn ids_are_counted_in_characters_not_bytes() {
        assert!(Limits::default().check_id("groupId", &"é".repeat(200)).is_ok());
    }

    #[test]
    fn properties_over_32_kib_are_rejected_naming_the_field() {
        let limits = Limits::default();
        let mut props = Properties::new();
        props.insert("blob".into(), json!("x".repeat(32 * 1024)));
        let err = limits.check_properties("custom_properties", &props).unwrap_err();
        assert_eq!(err.field(), "custom_properties");
        assert_eq!(err.code(), "too_large");
        props.insert("blob".into(), json!("x".repeat(32 * 1024 - 20)));
        assert!(limits.check_properties("custom_properties", &props).is_ok());
    }
}
