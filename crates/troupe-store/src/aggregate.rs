//! Aggregates a backend may compute itself instead of returning a scan (push-down).
//!
//! A backend that can answer in its own engine (ClickHouse: `uniqExact`, `groupUniqArray`,
//! arrays) offers [`Aggregates`] through [`crate::Store::aggregates`] and returns the small
//! aggregate; one that does not (the embedded store, whose scan *is* its engine) offers nothing,
//! and the query layer computes from [`crate::EventScan`] as usual. Both give the same answers: the requests below
//! only carry what every backend evaluates the same way, and the query layer turns the answers
//! into results with the same code as its scan path.
//!
//! Periods are identified by a [`period_key`], an integer defined here once: backends compute
//! it in their own dialect and the query layer maps keys back to its buckets.

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use troupe_core::ProjectId;

use crate::StoreError;

/// Whose events: persons (after identity merges) or the groups of one type (typed ids, plus
/// untyped ids naming a group of the type that has a profile, as in a scan).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ActorKind {
    Persons,
    Group(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeriodUnit {
    /// A real hour starting at a local full hour.
    Hour,
    Day,
    Week {
        monday: bool,
    },
    Month,
}

/// How events are cut into periods: local calendar periods of a timezone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Periods {
    pub tz: Tz,
    pub unit: PeriodUnit,
}

/// The key of the period holding `at`: local day number since 1970-01-01 for days; the day
/// number of the week's first day divided by 7 for weeks; `year * 12 + month - 1` for months;
/// the epoch second of the hour's start for hours. Equal keys, same period.
pub fn period_key(periods: &Periods, at: DateTime<Utc>) -> i64 {
    let local = at.with_timezone(&periods.tz);
    let day = i64::from(local.date_naive().num_days_from_ce()) - UNIX_EPOCH_DAY;
    match periods.unit {
        PeriodUnit::Hour => at.timestamp() - i64::from(local.minute()) * 60 - i64::from(local.second()),
        PeriodUnit::Day => day,
        PeriodUnit::Week { monday } => {
            let weekday = local.weekday();
            let back = if monday { weekday.num_days_from_monday() } else { weekday.num_days_from_sunday() };
            (day - i64::from(back)).div_euclid(7)
        }
        PeriodUnit::Month => i64::from(local.year()) * 12 + i64::from(local.month0()),
    }
}

/// `num_days_from_ce` of 1970-01-01.
const UNIX_EPOCH_DAY: i64 = 719_163;

/// An event test every backend evaluates itself: one of some names, or any event (`None`), and
/// a condition on the event's actors when there is one.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventTest {
    pub events: Option<Vec<String>>,
    pub condition: Option<Condition>,
}

impl EventTest {
    pub fn any() -> Self {
        EventTest::default()
    }

    pub fn named(name: &str) -> Self {
        EventTest { events: Some(vec![name.to_string()]), condition: None }
    }

    /// Passes what any of `tests` passes.
    pub fn any_of<'a>(tests: impl IntoIterator<Item = &'a EventTest> + Clone) -> Self {
        let names = Self::names_of(tests.clone());
        if tests.clone().into_iter().all(|t| t.condition.is_none()) {
            return EventTest { events: names, condition: None };
        }
        let each = tests.into_iter().map(|t| {
            let name = t.events.clone().map(Condition::Events);
            Condition::All(name.into_iter().chain(t.condition.clone()).collect())
        });
        EventTest { events: names, condition: Some(Condition::Any(each.collect())) }
    }

    /// The names any of `tests` may pass (`None`: any name), what narrows a read.
    pub fn names_of<'a>(tests: impl IntoIterator<Item = &'a EventTest>) -> Option<Vec<String>> {
        let mut names = Vec::new();
        for t in tests {
            names.extend(t.events.as_ref()?.iter().cloned());
        }
        names.sort();
        names.dedup();
        Some(names)
    }
}

