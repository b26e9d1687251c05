//! Trends: per interval, a number per series (events, distinct actors, a property's statistic
//! or events per actor), with breakdowns, a formula across series and the previous period.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use crate::actor_set::ActorSet;

use evalexpr::{ContextWithMutableVariables, DefaultNumericTypes, HashMapContext, Node};

use std::sync::Arc;

use troupe_store::aggregate::{ActorKind, EventTest, Measure, PeriodCountsRequest, PeriodStatsRequest, Split, Stat};
use troupe_store::Actor;

use crate::cohorts::{resolve_all, ResolvedCohort};
use crate::error::QueryError;
use crate::frame::{breakdown_limit, number_of, ActorColumn, Frame, Lines, Matcher, Needs, QuickMatch, OTHER};
use crate::pushdown::{self, KeyMap};
use crate::result::{TrendLine, TrendsResult};
use crate::spec::{CountBy, EventSelector, Interval, Math, PropertySource, TrendActors, TrendSeries, TrendsQuery};
use crate::time::Buckets;
use crate::{parallel, splits};
use crate::{scan, Ctx, Setup};

pub async fn run(ctx: &Ctx<'_>, q: &TrendsQuery) -> Result<TrendsResult, QueryError> {
    if q.series.is_empty() {
        return Err(QueryError::invalid("trends need at least one series"));
    }
    validate(q)?;
    let formula = q.formula.as_deref().map(parse_formula).transpose()?;
    let setup = Setup::new(&q.common, ctx.now)?;
    let filters = q.common.filters.iter().chain(q.series.iter().filter_map(|s| s.selector.filters.as_ref()));
    let cohorts = resolve_all(ctx, filters).await?;

    // Rolling counts look back up to 30 days before each bucket.
    let rolling = q.series.iter().any(|s| rolling_days(s.math).is_some());
    let lead = |buckets: &Buckets| rolling.then(|| setup.calendar.buckets_before(buckets, MAX_ROLLING_DAYS - 1));
    let current =
        Period { lead: lead(&setup.buckets), buckets: setup.buckets.clone(), from: setup.from_us, to: setup.to_us };
    let previous = q.compare.then(|| {
        let buckets = setup.calendar.buckets_before(&setup.buckets, setup.buckets.len());
        Period { lead: lead(&buckets), from: buckets.start(), to: buckets.end(), buckets }
    });
    let periods: Vec<&Period> = std::iter::once(&current).chain(previous.as_ref()).collect();
    let (values, actors) = match pushed_values(ctx, q, &setup, &periods, &cohorts).await? {
        Some(pushed) => pushed,
        None => scanned_values(ctx, q, &cohorts, &periods).await?,
    };

    let mut values = values;
    if q.cumulative {
        // Unique counts were made cumulative while counting (a union, not a sum).
        for period_values in &mut values {
            for (s, series_values) in q.series.iter().zip(period_values.iter_mut()) {
                if s.math != Math::Unique {
                    for (_, data, _) in series_values.iter_mut() {
                        running_sum(data);
                    }
                }
            }
        }
    }
    let mut lines = Vec::new();
    for ((period, name), period_values) in periods.iter().zip(["current", "previous"]).zip(values) {
        let compare = q.compare.then(|| name.to_string());
        let mut period_lines = Vec::new();
        for (index, (s, series_values)) in q.series.iter().zip(period_values).enumerate() {
            for (value, data, aggregated) in series_values {
                period_lines.push(TrendLine {
                    label: series_label(s, index),
                    series: Some(index),
                    formula: None,
                    breakdown_value: value,
                    compare: compare.clone(),
                    buckets: (name == "previous").then(|| period.buckets.labels.clone()),
                    data,
                    aggregated_value: aggregated,
                });
            }
        }
        if let (Some(node), Some(text)) = (&formula, &q.formula) {
            let formula_lines = apply_formula(node, text, &period_lines, q.series.len())?;
            period_lines.extend(formula_lines);
        }
        lines.extend(period_lines);
    }
    Ok(TrendsResult { buckets: setup.buckets.labels, series: lines, actors })
}

/// The longest rolling window, in days.
const MAX_ROLLING_DAYS: usize = 30;

/// The window of a rolling math, in days.
fn rolling_days(math: Math) -> Option<usize> {
    match math {
        Math::WeeklyActive => Some(7),
        Math::MonthlyActive => Some(MAX_ROLLING_DAYS),
        _ => None,
    }
}

fn validate(q: &TrendsQuery) -> Result<(), QueryError> {
    for (i, s) in q.series.iter().enumerate() {
        if needs_property(s.math) && s.property.as_deref().is_none_or(str::is_empty) {
            return Err(QueryError::invalid(format!("series {i}: math {:?} needs a \"property\"", s.math)));
        }
        if s.property_source != PropertySource::Event && !needs_property(s.math) {
            return Err(QueryError::invalid(format!(
                "series {i}: property_source goes with a property's math (sum, avg, min, max, median, p90)"
            )));
        }
        if rolling_days(s.math).is_some() && q.common.interval != Interval::Day {
            return Err(QueryError::invalid(format!(
                "series {i}: weekly_active and monthly_active count the days before each bucket: they need \"interval\": \"day\""
            )));
        }
        if q.cumulative && !matches!(s.math, Math::Total | Math::Unique | Math::Sum) {
            return Err(QueryError::invalid(format!(
                "series {i}: cumulative adds up buckets, which means something for total, unique and sum only"
            )));
        }
    }
    Ok(())
}

