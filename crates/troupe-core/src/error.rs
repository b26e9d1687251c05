//! The one error type of the core rules. Every variant names the field or property at fault so
//! that the HTTP layer can answer with a JSON error a client developer can act on.

use thiserror::Error;

/// A rule was violated by one command. Nothing of that command was applied.
#[derive(Debug, Clone, PartialEq, Error, serde::Serialize, serde::Deserialize)]
#[serde(tag = "error", rename_all = "snake_case")]
pub enum CoreError {
    #[error("{field} is required")]
    Missing { field: String },

    #[error("{field} is too long: {len} characters, the limit is {max}")]
    TooLong { field: String, len: usize, max: usize },

    #[error("{field} is too large: {bytes} bytes of JSON, the limit is {max}")]
    TooLarge { field: String, bytes: usize, max: usize },

    #[error("{field}: {message}")]
    Invalid { field: String, message: String },

    #[error(
        "{field}: group type limit reached: the project already has {limit} group types, \
         so '{group_type}' cannot be created. Delete one you no longer use (dashboard: Settings → \
         Group types; API: DELETE /api/projects/<project>/group-types/<type>; CLI: troupe group-type \
         delete <type>) or raise the limit (--max-group-types)"
    )]
    GroupTypeLimit { field: String, group_type: String, limit: usize },

    #[error("property '{property}' is {found}, not a number: increment needs a number")]
    NotANumber { property: String, found: String },

    #[error("property '{property}' is {found}, not a list: {op} needs a list")]
    NotAList { property: String, found: String, op: String },
}

impl CoreError {
    /// A stable machine-readable code for the JSON error body.
    pub fn code(&self) -> &'static str {
        match self {
            CoreError::Missing { .. } => "missing_field",
            CoreError::TooLong { .. } => "too_long",
            CoreError::TooLarge { .. } => "too_large",
            CoreError::Invalid { .. } => "invalid_field",
            CoreError::GroupTypeLimit { .. } => "group_type_limit",
            CoreError::NotANumber { .. } => "not_a_number",
            CoreError::NotAList { .. } => "not_a_list",
        }
    }

    /// The wire field (or profile property) the error is about.
    pub fn field(&self) -> &str {
        match self {
            CoreError::Missing { field }
            | CoreError::TooLong { field, .. }
            | CoreError::TooLarge { field, .. }
            | CoreError::Invalid { field, .. }
            | CoreError::GroupTypeLimit { field, .. } => field,
            CoreError::NotANumber { property, .. } | CoreError::NotAList { property, .. } => property,
        }
    }

    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::Invalid { field: field.into(), message: message.into() }
    }

    pub fn missing(field: impl Into<String>) -> Self {
        CoreError::Missing { field: field.into() }
    }
}

/// What JSON type a value is, for error messages ("property 'plan' is a string, not a number").
pub fn json_kind(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "a list",
        serde_json::Value::Object(_) => "an object",
    }
}