/// A condition on an event. Who the event is for is decided by the query layer per actor from
/// profiles (with its own rules for properties and cohorts) and handed over as sets of ids, so
/// every backend evaluates it alike; an event's own properties are tested by the backend with
/// the readings of [`crate::value`].
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    All(Vec<Condition>),
    Any(Vec<Condition>),
    Not(Box<Condition>),
    /// The event's name is one of these.
    Events(Vec<String>),
    /// A top-level property of the event (a null value is not set).
    EventProperty {
        key: String,
        test: ValueCondition,
    },
    /// The event's person, as it resolves now (its distinct id when no person has it any
    /// more), is in the set.
    Person(IdSet),
    /// One of the event's groups of the type (resolved as for [`ActorKind::Group`]) is in the
    /// set; an event without a group of the type passes when `none` is true.
    Groups {
        group_type: String,
        keys: IdSet,
        none: bool,
    },
}

/// A test of one property value; negations are [`Condition::Not`] around these.
#[derive(Debug, Clone, PartialEq)]
pub enum ValueCondition {
    IsSet,
    /// Set and [`crate::value::equal`] to one of these.
    EqualsAny(Vec<serde_json::Value>),
    /// Set, and its text lowercased (Unicode's rules) contains this lowercased text.
    Contains(String),
    /// Set, and its text is in the set (the query layer matched [`Aggregates::texts`]).
    TextIn(IdSet),
    /// Set, with a [`crate::value::number_of`], which compares to `number` as `op` says.
    Compare {
        op: NumberOp,
        number: f64,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberOp {
    Gt,
    Gte,
    Lt,
    Lte,
}

/// A set of ids given by its members, or by the ids outside it (`negated`), whichever is
/// shorter: a condition most actors pass travels as the few that fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdSet {
    pub ids: Vec<String>,
    pub negated: bool,
}

impl IdSet {
    /// The set whose members are the `true` entries; ids not listed are members when
    /// `unlisted` is true.
    pub fn from_truths(truths: impl IntoIterator<Item = (String, bool)>, unlisted: bool) -> Self {
        // Only the ids that differ from the unlisted rule need to travel.
        let mut ids: Vec<String> = truths.into_iter().filter(|(_, t)| *t != unlisted).map(|(id, _)| id).collect();
        ids.sort();
        ids.dedup();
        IdSet { ids, negated: unlisted }
    }

    pub fn contains(&self, id: &str) -> bool {
        self.ids.binary_search_by(|x| x.as_str().cmp(id)).is_ok() != self.negated
    }
}

/// Lines of a breakdown, decided by the query layer: each listed key (a group key, or an event
/// property's text) on its line, other keys on `default_line`, events without the property (or
/// without a group of the type) on `unset_line`. An event counts once for each distinct line of
/// its keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    pub by: SplitBy,
    pub lines: Vec<(String, u32)>,
    pub default_line: u32,
    pub unset_line: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SplitBy {
    /// The event's groups of a type (resolved as for [`ActorKind::Group`]).
    Group(String),
    /// The text ([`crate::value::text_of`]) of a top-level event property.
    EventProperty(String),
    /// The event's person as it resolves now: the query layer lists persons by id.
    Person,
    /// The event's name.
    EventName,
}

// What to aggregate, over the events of one project: one request type per kind of aggregate,
// each answered by its own method of [`Aggregates`]. Times are UTC microseconds, `from`
// inclusive, `to` exclusive.

/// Per test, line and period: events and distinct actors; and per test, line and range the same
/// over the whole range. Without a split every event is on line 0.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodCountsRequest {
    /// `None`: events only (every actor count is 0), which spares resolving actors.
    pub actor: Option<ActorKind>,
    pub periods: Periods,
    pub tests: Vec<EventTest>,
    pub ranges: Vec<(i64, i64)>,
    pub split: Option<Split>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PeriodCounts {
    pub cells: Vec<PeriodCount>,
    pub totals: Vec<RangeCount>,
}

/// Actors grouped by the same activity pattern: per test, the periods in `[from, to)` in which
/// they did it, and the period of their earliest event matching `first` (any time before `to`)
/// when asked. Split, an actor has a pattern per line, from the events on that line.
#[derive(Debug, Clone, PartialEq)]
pub struct PatternsRequest {
    pub actor: ActorKind,
    pub periods: Periods,
    pub tests: Vec<EventTest>,
    pub first: Option<EventTest>,
    pub from: i64,
    pub to: i64,
    pub split: Option<Split>,
}

/// Per actor with an event of `[from, to)` matching a test: every such event (or every event of
/// the range at all, with `all_events`), with a bit mask of the tests it matches. With `keys`,
/// each event also carries what it would be labelled by.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamsRequest {
    pub actor: ActorKind,
    pub tests: Vec<EventTest>,
    pub all_events: bool,
    pub from: i64,
    pub to: i64,
    pub keys: Option<SplitBy>,
}

