//! Asking the backend for an insight's aggregate instead of a scan (see
//! [`troupe_store::aggregate`]). Filters become [`Condition`]s: person and group properties and
//! cohorts as sets of ids decided here from the actors' profiles with the scan path's own rules,
//! event-property tests as they are (regexes as the set of the property's texts they match,
//! matched here). Breakdowns become splits (see `splits`), decided the same way. A backend that
//! does not offer [`Aggregates`] (the embedded store) is never asked and the question takes the
//! scan path at once; both paths build the result with the same code, so they answer alike.

use std::sync::Arc;

use rustc_hash::FxHashMap as HashMap;
use troupe_store::aggregate::{
    period_key, ActorKind, ActorPattern, ActorStream, ActorsRequest, Aggregates, Condition, EventTest, IdSet,
    PatternsRequest, PeriodCount, PeriodCountsRequest, PeriodStat, PeriodStatsRequest, PeriodUnit, Periods, RangeCount,
    RangeStat, Split, StreamsRequest, ValueCondition, ValueCount, ValuesRequest,
};
use troupe_store::Actor;

use crate::cohorts::{cohort_key, ResolvedCohort};
use crate::error::QueryError;
use crate::frame::ValueTest;
use crate::spec::{Common, CountBy, EventSelector, Filter, Interval, Operator, PropertySource, WeekStart, GROUP_KEY};
use crate::time::{from_micros, Buckets, Calendar};
use crate::Ctx;
use serde_json::Value;

/// Each selector's test with the question's filters, or `None` when a filter cannot be pushed
/// down (or the backend leaves profiles, and so the question, to the scan path).
pub async fn tests(
    ctx: &Ctx<'_>,
    cohorts: &HashMap<String, Arc<ResolvedCohort>>,
    common: &Common,
    selectors: &[&EventSelector],
) -> Result<Option<Vec<EventTest>>, QueryError> {
    if backend(ctx).is_none() {
        return Ok(None);
    }
    let mut conditions = Conditions::new(ctx, cohorts);
    let global = match &common.filters {
        None => None,
        Some(f) => match conditions.of(f).await? {
            Some(c) => Some(c),
            None => return Ok(None),
        },
    };
    let mut tests = Vec::new();
    for s in selectors {
        let Some(test) = conditions.test(s, global.clone()).await? else { return Ok(None) };
        tests.push(test);
    }
    Ok(Some(tests))
}

/// Filters as conditions.
pub struct Conditions<'a> {
    pub ctx: &'a Ctx<'a>,
    pub cohorts: &'a HashMap<String, Arc<ResolvedCohort>>,
}

impl<'a> Conditions<'a> {
    pub fn new(ctx: &'a Ctx<'a>, cohorts: &'a HashMap<String, Arc<ResolvedCohort>>) -> Self {
        Conditions { ctx, cohorts }
    }

    /// A selector's test, with `global` (the question's filters) added to its own.
    pub async fn test(
        &mut self,
        selector: &EventSelector,
        global: Option<Condition>,
    ) -> Result<Option<EventTest>, QueryError> {
        let own = match &selector.filters {
            None => None,
            Some(f) => match self.of(f).await? {
                Some(c) => Some(c),
                None => return Ok(None),
            },
        };
        let condition = match (own, global) {
            (None, None) => None,
            (Some(c), None) | (None, Some(c)) => Some(c),
            (Some(a), Some(b)) => Some(Condition::All(vec![a, b])),
        };
        Ok(Some(EventTest { events: selector.event.clone().map(|name| vec![name]), condition }))
    }