/// Each value becomes the sum of those up to it.
fn running_sum(data: &mut [f64]) {
    let mut sum = 0.0;
    for x in data {
        sum += *x;
        *x = sum;
    }
}

/// A series' lines in one period: (breakdown value, per bucket, over the range).
type SeriesValues = Vec<(Option<String>, Vec<f64>, f64)>;

/// Per period, per series, its lines, from the backend's counts per period (total and unique
/// only; broken down by a group property or not).
async fn pushed_values(
    ctx: &Ctx<'_>,
    q: &TrendsQuery,
    setup: &Setup,
    periods: &[&Period],
    cohorts: &HashMap<String, Arc<ResolvedCohort>>,
) -> Result<Option<(Vec<Vec<SeriesValues>>, Option<Vec<Actor>>)>, QueryError> {
    // Rolling windows, properties of profiles and cumulative distinct counts are counted from a
    // scan.
    let scanned_only = |s: &TrendSeries| {
        rolling_days(s.math).is_some()
            || s.property_source != PropertySource::Event
            || (q.cumulative && s.math == Math::Unique)
    };
    if q.series.iter().any(scanned_only) {
        return Ok(None);
    }
    let calendar = pushdown::periods(&setup.calendar);
    let actor = pushdown::actor_kind(ctx, &q.common.count_by).await?;
    let selectors: Vec<&EventSelector> = q.series.iter().map(|s| &s.selector).collect();
    let Some(tests) = pushdown::tests(ctx, cohorts, &q.common, &selectors).await? else { return Ok(None) };
    let ranges: Vec<(i64, i64)> = periods.iter().map(|p| (p.from, p.to)).collect();
    let (split, values, counted) = match &q.common.breakdown {
        None => (None, vec![None], None),
        Some(b) => match splits::split_counting(ctx, b, calendar, &tests, &ranges).await? {
            Some(lines) => (lines.split, lines.values, lines.events),
            None => return Ok(None),
        },
    };
    // Statistics other than counts, one request per series.
    let mut stats = Vec::new();
    for (s, test) in q.series.iter().zip(&tests) {
        let Some(measure) = measure(s, &actor) else {
            stats.push(None);
            continue;
        };
        let request = PeriodStatsRequest {
            periods: calendar,
            test: test.clone(),
            measure,
            ranges: ranges.clone(),
            split: split.clone(),
        };
        let Some(answer) = pushdown::period_stats(ctx, request).await? else { return Ok(None) };
        stats.push(Some(answer));
    }
    let listed = match &q.actors {
        None => None,
        Some(request) => {
            let on = OnLine { split: split.as_ref(), values: &values };
            match pushed_actors(ctx, request, &tests, &actor, periods[0], on).await? {
                Some(actors) => Some(actors),
                None => return Ok(None),
            }
        }
    };
    // Totals alone need no actors (nor, counting users, the identity join).
    let actor = q.series.iter().any(|s| s.math == Math::Unique).then_some(actor);
    let (cells, totals) = match counted {
        // Events counted while weighing the breakdown's lines: nothing to ask again.
        Some(counts) if actor.is_none() && stats.iter().all(Option::is_none) => (counts.cells, counts.totals),
        _ => {
            let request = PeriodCountsRequest { actor, periods: calendar, tests, ranges, split: split.clone() };
            let Some(counts) = pushdown::period_counts(ctx, request).await? else { return Ok(None) };
            counts
        }
    };
    let pick = |math: Math, events: u64, actors: u64| if math == Math::Unique { actors as f64 } else { events as f64 };
    let mut out = Vec::new();
    for (r, period) in periods.iter().enumerate() {
        let keys = KeyMap::new(&calendar, &period.buckets);
        let mut per_series = Vec::new();
        for (t, (s, stat)) in q.series.iter().zip(&stats).enumerate() {
            let mut lines = SeriesValues::new();
            for (line, value) in values.iter().enumerate() {
                let line = line as u32;
                let count = totals.iter().find(|x| x.test == t && x.line == line && x.range == r);
                // Broken down, a line exists where a matching event was (as on the scan path).
                if split.is_some() && count.is_none_or(|x| x.events == 0) {
                    continue;
                }
                let mut data = vec![0.0; period.buckets.len()];
                let total = match stat {
                    None => {
                        for c in cells.iter().filter(|c| c.test == t && c.line == line) {
                            if let Some(b) = keys.index(c.key) {
                                data[b] = pick(s.math, c.events, c.actors);
                            }
                        }
                        count.map_or(0.0, |x| pick(s.math, x.events, x.actors))
                    }
                    Some((stat_cells, stat_totals)) => {
                        for c in stat_cells.iter().filter(|c| c.line == line) {
                            if let Some(b) = keys.index(c.key) {
                                data[b] = c.value;
                            }
                        }
                        stat_totals.iter().find(|x| x.line == line && x.range == r).map_or(0.0, |x| x.value)
                    }
                };
                lines.push((value.clone(), data, total));
            }
            sort_lines(&mut lines);
            per_series.push(lines);
        }
        out.push(per_series);
    }
    Ok(Some((out, listed)))
}

