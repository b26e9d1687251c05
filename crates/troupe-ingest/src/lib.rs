//! Wire protocols. Each module is a thin translation from one client's request bodies into
//! canonical [`troupe_core::Command`]s; the rules themselves live in the core. Errors are
//! [`troupe_core::CoreError`]s naming the field as the client spelled it.

pub mod amplitude;
pub mod export;
pub mod json;
pub mod mixpanel;
pub mod native;
pub mod openpanel;
pub mod posthog;
pub mod raw;
pub mod segment;
pub mod wire;

/// One item of a batch: its commands, or why it was rejected.
pub type ItemResult = Result<Vec<troupe_core::Command>, troupe_core::CoreError>;
