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

/// The earliest event time troupe stores: the Unix epoch. Earlier times are a client bug (an
/// unset clock, a zero-filled field) in product analytics, and both backends' time columns
/// start there.
pub const EARLIEST_TIME: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// The first time after the range troupe stores (2100-01-01T00:00:00Z), inside every backend's
/// time column (ClickHouse's `DateTime` ends in 2106).
pub const END_OF_TIME: DateTime<Utc> = match DateTime::from_timestamp(4_102_444_800, 0) {
    Some(t) => t,
    None => DateTime::UNIX_EPOCH,
};

/// How an error says what [`in_time_range`] accepts.
pub const TIME_RANGE: &str = "times must be from 1970-01-01 to 2099-12-31 (UTC)";

/// Whether `t` is in the range of times troupe stores, `[EARLIEST_TIME, END_OF_TIME)`.
pub fn in_time_range(t: DateTime<Utc>) -> bool {
    (EARLIEST_TIME..END_OF_TIME).contains(&t)
}

/// The event's time: the client's timestamp corrected by the skew between the client's
/// `sent_at` and our receive time; the receive time when the client gave none.
///
/// Total for any input: a correction that would leave the range troupe stores (a client whose
/// `sent_at` and `timestamp` are decades apart), a time more than [`MAX_FUTURE`] ahead, or a
/// time before 1970 gives the receive time, as PostHog does for timestamps it cannot use.
/// Adapters refuse out-of-range times with a 400 before this; the check here keeps the writer
/// safe from any caller.
pub fn resolve_timestamp(
    timestamp: Option<DateTime<Utc>>,
    sent_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let resolved = match (timestamp, sent_at) {
        // Both are within chrono's range, so their difference is a valid TimeDelta.
        (Some(ts), Some(sent)) => now.checked_sub_signed(sent.signed_duration_since(ts)),
        (Some(ts), None) => Some(ts),
        (None, _) => None,
    };
    let latest = now.checked_add_signed(MAX_FUTURE).unwrap_or(now);
    match resolved {
        Some(t) if in_time_range(t) && t <= latest => t,
        _ => now,
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

    #[test]
    fn extreme_times_and_skews_never_panic_and_fall_back_to_now() {
        let now = at(12, 0, 0);
        let extremes = [DateTime::<Utc>::MIN_UTC, DateTime::<Utc>::MAX_UTC, EARLIEST_TIME, END_OF_TIME, now];
        for ts in extremes {
            for sent in extremes {
                let resolved = resolve_timestamp(Some(ts), Some(sent), now);
                assert!(in_time_range(resolved), "{ts} sent {sent} gave {resolved}");
            }
            assert!(in_time_range(resolve_timestamp(Some(ts), None, now)));
        }
        // The body: epoch ms 8210000000000000 (year ~262,000) with sent_at 0.
        let far = DateTime::from_timestamp_millis(8_210_000_000_000_000).unwrap_or(DateTime::<Utc>::MAX_UTC);
        assert_eq!(resolve_timestamp(Some(far), Some(EARLIEST_TIME), now), now);
        // A correction that lands before 1970 is no time troupe stores either: stamped at the
        // epoch, sent in 2099, received now.
        let sent = END_OF_TIME - Duration::days(1);
        assert_eq!(resolve_timestamp(Some(EARLIEST_TIME), Some(sent), now), now);
    }
}