/// A split and its lines' values, to find the line of a breakdown value.
struct OnLine<'a> {
    split: Option<&'a Split>,
    values: &'a [Option<String>],
}

/// The actors behind one data point of the current period, counted by the backend and described
/// from their profiles (as the scan path checks the request first).
async fn pushed_actors(
    ctx: &Ctx<'_>,
    request: &TrendActors,
    tests: &[EventTest],
    actor: &ActorKind,
    period: &Period,
    on: OnLine<'_>,
) -> Result<Option<Vec<Actor>>, QueryError> {
    let test = tests
        .get(request.series)
        .ok_or_else(|| QueryError::invalid(format!("actors.series {} does not exist", request.series)))?;
    if request.bucket >= period.buckets.len() {
        return Err(QueryError::invalid(format!("actors.bucket {} is past the last bucket", request.bucket)));
    }
    let bounds = &period.buckets.bounds;
    let from = bounds.get(request.bucket).copied().unwrap_or(period.from).max(period.from);
    let to = bounds.get(request.bucket + 1).copied().unwrap_or(period.to).min(period.to);
    let on = match on.split {
        None => None,
        Some(split) => match on.values.iter().position(|v| *v == request.breakdown_value) {
            Some(line) => Some((split.clone(), line as u32)),
            None => return Ok(Some(Vec::new())),
        },
    };
    let Some(keys) = pushdown::actors(ctx, actor.clone(), test.clone(), 1, (from, to), on).await? else {
        return Ok(None);
    };
    let Some(profiles) = pushdown::profiles(ctx, actor.clone()).await? else { return Ok(None) };
    let profiles = pushdown::ProfileIndex::new(&profiles);
    let mut actors: Vec<Actor> = keys.iter().map(|(key, _)| profiles.actor(key)).collect();
    actors.sort_by(|a, b| a.key.cmp(&b.key));
    actors.truncate(request.limit.unwrap_or(100));
    Ok(Some(actors))
}

/// What a series' statistic is taken over, for the maths other than counts.
fn measure(s: &TrendSeries, actor: &ActorKind) -> Option<Measure> {
    let property = |stat| s.property.clone().map(|key| Measure::Property { key, stat });
    let per_actor = |stat| Some(Measure::PerActor { actor: actor.clone(), stat });
    match s.math {
        Math::Total | Math::Unique | Math::WeeklyActive | Math::MonthlyActive => None,
        Math::Sum => property(Stat::Sum),
        Math::Avg => property(Stat::Avg),
        Math::Min => property(Stat::Min),
        Math::Max => property(Stat::Max),
        Math::Median => property(Stat::Quantile(0.5)),
        Math::P90 => property(Stat::Quantile(0.9)),
        Math::AvgPerActor => per_actor(Stat::Avg),
        Math::MinPerActor => per_actor(Stat::Min),
        Math::MaxPerActor => per_actor(Stat::Max),
        Math::MedianPerActor => per_actor(Stat::Quantile(0.5)),
        Math::P90PerActor => per_actor(Stat::Quantile(0.9)),
    }
}

/// Per period, per series, its lines, and the actors asked for, computed from a scan.
async fn scanned_values(
    ctx: &Ctx<'_>,
    q: &TrendsQuery,
    cohorts: &HashMap<String, Arc<ResolvedCohort>>,
    periods: &[&Period],
) -> Result<(Vec<Vec<SeriesValues>>, Option<Vec<troupe_store::Actor>>), QueryError> {
    let mut needs = Needs::new();
    let uses_actors = q.actors.is_some() || q.series.iter().any(|s| looks_at_actors(s.math));
    match &q.common.count_by {
        // A total or a property's statistic does not look at who: no person to resolve.
        CountBy::Users if !uses_actors => {}
        by => needs.count_by(by),
    }
    for s in &q.series {
        needs.selector(&s.selector, cohorts);
        match &s.property_source {
            PropertySource::Event => needs.event_properties |= s.property.is_some(),
            source => needs.property_source(source),
        }
    }
    if let Some(f) = &q.common.filters {
        needs.filter(f, cohorts);
    }
    if let Some(b) = &q.common.breakdown {
        needs.breakdown(b);
    }
    if q.actors.is_some() {
        needs.actors_listed();
    }
    let current = periods[0];
    let scan_from =
        periods.iter().map(|p| p.lead.as_ref().map_or(p.from, Buckets::start)).min().unwrap_or(current.from);
    let frame = scan(ctx, &needs, Some(scan_from), Some(current.to)).await?;
    let column = frame.column(&q.common.count_by);
    let matchers: Vec<Matcher> = q
        .series
        .iter()
        .map(|s| frame.matcher(&s.selector, q.common.filters.as_ref(), cohorts))
        .collect::<Result<_, _>>()?;
    let split = match &q.common.breakdown {
        // The values kept are the top ones by matching events in the current period.
        Some(b) => Lines::top(frame.breakdown_keys(b), breakdown_limit(b), frame.len(), |i| {
            let ts = frame.scan.ts[i];
            ts >= current.from && ts < current.to && matchers.iter().any(|m| m.matches(&frame, i))
        }),
        None => Lines::none(),
    };
    let values = periods
        .iter()
        .map(|period| {
            let on = On { frame: &frame, column, period, split: &split, cumulative: q.cumulative };
            q.series.iter().zip(&matchers).map(|(s, m)| series_values(&on, s, m)).collect()
        })
        .collect();
    let actors = match &q.actors {
        Some(request) => Some(point_actors(&frame, request, &matchers, column, current, &split)?),
        None => None,
    };
    Ok((values, actors))
}