/// The actors with at least `at_least` events of `[from, to)` passing `test`, with how many;
/// with `on`, only the events on that line of the split count.
#[derive(Debug, Clone, PartialEq)]
pub struct ActorsRequest {
    pub actor: ActorKind,
    pub test: EventTest,
    pub at_least: u64,
    pub from: i64,
    pub to: i64,
    pub on: Option<(Split, u32)>,
}

/// Per line and period, and per line and range, a statistic of the events passing `test`.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodStatsRequest {
    pub periods: Periods,
    pub test: EventTest,
    pub measure: Measure,
    pub ranges: Vec<(i64, i64)>,
    pub split: Option<Split>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PeriodStats {
    pub cells: Vec<PeriodStat>,
    pub totals: Vec<RangeStat>,
}

/// Per range, events passing `test` per text of the event property `key` (`None`: not set).
#[derive(Debug, Clone, PartialEq)]
pub struct ValuesRequest {
    pub key: String,
    pub test: EventTest,
    pub ranges: Vec<(i64, i64)>,
}

/// Insight aggregates a backend computes in its own engine: an optional capability of a
/// [`crate::Store`] ([`crate::Store::aggregates`]), offered by ClickHouse and not by the embedded
/// store. Each answer is `None` when this project's data cannot be answered this way (ClickHouse:
/// events stored before their properties were indexed) and the question takes the scan path.
#[async_trait::async_trait]
pub trait Aggregates: Send + Sync {
    async fn period_counts(
        &self,
        project: ProjectId,
        request: &PeriodCountsRequest,
    ) -> Result<Option<PeriodCounts>, StoreError>;

    async fn patterns(
        &self,
        project: ProjectId,
        request: &PatternsRequest,
    ) -> Result<Option<Vec<ActorPattern>>, StoreError>;

    async fn streams(
        &self,
        project: ProjectId,
        request: &StreamsRequest,
    ) -> Result<Option<Vec<ActorStream>>, StoreError>;

    async fn actors(
        &self,
        project: ProjectId,
        request: &ActorsRequest,
    ) -> Result<Option<Vec<(String, u64)>>, StoreError>;

    async fn period_stats(
        &self,
        project: ProjectId,
        request: &PeriodStatsRequest,
    ) -> Result<Option<PeriodStats>, StoreError>;

    async fn values(&self, project: ProjectId, request: &ValuesRequest) -> Result<Option<Vec<ValueCount>>, StoreError>;

    /// Every text the event property `key` has on the project's events, each once.
    async fn texts(&self, project: ProjectId, key: &str) -> Result<Option<Vec<String>>, StoreError>;

    /// Every actor of the kind that has a profile, with its properties (and a person's distinct
    /// ids): what the query layer decides [`Condition`]s from.
    async fn profiles(&self, project: ProjectId, actor: &ActorKind) -> Result<Vec<crate::Actor>, StoreError>;
}

/// What a statistic is taken over.
#[derive(Debug, Clone, PartialEq)]
pub enum Measure {
    /// The number ([`crate::value::number_of`]) of a top-level event property, over the events
    /// that have one.
    Property { key: String, stat: Stat },
    /// Each actor's count of events, over the actors with at least one.
    PerActor { actor: ActorKind, stat: Stat },
}

