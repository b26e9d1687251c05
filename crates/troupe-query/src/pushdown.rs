//! Asking the backend for an insight's aggregate instead of a scan (see
//! [`troupe_store::aggregate`]). A question is pushed down when everything it selects by is an
//! event name: no property filters, cohorts or breakdowns, no list of actors (those need each
//! event's properties and each actor's profile, which the scan path has). The answer is turned
//! into the result by the same code as the scan path's, so both paths answer alike.

use rustc_hash::FxHashMap as HashMap;
use troupe_store::aggregate::{
    period_key, ActorKind, ActorPattern, ActorStream, AggregateAnswer, AggregateRequest, EventTest, PeriodCount,
    PeriodUnit, Periods, RangeCount,
};

use crate::error::QueryError;
use crate::spec::{Common, CountBy, EventSelector, Interval, WeekStart};
use crate::time::{from_micros, Buckets, Calendar};
use crate::Ctx;

/// Whether a question selects by event names only, with no breakdown.
pub fn plain<'a>(common: &Common, selectors: impl IntoIterator<Item = &'a EventSelector>) -> bool {
    common.breakdown.is_none() && unfiltered(common, selectors)
}

/// Whether a question has no filters (it may have a breakdown).
pub fn unfiltered<'a>(common: &Common, selectors: impl IntoIterator<Item = &'a EventSelector>) -> bool {
    common.filters.is_none() && selectors.into_iter().all(|s| s.filters.is_none())
}

pub fn test(selector: &EventSelector) -> EventTest {
    match &selector.event {
        Some(name) => EventTest::named(name),
        None => EventTest::any(),
    }
}

pub fn periods(calendar: &Calendar) -> Periods {
    let unit = match calendar.interval {
        Interval::Hour => PeriodUnit::Hour,
        Interval::Day => PeriodUnit::Day,
        Interval::Week => PeriodUnit::Week { monday: calendar.week_start == WeekStart::Monday },
        Interval::Month => PeriodUnit::Month,
    };
    Periods { tz: calendar.tz, unit }
}

/// The actors of `count_by`, after checking its group type exists.
pub async fn actor_kind(ctx: &Ctx<'_>, count_by: &CountBy) -> Result<ActorKind, QueryError> {
    Ok(match count_by {
        CountBy::Users => ActorKind::Persons,
        CountBy::Group { group_type } => {
            crate::check_group_types(ctx, std::iter::once(group_type)).await?;
            ActorKind::Group(group_type.clone())
        }
    })
}

/// The backend's answer, or `None` when it leaves the question to the scan path.
async fn ask(ctx: &Ctx<'_>, request: AggregateRequest) -> Result<Option<AggregateAnswer>, QueryError> {
    Ok(ctx.store.aggregate(ctx.project, request).await?)
}

/// Period counts (see [`AggregateRequest::PeriodCounts`]) as `(cells, totals)`, or `None`.
pub async fn period_counts(
    ctx: &Ctx<'_>,
    request: AggregateRequest,
) -> Result<Option<(Vec<PeriodCount>, Vec<RangeCount>)>, QueryError> {
    match ask(ctx, request).await? {
        None => Ok(None),
        Some(AggregateAnswer::PeriodCounts { cells, totals }) => Ok(Some((cells, totals))),
        Some(other) => Err(unexpected(&other)),
    }
}

/// Per-actor streams (see [`AggregateRequest::Streams`]), or `None`.
pub async fn streams(ctx: &Ctx<'_>, request: AggregateRequest) -> Result<Option<Vec<ActorStream>>, QueryError> {
    match ask(ctx, request).await? {
        None => Ok(None),
        Some(AggregateAnswer::Streams(streams)) => Ok(Some(streams)),
        Some(other) => Err(unexpected(&other)),
    }
}

/// Actors' activity patterns (see [`AggregateRequest::Patterns`]), or `None` from a backend that
/// leaves the question to the scan path.
pub async fn patterns(
    ctx: &Ctx<'_>,
    count_by: &CountBy,
    periods: Periods,
    tests: Vec<EventTest>,
    first: Option<EventTest>,
    (from, to): (i64, i64),
) -> Result<Option<Vec<ActorPattern>>, QueryError> {
    let actor = actor_kind(ctx, count_by).await?;
    match ask(ctx, AggregateRequest::Patterns { actor, periods, tests, first, from, to }).await? {
        None => Ok(None),
        Some(AggregateAnswer::Patterns(patterns)) => Ok(Some(patterns)),
        Some(other) => Err(unexpected(&other)),
    }
}

/// Period keys to bucket indexes.
pub struct KeyMap(HashMap<i64, usize>);

impl KeyMap {
    pub fn new(periods: &Periods, buckets: &Buckets) -> Self {
        let starts = buckets.bounds.iter().take(buckets.len());
        KeyMap(starts.enumerate().map(|(i, &b)| (period_key(periods, from_micros(b)), i)).collect())
    }

    pub fn index(&self, key: i64) -> Option<usize> {
        self.0.get(&key).copied()
    }
}

fn unexpected(answer: &AggregateAnswer) -> QueryError {
    let kind = match answer {
        AggregateAnswer::PeriodCounts { .. } => "period counts",
        AggregateAnswer::Patterns(_) => "patterns",
        AggregateAnswer::Streams(_) => "streams",
    };
    QueryError::Store(troupe_store::StoreError::Backend(format!("the backend answered with {kind} to another request")))
}