/// The distinct actors whose events make one data point of the current period.
fn point_actors(
    frame: &Frame,
    request: &TrendActors,
    matchers: &[Matcher],
    column: ActorColumn,
    period: &Period,
    split: &Lines,
) -> Result<Vec<troupe_store::Actor>, QueryError> {
    let m = matchers
        .get(request.series)
        .ok_or_else(|| QueryError::invalid(format!("actors.series {} does not exist", request.series)))?;
    if request.bucket >= period.buckets.len() {
        return Err(QueryError::invalid(format!("actors.bucket {} is past the last bucket", request.bucket)));
    }
    let line = split.values.iter().position(|v| *v == request.breakdown_value);
    let mut seen = HashSet::default();
    let mut hit = Vec::new();
    for i in 0..frame.len() {
        let ts = frame.scan.ts[i];
        if ts < period.from
            || ts >= period.to
            || period.buckets.index(ts) != Some(request.bucket)
            || !m.matches(frame, i)
        {
            continue;
        }
        split.of(i, &mut hit);
        if split.keys.is_some() && !line.is_some_and(|l| hit.contains(&l)) {
            continue;
        }
        seen.extend(frame.actors(i, column).iter().copied());
    }
    let mut actors: Vec<_> = seen.into_iter().filter_map(|a| frame.actor(column, a).cloned()).collect();
    actors.sort_by(|a, b| a.key.cmp(&b.key));
    actors.truncate(request.limit.unwrap_or(100));
    Ok(actors)
}

struct Period {
    /// The days before the first bucket that rolling windows reach back to.
    lead: Option<Buckets>,
    buckets: Buckets,
    from: i64,
    to: i64,
}

fn series_label(s: &TrendSeries, index: usize) -> String {
    s.label.clone().unwrap_or_else(|| s.selector.event.clone().unwrap_or_else(|| format!("All events ({index})")))
}

fn needs_property(math: Math) -> bool {
    matches!(math, Math::Sum | Math::Avg | Math::Min | Math::Max | Math::Median | Math::P90)
}

/// Whether `math` counts or measures per actor (a unique count, a per-actor statistic): the
/// maths [`Acc::new`] keeps actors for.
fn looks_at_actors(math: Math) -> bool {
    math != Math::Total && !needs_property(math)
}

/// One accumulator per (line, bucket) and per line over the range.
enum Acc {
    Count(u64),
    Actors(ActorSet),
    Values(Vec<f64>),
    /// A property of each actor's profile, by actor.
    ActorValues(HashMap<u32, f64>),
    PerActor(HashMap<u32, u64>),
}

impl Acc {
    /// An accumulator for `math`; `actors` and `cells` size a unique count's set (ids below
    /// `actors`, `cells` such sets alive at once).
    /// `of_profiles`: the property is read from actors' profiles, one value per actor.
    fn new(math: Math, of_profiles: bool, actors: usize, cells: usize) -> Acc {
        match math {
            Math::Total => Acc::Count(0),
            Math::Unique => Acc::Actors(ActorSet::new(actors, cells)),
            m if needs_property(m) && of_profiles => Acc::ActorValues(HashMap::default()),
            m if needs_property(m) => Acc::Values(Vec::new()),
            _ => Acc::PerActor(HashMap::default()),
        }
    }

    /// A profile's property value: kept once per actor.
    fn add_actor_value(&mut self, actor: u32, value: f64) {
        if let Acc::ActorValues(values) = self {
            values.insert(actor, value);
        }
    }

    fn add(&mut self, actors: &[u32], value: Option<f64>) {
        match self {
            Acc::Count(n) => *n += 1,
            Acc::Actors(set) => actors.iter().for_each(|&a| set.insert(a)),
            Acc::Values(values) => values.extend(value),
            Acc::ActorValues(_) => {}
            Acc::PerActor(counts) => {
                for &a in actors {
                    *counts.entry(a).or_default() += 1;
                }
            }
        }
    }

    /// `later`'s contents into this one: what counting its events after this one's would have
    /// made (values keep their order; a profile's value is the same in both).
    fn merge(&mut self, later: Acc) {
        match (self, later) {
            (Acc::Count(n), Acc::Count(m)) => *n += m,
            (Acc::Actors(set), Acc::Actors(theirs)) => set.union(theirs),
            (Acc::Values(values), Acc::Values(theirs)) => values.extend(theirs),
            (Acc::ActorValues(values), Acc::ActorValues(theirs)) => values.extend(theirs),
            (Acc::PerActor(counts), Acc::PerActor(theirs)) => {
                for (a, n) in theirs {
                    *counts.entry(a).or_default() += n;
                }
            }
            // Both made by `Acc::new` for the same math.
            _ => {}
        }
    }

