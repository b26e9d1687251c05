//! Events as they arrive (`TrackEvent`) and as they are stored (`StoredEvent`), and the time
//! rules of DESIGN.md §9.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use crate::group_types::Slot;
use crate::Properties;

/// A tracked event in canonical form, after a wire adapter translated it.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct TrackEvent {
    pub event: String,
    pub distinct_id: String,
    /// The client's event id (`uuid`, `messageId`, `$insert_id`), used for deduplication.
    pub id: Option<String>,
    /// When the event happened by the client's clock.
    pub timestamp: Option<DateTime<Utc>>,
    /// When the client sent the request, by the same clock: corrects clock skew.
    pub sent_at: Option<DateTime<Utc>>,
    pub properties: Properties,
    /// Group ids given explicitly on the event, per type name. They win over membership.
    pub groups: Vec<(String, Vec<String>)>,
    /// Group ids without a type (OpenPanel `setGroup('org_acme')`), resolved at query time.
    pub untyped_groups: Vec<String>,
}

/// An event as stored: attribution stamped, time resolved. Never rewritten.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredEvent {
    /// The client's id, or one the server generated.
    pub uuid: String,
    /// Hash of the client's id; `None` when the server generated the uuid.
    pub dedup_key: Option<u64>,
    pub event: String,
    pub distinct_id: String,
    pub timestamp: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    /// The event's properties as JSON text, serialized once before the writer.
    pub properties_json: String,
    /// Group ids per group type slot, stamped at ingest.
    pub groups: BTreeMap<Slot, Vec<String>>,
    pub untyped_groups: Vec<String>,
}

/// How far ahead of the server's clock a timestamp may be before it is taken as a client bug
/// and replaced by the receive time (PostHog uses the same 23 h bound).
pub const MAX_FUTURE: Duration = Duration::hours(23);

/// The event's time: the client's timestamp corrected by the skew between the client's
/// `sent_at` and our receive time; the receive time when the client gave none.
pub fn resolve_timestamp(
    timestamp: Option<DateTime<Utc>>,
    sent_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let resolved = match (timestamp, sent_at) {
        (Some(ts), Some(sent)) => now - (sent - ts),
        (Some(ts), None) => ts,
        (None, _) => now,
    };
    if resolved > now + MAX_FUTURE {
        now
    } else {
        resolved
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 23, h, m, s).single().unwrap_or_default()
    }

    #[test]
    fn client_timestamps_are_honoured_for_historical_import() {
        let then = Utc.with_ymd_and_hms(2024, 1, 2, 3, 4, 5).single().unwrap_or_default();
        assert_eq!(resolve_timestamp(Some(then), None, at(12, 0, 0)), then);
    }

    #[test]
    fn sent_at_corrects_a_client_clock_that_runs_ahead() {
        // The client's clock is 10 minutes fast: it stamped 12:10 and sent at 12:11, we
        // received at 12:01, so the event happened at 12:00 by our clock.
        let resolved = resolve_timestamp(Some(at(12, 10, 0)), Some(at(12, 11, 0)), at(12, 1, 0));
        assert_eq!(resolved, at(12, 0, 0));
    }

    #[test]
    fn no_timestamp_means_now_and_far_future_timestamps_are_clamped() {
        assert_eq!(resolve_timestamp(None, None, at(12, 0, 0)), at(12, 0, 0));
        let future = at(12, 0, 0) + Duration::days(2);
        assert_eq!(resolve_timestamp(Some(future), None, at(12, 0, 0)), at(12, 0, 0));
    }
}