    /// A filter as a condition; `None` when it matches event properties as text (`contains`,
    /// regexes) or the backend has no profiles to give.
    pub fn of<'f>(
        &'f mut self,
        filter: &'f Filter,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<Condition>, QueryError>> + Send + 'f>>
    where
        'a: 'f,
    {
        Box::pin(async move {
            Ok(match filter {
                Filter::And { and: items } | Filter::Or { or: items } => {
                    let mut parts = Vec::new();
                    for f in items {
                        let Some(c) = self.of(f).await? else { return Ok(None) };
                        parts.push(c);
                    }
                    Some(if matches!(filter, Filter::And { .. }) {
                        Condition::All(parts)
                    } else {
                        Condition::Any(parts)
                    })
                }
                Filter::Not { not } => self.of(not).await?.map(|c| Condition::Not(Box::new(c))),
                Filter::Property(c) => {
                    let test = ValueTest::new(c.operator, &c.value)?;
                    if let (PropertySource::Group { group_type }, true) = (&c.source, c.key == GROUP_KEY) {
                        return Ok(group_key_condition(group_type, c.operator, &c.value, &test));
                    }
                    let group_type = match &c.source {
                        PropertySource::Event if test.is_regex() => {
                            return self.regex(&c.key, &test).await;
                        }
                        PropertySource::Event => return Ok(test.event_condition(&c.key)),
                        PropertySource::Person => None,
                        PropertySource::Group { group_type } => Some(group_type.clone()),
                    };
                    let Some(profiles) = profiles(self.ctx, kind(&group_type)).await? else { return Ok(None) };
                    let truths = profiles.iter().map(|a| (a.key.clone(), test.test(a.properties.get(&c.key))));
                    // Actors without a profile read every property as not set.
                    let keys = IdSet::from_truths(truths, test.test(None));
                    Some(match group_type {
                        None => Condition::Person(keys),
                        Some(group_type) => Condition::Groups { group_type, keys, none: test.test(None) },
                    })
                }
                Filter::Cohort { cohort } => {
                    let key = cohort_key(cohort);
                    let resolved = self
                        .cohorts
                        .get(&key)
                        .cloned()
                        .ok_or_else(|| QueryError::invalid(format!("cohort {key} was not resolved")))?;
                    let group_type = match &resolved.count_by {
                        CountBy::Users => None,
                        CountBy::Group { group_type } => Some(group_type.clone()),
                    };
                    let Some(profiles) = profiles(self.ctx, kind(&group_type)).await? else { return Ok(None) };
                    let mut truths: HashMap<String, bool> =
                        profiles.iter().map(|a| (a.key.clone(), resolved.contains(a))).collect();
                    // Listed ids without a profile: an actor known by that key alone.
                    for id in resolved.listed_ids() {
                        if !truths.contains_key(id) {
                            let bare = Actor { key: id.to_string(), ..Actor::default() };
                            truths.insert(id.to_string(), resolved.contains(&bare));
                        }
                    }
                    let keys = IdSet::from_truths(truths, resolved.contains_unlisted());
                    Some(match group_type {
                        None => Condition::Person(keys),
                        // No group of the type: in no cohort of groups.
                        Some(group_type) => Condition::Groups { group_type, keys, none: false },
                    })
                }
            })
        })
    }

    /// A regex on an event property: matched by troupe against the property's distinct texts,
    /// the matching ones (or, when most match, the others) sent as a set.
    async fn regex(&mut self, key: &str, test: &ValueTest) -> Result<Option<Condition>, QueryError> {
        let Some(backend) = backend(self.ctx) else { return Ok(None) };
        let Some(texts) = backend.texts(self.ctx.project, key).await? else { return Ok(None) };
        let truths: Vec<(String, bool)> = texts.into_iter().map(|t| (t.clone(), test.regex_matches(&t))).collect();
        let most_match = truths.iter().filter(|(_, m)| *m).count() * 2 > truths.len();
        let matched = Condition::EventProperty {
            key: key.to_string(),
            test: ValueCondition::TextIn(IdSet::from_truths(truths, most_match)),
        };
        Ok(Some(if test.negated() { Condition::Not(Box::new(matched)) } else { matched }))
    }
}

/// A test of the key of the event's groups of a type, as a set of keys: exact for the
/// operators whose answer for a key not named in the value is known (equal to none of them);
/// others (`contains`, `regex`, comparisons) are left to the scan, which sees every key.
fn group_key_condition(group_type: &str, operator: Operator, value: &Value, test: &ValueTest) -> Option<Condition> {
    let unnamed = match operator {
        Operator::Equals | Operator::In | Operator::IsNotSet => false,
        Operator::NotEquals | Operator::NotIn | Operator::IsSet => true,
        _ => return None,
    };
    let named: Vec<String> = match value {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().filter_map(|v| v.as_str().map(str::to_string)).collect(),
        _ => Vec::new(),
    };
    let truths = named.into_iter().map(|k| {
        let truth = test.test(Some(&Value::String(k.clone())));
        (k, truth)
    });
    Some(Condition::Groups {
        group_type: group_type.to_string(),
        keys: IdSet::from_truths(truths, unnamed),
        none: test.test(None),
    })
}