    fn value(self, math: Math) -> f64 {
        match self {
            Acc::Count(n) => n as f64,
            Acc::Actors(set) => set.len() as f64,
            Acc::Values(values) => statistic(math, values),
            Acc::ActorValues(values) => statistic(math, values.into_values().collect()),
            Acc::PerActor(counts) => statistic(math, counts.into_values().map(|n| n as f64).collect()),
        }
    }
}

/// A statistic of some values; 0 when there are none. Percentiles interpolate linearly
/// between the two nearest ranks (the median of 1, 2, 3, 4 is 2.5).
fn statistic(math: Math, mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let n = values.len() as f64;
    match math {
        Math::Sum => values.iter().sum(),
        Math::Avg | Math::AvgPerActor => values.iter().sum::<f64>() / n,
        Math::Min | Math::MinPerActor => values.iter().copied().fold(f64::INFINITY, f64::min),
        Math::Max | Math::MaxPerActor => values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        Math::Median | Math::MedianPerActor => percentile(&mut values, 0.5),
        Math::P90 | Math::P90PerActor => percentile(&mut values, 0.9),
        Math::Total | Math::Unique | Math::WeeklyActive | Math::MonthlyActive => n,
    }
}

pub fn percentile(values: &mut [f64], p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let rank = p * (values.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    values[lo] + (values[hi] - values[lo]) * (rank - lo as f64)
}

/// What a series is counted on: the frame, whom, the period, the breakdown's lines.
struct On<'a> {
    frame: &'a Frame,
    column: ActorColumn,
    period: &'a Period,
    split: &'a Lines,
    cumulative: bool,
}

/// Every line of one series in one period: (breakdown value, per bucket, over the range).
fn series_values(on: &On<'_>, s: &TrendSeries, m: &Matcher) -> SeriesValues {
    if let Some(days) = rolling_days(s.math) {
        return rolling_values(on, m, days);
    }
    let n = on.period.buckets.len();
    let tally = parallel::count_ranges(on.frame.len(), |events| tally(on, s, m, events), Tally::merge);
    let Some(Tally { lines, firsts }) = tally else { return Vec::new() };
    let first_seen = on.cumulative && s.math == Math::Unique;
    let mut out: Vec<_> = lines
        .into_iter()
        .zip(&on.split.values)
        .zip(firsts)
        .filter_map(|((line, v), firsts)| {
            let (cells, total) = line?;
            let mut data: Vec<f64> = cells.into_iter().map(|c| c.value(s.math)).collect();
            if first_seen {
                data = vec![0.0; n];
                for b in firsts.into_values() {
                    data[b] += 1.0;
                }
                running_sum(&mut data);
            }
            Some((v.clone(), data, total.value(s.math)))
        })
        .collect();
    sort_lines(&mut out);
    out
}

/// One series counted over some of the events: per line, its accumulators per bucket and over
/// the range; for a cumulative unique count, each actor's first bucket per line.
struct Tally {
    lines: Vec<Option<(Vec<Acc>, Acc)>>,
    firsts: Vec<HashMap<u32, usize>>,
}

impl Tally {
    /// The tally of this range followed by `later`'s.
    fn merge(mut self, later: Tally) -> Tally {
        for (line, theirs) in self.lines.iter_mut().zip(later.lines) {
            match (line.as_mut(), theirs) {
                (_, None) => {}
                (None, theirs) => *line = theirs,
                (Some((cells, total)), Some((their_cells, their_total))) => {
                    cells.iter_mut().zip(their_cells).for_each(|(c, t)| c.merge(t));
                    total.merge(their_total);
                }
            }
        }
        for (firsts, theirs) in self.firsts.iter_mut().zip(later.firsts) {
            for (a, b) in theirs {
                let first = firsts.entry(a).or_insert(b);
                *first = (*first).min(b);
            }
        }
        self
    }
}

