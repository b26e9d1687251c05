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

/// What every protocol's `translate` returns: the project key the body itself names, if any
/// (PostHog's `api_key`, Segment's `writeKey`, Mixpanel's `token`, Amplitude's `api_key`, Trodo's
/// `siteId`; the route falls back to its header), and one result per item, so one bad item of a
/// batch does not reject the others. A single-message body (a native write, an OpenPanel call) is
/// one item.
#[derive(Debug)]
pub struct Translated {
    pub key: Option<String>,
    pub items: Vec<ItemResult>,
}

impl Translated {
    /// The commands of every item, or the first item's error: for routes that answer a request
    /// whole (single-message bodies).
    pub fn into_single(self) -> ItemResult {
        let mut commands = Vec::new();
        for item in self.items {
            commands.extend(item?);
        }
        Ok(commands)
    }
}