/// A statistic of some values; 0 when there are none.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    Sum,
    /// The sum over the count.
    Avg,
    Min,
    Max,
    /// Linear interpolation between the two nearest ranks of the ascending values, at rank
    /// `p · (n − 1)` (the median of 1, 2, 3, 4 is 2.5).
    Quantile(f64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct PeriodStat {
    pub line: u32,
    pub key: i64,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RangeStat {
    pub line: u32,
    pub range: usize,
    pub value: f64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueCount {
    pub value: Option<String>,
    pub range: usize,
    pub events: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodCount {
    pub test: usize,
    pub line: u32,
    pub key: i64,
    pub events: u64,
    pub actors: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RangeCount {
    pub test: usize,
    pub line: u32,
    pub range: usize,
    pub events: u64,
    pub actors: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorPattern {
    /// Per test, the sorted keys of the periods in which the actor did it.
    pub periods: Vec<Vec<i64>>,
    /// The key of the period of the earliest `first` event, and whether that event is in
    /// `[from, to)`.
    pub first: Option<(i64, bool)>,
    /// The line the pattern is on (0 unsplit).
    pub line: u32,
    /// How many actors share this pattern.
    pub actors: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActorStream {
    /// Person id or group key.
    pub actor: String,
    /// `(ts, tests matched as bits)`, in no particular order.
    pub events: Vec<(i64, u32)>,
    /// When asked for, per event (in the same order): the text of the event property (none
    /// when not set), the event's groups of the type, its person, or its name.
    pub keys: Vec<Vec<String>>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn id_sets_send_the_exceptions_to_the_unlisted_rule() {
        let truths = || [("a".to_string(), true), ("b".to_string(), false), ("c".to_string(), true)];
        let mostly_in = IdSet::from_truths(truths(), true);
        assert_eq!((mostly_in.ids.clone(), mostly_in.negated), (vec!["b".to_string()], true));
        assert!(mostly_in.contains("a") && !mostly_in.contains("b") && mostly_in.contains("z"));
        let mostly_out = IdSet::from_truths(truths(), false);
        assert_eq!(mostly_out.ids, vec!["a".to_string(), "c".to_string()]);
        assert!(mostly_out.contains("c") && !mostly_out.contains("b") && !mostly_out.contains("z"));
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    #[test]
    fn keys_follow_the_local_calendar() {
        let paris = Periods { tz: chrono_tz::Europe::Paris, unit: PeriodUnit::Day };
        // 23:30 UTC on March 1st is already March 2nd in Paris.
        assert_eq!(period_key(&paris, at("2026-03-01T23:30:00Z")), period_key(&paris, at("2026-03-02T12:00:00Z")));
        assert_eq!(period_key(&paris, Utc.with_ymd_and_hms(1970, 1, 1, 12, 0, 0).unwrap()), 0);
        let sunday = Periods { tz: chrono_tz::UTC, unit: PeriodUnit::Week { monday: false } };
        // 2026-03-01 is a Sunday: Saturday before is the previous week, Monday after the same.
        let key = period_key(&sunday, at("2026-03-01T00:00:00Z"));
        assert_eq!(period_key(&sunday, at("2026-02-28T23:59:59Z")), key - 1);
        assert_eq!(period_key(&sunday, at("2026-03-07T23:59:59Z")), key);
        let monday = Periods { tz: chrono_tz::UTC, unit: PeriodUnit::Week { monday: true } };
        assert_eq!(period_key(&monday, at("2026-03-01T00:00:00Z")), period_key(&monday, at("2026-02-23T00:00:00Z")));
        let month = Periods { tz: chrono_tz::UTC, unit: PeriodUnit::Month };
        assert_eq!(period_key(&month, at("2026-03-31T10:00:00Z")), 2026 * 12 + 2);
        let kolkata = Periods { tz: chrono_tz::Asia::Kolkata, unit: PeriodUnit::Hour };
        // Hours start at :30 UTC there.
        assert_eq!(period_key(&kolkata, at("2026-03-01T10:45:00Z")), at("2026-03-01T10:30:00Z").timestamp());
    }
}