/// The events `events` of the frame counted for one series.
fn tally(on: &On<'_>, s: &TrendSeries, m: &Matcher, events: std::ops::Range<usize>) -> Tally {
    if let Some(tally) = tally_plain(on, s, m, events.clone()) {
        return tally;
    }
    let On { frame, column, period, split, .. } = *on;
    let n = period.buckets.len();
    // A property of profiles is counted once per actor of that kind (per bucket).
    let source = match &s.property_source {
        PropertySource::Event => None,
        PropertySource::Person => Some(ActorColumn::Persons),
        PropertySource::Group { group_type } => Some(frame.group_column(group_type)),
    };
    // Each range keeps its own sets: the sets alive at once are theirs times the ranges.
    let ranges = parallel::most_ranges(frame.len());
    let (actor_count, cells) = (frame.actor_count(column), (n + 1) * split.values.len() * ranges);
    let acc = || Acc::new(s.math, source.is_some(), actor_count, cells);
    let fresh = || ((0..n).map(|_| acc()).collect::<Vec<_>>(), acc());
    let mut lines: Vec<Option<(Vec<Acc>, Acc)>> = (0..split.values.len()).map(|_| None).collect();
    if split.keys.is_none() {
        lines[0] = Some(fresh());
    }
    // Cumulative unique: each actor's first bucket, per line.
    let first_seen = on.cumulative && s.math == Math::Unique;
    let mut firsts: Vec<HashMap<u32, usize>> = vec![HashMap::default(); split.values.len()];
    let mut hit = Vec::new();
    let mut hint = 0;
    let mut profile_values: Vec<(u32, f64)> = Vec::new();
    let property = s.property.as_deref().unwrap_or_default();
    for i in events {
        let ts = frame.scan.ts[i];
        if ts < period.from || ts >= period.to {
            continue;
        }
        let Some(bucket) = period.buckets.index_near(ts, &mut hint) else { continue };
        if !m.matches(frame, i) {
            continue;
        }
        let actors = frame.actors(i, column);
        let value = match source {
            None => s.property.as_ref().and_then(|_| frame.scan.properties.get(i)?.get(property)).and_then(number_of),
            Some(source) => {
                profile_values.clear();
                for &a in frame.actors(i, source) {
                    let v = frame.actor(source, a).and_then(|x| x.properties.get(property)).and_then(number_of);
                    profile_values.extend(v.map(|v| (a, v)));
                }
                None
            }
        };
        split.of(i, &mut hit);
        for &line in &hit {
            let (cells, total) = lines[line].get_or_insert_with(fresh);
            match source {
                None => {
                    cells[bucket].add(actors, value);
                    total.add(actors, value);
                }
                Some(_) => {
                    for &(a, v) in &profile_values {
                        cells[bucket].add_actor_value(a, v);
                        total.add_actor_value(a, v);
                    }
                }
            }
            if first_seen {
                for &a in actors {
                    let first = firsts[line].entry(a).or_insert(bucket);
                    *first = (*first).min(bucket);
                }
            }
        }
    }
    Tally { lines, firsts }
}

/// The most common series — events or distinct actors, no property, broken down or not —
/// counted in a tight loop: the name tested from a table when that is the whole test, the bucket
/// found from the previous event's, distinct actors as bits of a bitmap per line and bucket (the
/// range's set is their union). `None` when the series is not of that kind.
fn tally_plain(on: &On<'_>, s: &TrendSeries, m: &Matcher, events: std::ops::Range<usize>) -> Option<Tally> {
    let On { frame, column, period, split, cumulative } = *on;
    let plain = s.property.is_none()
        && s.property_source == PropertySource::Event
        && matches!(s.math, Math::Total | Math::Unique)
        && !(cumulative && s.math == Math::Unique);
    if !plain {
        return None;
    }
    let test = QuickMatch::new(m, frame);
    let (n, lines) = (period.buckets.len(), split.values.len());
    let ts = &frame.scan.ts[events.clone()];
    let mut hint = 0;
    let mut bucket_of = |i: usize| -> Option<usize> {
        let t = ts[i];
        if t < period.from || t >= period.to || !test.matches(events.start + i) {
            return None;
        }
        period.buckets.index_near(t, &mut hint)
    };
    // The lines of an event (unsplit: the one line).
    let mut hit = Vec::new();
    // Broken down, a line exists where a matching event was (unsplit, the line always does).
    let mut seen = vec![split.keys.is_none(); lines];
    let cells: Vec<Acc> = if s.math == Math::Total {
        let mut counts = vec![0u64; lines * n];
        for i in 0..ts.len() {
            let Some(b) = bucket_of(i) else { continue };
            for &l in lines_of(split, events.start + i, &mut hit) {
                counts[l * n + b] += 1;
                seen[l] = true;
            }
        }
        counts.into_iter().map(Acc::Count).collect()
    } else {
        let actor_count = frame.actor_count(column);
        let ranges = parallel::most_ranges(frame.len());
        if !ActorSet::dense_fits(actor_count, (n + 1) * lines * ranges) {
            return None;
        }
        let ids = frame.single_actors(column)?;
        let ids = ids.get(events.clone()).unwrap_or(&[]);
        let words = actor_count.div_ceil(64);
        let mut bits = vec![0u64; lines * n * words];
        for i in 0..ts.len() {
            let Some(b) = bucket_of(i) else { continue };
            let Some(&a) = ids.get(i) else { continue };
            let a = a as usize;
            for &l in lines_of(split, events.start + i, &mut hit) {
                seen[l] = true;
                if a < actor_count {
                    bits[(l * n + b) * words + a / 64] |= 1 << (a % 64);
                }
            }
        }
        (0..lines * n).map(|c| Acc::Actors(ActorSet::from_words(bits[c * words..(c + 1) * words].to_vec()))).collect()
    };
    let mut cells = cells.into_iter();
    let lines = seen
        .into_iter()
        .map(|seen| {
            let line: Vec<Acc> = cells.by_ref().take(n).collect();
            seen.then(|| {
                let mut total = Acc::new(s.math, false, frame.actor_count(column), n + 1);
                for c in &line {
                    match (&mut total, c) {
                        (Acc::Count(t), Acc::Count(x)) => *t += x,
                        (Acc::Actors(t), Acc::Actors(x)) => t.union(x.clone()),
                        _ => {}
                    }
                }
                (line, total)
            })
        })
        .collect();
    Some(Tally { lines, firsts: vec![HashMap::default(); split.values.len()] })
}