/// Persons (`None`) or the groups of a type.
fn kind(group_type: &Option<String>) -> ActorKind {
    group_type.as_ref().map_or(ActorKind::Persons, |t| ActorKind::Group(t.clone()))
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

/// The backend's own aggregates, `None` when it offers none (the embedded store).
/// Not while a question leaves synthetic persons out: the backend's aggregates know nothing of
/// them, so such a question is counted from a scan.
pub fn backend<'a>(ctx: &'a Ctx<'_>) -> Option<&'a dyn Aggregates> {
    match ctx.synthetic.is_empty() {
        true => ctx.store.aggregates(),
        false => None,
    }
}

/// Period counts (see [`PeriodCountsRequest`]) as `(cells, totals)`, or `None`.
pub async fn period_counts(
    ctx: &Ctx<'_>,
    request: PeriodCountsRequest,
) -> Result<Option<(Vec<PeriodCount>, Vec<RangeCount>)>, QueryError> {
    let Some(backend) = backend(ctx) else { return Ok(None) };
    Ok(backend.period_counts(ctx.project, &request).await?.map(|counts| (counts.cells, counts.totals)))
}

/// Per-actor streams (see [`StreamsRequest`]), or `None`.
pub async fn streams(ctx: &Ctx<'_>, request: StreamsRequest) -> Result<Option<Vec<ActorStream>>, QueryError> {
    let Some(backend) = backend(ctx) else { return Ok(None) };
    Ok(backend.streams(ctx.project, &request).await?)
}

/// Actors' activity patterns (see [`PatternsRequest`]), or `None`.
pub async fn patterns(
    ctx: &Ctx<'_>,
    count_by: &CountBy,
    periods: Periods,
    tests: Vec<EventTest>,
    first: Option<EventTest>,
    (from, to): (i64, i64),
    split: Option<Split>,
) -> Result<Option<Vec<ActorPattern>>, QueryError> {
    let Some(backend) = backend(ctx) else { return Ok(None) };
    let actor = actor_kind(ctx, count_by).await?;
    let request = PatternsRequest { actor, periods, tests, first, from, to, split };
    Ok(backend.patterns(ctx.project, &request).await?)
}

/// The profiles a question that lists actors needs (`listed`), else none: `None` when the
/// backend has none to give.
pub async fn listed_profiles(
    ctx: &Ctx<'_>,
    actor: &ActorKind,
    listed: bool,
) -> Result<Option<Arc<Vec<Actor>>>, QueryError> {
    match listed {
        false => Ok(Some(Arc::default())),
        true => profiles(ctx, actor.clone()).await,
    }
}

/// Every actor of the kind with a profile (after checking a group type exists), or `None`. Read
/// once per question: filters, breakdowns and lists of actors share them.
pub async fn profiles(ctx: &Ctx<'_>, actor: ActorKind) -> Result<Option<Arc<Vec<Actor>>>, QueryError> {
    if let Some(cached) = ctx.cached_profiles(&actor) {
        return Ok(cached);
    }
    if let ActorKind::Group(group_type) = &actor {
        crate::check_group_types(ctx, std::iter::once(group_type)).await?;
    }
    let profiles = match backend(ctx) {
        None => None,
        Some(backend) => Some(Arc::new(backend.profiles(ctx.project, &actor).await?)),
    };
    ctx.cache_profiles(actor, profiles.clone());
    Ok(profiles)
}

/// Actors by key, described from the profiles the backend gave (see [`profiles`]): a key without
/// a profile is an actor known by that key alone.
pub struct ProfileIndex<'a>(HashMap<&'a str, &'a Actor>);

impl<'a> ProfileIndex<'a> {
    pub fn new(profiles: &'a [Actor]) -> Self {
        ProfileIndex(profiles.iter().map(|a| (a.key.as_str(), a)).collect())
    }

    pub fn actor(&self, key: &str) -> Actor {
        self.0.get(key).map_or_else(|| Actor { key: key.to_string(), ..Actor::default() }, |&a| a.clone())
    }
}

/// Statistics per period and range (see [`PeriodStatsRequest`]), or `None`.
pub async fn period_stats(
    ctx: &Ctx<'_>,
    request: PeriodStatsRequest,
) -> Result<Option<(Vec<PeriodStat>, Vec<RangeStat>)>, QueryError> {
    let Some(backend) = backend(ctx) else { return Ok(None) };
    Ok(backend.period_stats(ctx.project, &request).await?.map(|stats| (stats.cells, stats.totals)))
}

/// Events per value of an event property (see [`ValuesRequest`]), or `None`.
pub async fn values(ctx: &Ctx<'_>, request: ValuesRequest) -> Result<Option<Vec<ValueCount>>, QueryError> {
    let Some(backend) = backend(ctx) else { return Ok(None) };
    Ok(backend.values(ctx.project, &request).await?)
}

/// The actors with at least `at_least` events passing `test` in `[from, to)` (on one line of a
/// split, with `on`), with their counts, or `None`.
pub async fn actors(
    ctx: &Ctx<'_>,
    actor: ActorKind,
    test: EventTest,
    at_least: u64,
    (from, to): (i64, i64),
    on: Option<(Split, u32)>,
) -> Result<Option<Vec<(String, u64)>>, QueryError> {
    let Some(backend) = backend(ctx) else { return Ok(None) };
    Ok(backend.actors(ctx.project, &ActorsRequest { actor, test, at_least, from, to, on }).await?)
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