/// The lines of event `i` into `hit` (unsplit: the one line, without a call per event).
#[inline]
fn lines_of<'h>(split: &Lines, i: usize, hit: &'h mut Vec<usize>) -> &'h [usize] {
    match split.keys {
        None => &[0],
        Some(_) => {
            split.of(i, hit);
            hit
        }
    }
}

/// Rolling active actors: per daily bucket, the distinct actors with a matching event in the
/// `days` days ending with it (the bucket and the `days - 1` before, calendar days in the
/// question's timezone); over the range, the distinct actors active in it.
fn rolling_values(on: &On<'_>, m: &Matcher, days: usize) -> SeriesValues {
    let On { frame, column, period, split, .. } = *on;
    let n = period.buckets.len();
    let lead = period.lead.as_ref().map_or(0, Buckets::len);
    // The lead days and the range's, as one run of buckets.
    let mut days_run = period.lead.clone().unwrap_or_else(|| period.buckets.clone());
    if period.lead.is_some() {
        days_run.bounds.extend(period.buckets.bounds.iter().skip(1));
        days_run.labels.extend(period.buckets.labels.iter().cloned());
    }
    let mut active: Vec<Option<HashMap<u32, Vec<u32>>>> = vec![None; split.values.len()];
    let mut in_range: Vec<Option<ActorSet>> = (0..split.values.len()).map(|_| None).collect();
    if split.keys.is_none() {
        active[0] = Some(HashMap::default());
    }
    let (mut hit, mut hint) = (Vec::new(), 0);
    for i in 0..frame.len() {
        let ts = frame.scan.ts[i];
        let Some(day) = days_run.index_near(ts, &mut hint) else { continue };
        if ts >= period.to || !m.matches(frame, i) {
            continue;
        }
        split.of(i, &mut hit);
        for &line in &hit {
            let line_days = active[line].get_or_insert_with(HashMap::default);
            for &a in frame.actors(i, column) {
                line_days.entry(a).or_default().push(day as u32);
            }
            if ts >= period.from {
                let set = in_range[line].get_or_insert_with(|| ActorSet::new(frame.actor_count(column), 1));
                frame.actors(i, column).iter().for_each(|&a| set.insert(a));
            }
        }
    }
    let mut out: SeriesValues = Vec::new();
    for ((line, v), range_set) in active.into_iter().zip(&split.values).zip(in_range) {
        let Some(line) = line else { continue };
        let mut data = vec![0.0; n];
        // Bucket c is run day c + lead and covers the `days` run days ending there: day d is in
        // buckets d - lead ..= d - lead + days - 1. `stamp` counts an actor once per bucket.
        let mut stamp = vec![u32::MAX; n];
        for (a, mut active_days) in line {
            active_days.sort_unstable();
            active_days.dedup();
            for d in active_days {
                let first = (d as usize).saturating_sub(lead);
                let last = (d as usize + days).saturating_sub(lead).min(n);
                for c in first..last {
                    if stamp[c] != a {
                        stamp[c] = a;
                        data[c] += 1.0;
                    }
                }
            }
        }
        out.push((v.clone(), data, range_set.map_or(0.0, |s| s.len() as f64)));
    }
    sort_lines(&mut out);
    out
}

/// Biggest first; on ties "not set" after values; "other" last.
fn sort_lines(out: &mut SeriesValues) {
    out.sort_by(|a, b| {
        let other = |v: &Option<String>| v.as_deref() == Some(OTHER);
        other(&a.0)
            .cmp(&other(&b.0))
            .then(b.2.total_cmp(&a.2))
            .then(a.0.is_none().cmp(&b.0.is_none()))
            .then_with(|| a.0.cmp(&b.0))
    });
}

fn parse_formula(text: &str) -> Result<Node<DefaultNumericTypes>, QueryError> {
    evalexpr::build_operator_tree::<DefaultNumericTypes>(text)
        .map_err(|e| QueryError::invalid(format!("formula {text:?} does not parse: {e}")))
}

/// The formula per breakdown value, series named A, B, C… in order. A division by zero is 0.
fn apply_formula(
    node: &Node<DefaultNumericTypes>,
    text: &str,
    lines: &[TrendLine],
    series: usize,
) -> Result<Vec<TrendLine>, QueryError> {
    let mut values: Vec<Option<String>> = lines.iter().map(|l| l.breakdown_value.clone()).collect();
    values.sort();
    values.dedup();
    let Some(first) = lines.first() else { return Ok(Vec::new()) };
    let n = first.data.len();
    let mut out = Vec::new();
    for value in values {
        let line_of = |index: usize| lines.iter().find(|l| l.series == Some(index) && l.breakdown_value == value);
        let eval = |pick: &dyn Fn(&TrendLine) -> f64| -> Result<f64, QueryError> {
            let mut context = HashMapContext::<DefaultNumericTypes>::new();
            for index in 0..series {
                let x = line_of(index).map_or(0.0, pick);
                context
                    .set_value(series_name(index), evalexpr::Value::Float(x))
                    .map_err(|e| QueryError::invalid(format!("formula {text:?}: {e}")))?;
            }
            let result = node
                .eval_number_with_context(&context)
                .map_err(|e| QueryError::invalid(format!("formula {text:?}: {e}")))?;
            Ok(if result.is_finite() { result } else { 0.0 })
        };
        let mut data = Vec::with_capacity(n);
        for b in 0..n {
            data.push(eval(&|l: &TrendLine| l.data.get(b).copied().unwrap_or(0.0))?);
        }
        let aggregated_value = eval(&|l: &TrendLine| l.aggregated_value)?;
        out.push(TrendLine {
            label: text.to_string(),
            series: None,
            formula: Some(text.to_string()),
            breakdown_value: value,
            compare: first.compare.clone(),
            buckets: first.buckets.clone(),
            data,
            aggregated_value,
        });
    }
    Ok(out)
}

fn series_name(index: usize) -> String {
    let letters = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    letters.get(index).map_or_else(|| format!("S{index}"), |c| (*c as char).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Frame;
    use crate::spec::WeekStart;
    use crate::time::Calendar;
    use chrono::{TimeZone, Utc};
    use troupe_store::EventScan;

    /// Events counted on several threads (in ranges, merged) give what one thread gives, for
    /// every kind of accumulator: counts, distinct actors (the tight loop and the general one),
    /// property values, per-actor counts, cumulative first buckets.
    #[test]
    fn counting_on_several_threads_gives_the_single_thread_answer() {
        let from = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).single().expect("date");
        let days = 10;
        let events = 300_000usize;
        let mut scan = EventScan { names: vec!["a".into(), "b".into()], ..EventScan::default() };
        // A deterministic spread of times (in order), names, persons and values.
        for i in 0..events {
            let ts = from.timestamp_micros() + (i as i64) * (days * 86_400_000_000 / events as i64);
            scan.ts.push(ts);
            scan.name.push((i % 7 == 0) as u32);
            scan.person.push(((i * 7919) % 5003) as u32);
            let mut p = troupe_core::Properties::new();
            p.insert("n".into(), serde_json::json!((i % 13) as f64 + 0.1));
            scan.properties.push(p);
        }
        scan.persons = (0..5003)
            .map(|k| {
                let mut properties = troupe_core::Properties::new();
                if k % 5 != 0 {
                    properties.insert("plan".into(), serde_json::json!(["free", "pro", "team"][k % 3]));
                }
                Actor { key: format!("p{k}"), properties, ..Actor::default() }
            })
            .collect();
        let frame = Frame::new(scan);
        // Broken down by the person's plan, the top two kept: lines for two plans and "other".
        let breakdown: crate::spec::Breakdown =
            serde_json::from_value(serde_json::json!({"type": "person", "key": "plan", "limit": 2}))
                .expect("breakdown");
        let by_plan = Lines::top(frame.breakdown_keys(&breakdown), 2, frame.len(), |_| true);
        let calendar = Calendar::new(None, Interval::Day, WeekStart::Sunday).expect("calendar");
        let to = from + chrono::Duration::days(days);
        let buckets = calendar.buckets(from, to);
        let period = Period { lead: None, buckets, from: from.timestamp_micros(), to: to.timestamp_micros() };
        let split = Lines::none();
        let cohorts = HashMap::default();
        let series = |event: &str, math: Math, property: Option<&str>, filtered: bool| TrendSeries {
            selector: EventSelector {
                event: Some(event.into()),
                filters: filtered.then(|| {
                    serde_json::from_value(
                        serde_json::json!({"key": "n", "operator": "gt", "value": 3, "type": "event"}),
                    )
                    .expect("filter")
                }),
            },
            math,
            property: property.map(str::to_string),
            property_source: PropertySource::Event,
            label: None,
        };
        let cases = [
            (series("a", Math::Total, None, false), false),
            (series("a", Math::Unique, None, false), false),
            (series("b", Math::Unique, None, true), false),
            (series("a", Math::Unique, None, false), true),
            (series("a", Math::Sum, Some("n"), false), false),
            (series("b", Math::Median, Some("n"), false), false),
            (series("a", Math::AvgPerActor, None, false), false),
        ];
        for ((s, cumulative), split) in cases.iter().flat_map(|case| [(case, &split), (case, &by_plan)]) {
            let m = frame.matcher(&s.selector, None, &cohorts).expect("matcher");
            let on =
                On { frame: &frame, column: ActorColumn::Persons, period: &period, split, cumulative: *cumulative };
            let on_threads = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
                pool.install(|| series_values(&on, s, &m))
            };
            let one = on_threads(1);
            assert!(one[0].2 > 0.0, "{s:?}: something counted");
            assert_eq!(one.len(), split.values.len(), "a line per value: {one:?}");
            assert_eq!(on_threads(4), one, "{s:?} cumulative {cumulative}");
        }
    }

    #[test]
    fn percentiles_interpolate() {
        assert_eq!(percentile(&mut [4.0, 1.0, 3.0, 2.0], 0.5), 2.5);
        assert_eq!(percentile(&mut [5.0], 0.9), 5.0);
        assert!((percentile(&mut (1..=10).map(f64::from).collect::<Vec<_>>(), 0.9) - 9.1).abs() < 1e-9);
    }
}
