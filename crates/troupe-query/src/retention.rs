//! Retention: cohorts by the interval of a start event, and how many of each cohort did the
//! return event 1, 2, … intervals later (the classic triangle).

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use std::sync::Arc;

use crate::actor_set::BucketSet;
use crate::cohorts::{resolve_all, ResolvedCohort};
use crate::error::QueryError;
use crate::frame::{breakdown_limit, keep, top_values, Needs};
use crate::pushdown::{self, KeyMap};
use crate::result::{RetentionCell, RetentionResult, RetentionRow};
use crate::spec::{Breakdown, Cohorting, RetentionQuery};
use crate::splits;
use crate::{scan, Ctx, Setup};
use troupe_store::aggregate::StreamsRequest;

/// One actor's part: the cohorts it entered (bucket → entering event) and where it returned.
#[derive(Default)]
struct Activity {
    /// The earliest start event: (time, event index).
    first_start: Option<(i64, usize)>,
    /// Cohort bucket → its earliest start event there.
    cohorts: BTreeMap<usize, (i64, usize)>,
    returned: BucketSet,
}

pub async fn run(ctx: &Ctx<'_>, q: &RetentionQuery) -> Result<RetentionResult, QueryError> {
    let setup = Setup::new(&q.common, ctx.now)?;
    let filters = q.common.filters.iter().chain(q.start.filters.as_ref()).chain(q.return_event.filters.as_ref());
    let cohorts = resolve_all(ctx, filters).await?;
    let n = setup.buckets.len();
    let pushed = match &q.common.breakdown {
        None => pushed_grid(ctx, q, &setup, &cohorts).await?,
        Some(b) => streamed_grid(ctx, q, b, &setup, &cohorts).await?,
    };
    let grid = match pushed {
        Some(grid) => grid,
        None => scanned_grid(ctx, q, &setup, &cohorts).await?,
    };
    let mut rows = Vec::new();
    for (value, cohorts) in grid {
        for (c, counts) in cohorts.iter().enumerate() {
            let size = counts[0];
            let values = (0..n - c)
                .map(|p| {
                    let count = counts[p];
                    let percentage = if size == 0 { 0.0 } else { count as f64 * 100.0 / size as f64 };
                    RetentionCell { period: p, count, percentage }
                })
                .collect();
            rows.push(RetentionRow {
                cohort: setup.buckets.labels[c].clone(),
                breakdown_value: value.clone(),
                size,
                values,
            });
        }
    }
    Ok(RetentionResult { buckets: setup.buckets.labels.clone(), rows })
}

/// Per breakdown value, per cohort bucket `c`: its size at index 0, then per period `p ≥ 1` how
/// many of it did the return event in bucket `c + p`.
type Grid = BTreeMap<Option<String>, Vec<Vec<u64>>>;

fn empty_cohorts(n: usize) -> Vec<Vec<u64>> {
    (0..n).map(|c| vec![0; n - c]).collect()
}

/// From the backend's activity patterns: each actor's start and return intervals.
async fn pushed_grid(
    ctx: &Ctx<'_>,
    q: &RetentionQuery,
    setup: &Setup,
    cohorts: &HashMap<String, Arc<ResolvedCohort>>,
) -> Result<Option<Grid>, QueryError> {
    let periods = pushdown::periods(&setup.calendar);
    let Some(tests) = pushdown::tests(ctx, cohorts, &q.common, &[&q.start, &q.return_event]).await? else {
        return Ok(None);
    };
    let first = (q.cohorting == Cohorting::FirstTime).then(|| tests[0].clone());
    let range = (setup.from_us, setup.to_us);
    let Some(patterns) = pushdown::patterns(ctx, &q.common.count_by, periods, tests, first, range, None).await? else {
        return Ok(None);
    };
    let n = setup.buckets.len();
    let keys = KeyMap::new(&periods, &setup.buckets);
    let mut cohorts = empty_cohorts(n);
    for p in &patterns {
        let entered: Vec<usize> = match q.cohorting {
            Cohorting::FirstTime => {
                p.first.filter(|(_, in_range)| *in_range).and_then(|(k, _)| keys.index(k)).into_iter().collect()
            }
            Cohorting::Recurring => p.periods.first().into_iter().flatten().filter_map(|&k| keys.index(k)).collect(),
        };
        let returned: HashSet<usize> = p.periods.get(1).into_iter().flatten().filter_map(|&k| keys.index(k)).collect();
        for c in entered {
            cohorts[c][0] += p.actors;
            for (offset, count) in cohorts[c].iter_mut().enumerate().skip(1) {
                if returned.contains(&(c + offset)) {
                    *count += p.actors;
                }
            }
        }
    }
    Ok(Some(BTreeMap::from([(None, cohorts)])))
}

/// Broken down: each actor's start and return events from the backend's streams, each labelled
/// as the scan path labels it, through the scan path's grid.
async fn streamed_grid(
    ctx: &Ctx<'_>,
    q: &RetentionQuery,
    b: &Breakdown,
    setup: &Setup,
    cohorts: &HashMap<String, Arc<ResolvedCohort>>,
) -> Result<Option<Grid>, QueryError> {
    let Some(tests) = pushdown::tests(ctx, cohorts, &q.common, &[&q.start, &q.return_event]).await? else {
        return Ok(None);
    };
    let Some(labeller) = splits::Labeller::new(ctx, b).await? else { return Ok(None) };
    let from = match q.cohorting {
        // The first start event ever, before the range too.
        Cohorting::FirstTime => EARLIEST,
        Cohorting::Recurring => setup.from_us,
    };
    let request = StreamsRequest {
        actor: pushdown::actor_kind(ctx, &q.common.count_by).await?,
        tests,
        all_events: false,
        from,
        to: setup.to_us,
        keys: Some(labeller.by.clone()),
    };
    let Some(streams) = pushdown::streams(ctx, request).await? else { return Ok(None) };
    let mut labels: Vec<Option<String>> = Vec::new();
    let mut actors: Vec<Activity> = Vec::with_capacity(streams.len());
    let mut hint = 0;
    for stream in streams {
        let mut activity = Activity::default();
        for (k, (ts, mask)) in stream.events.into_iter().enumerate() {
            let event = labels.len();
            labels.push(stream.keys.get(k).and_then(|keys| labeller.label(keys)));
            activity.record(q, setup, (ts, event), (mask & 1 != 0, mask & 2 != 0), &mut hint);
        }
        actors.push(activity);
    }
    Ok(Some(grid(q, setup, actors, |event| labels.get(event).cloned().flatten())))
}

/// A lower bound before any event (microseconds, far enough from `i64::MIN` to stay a plain
/// integer literal in any SQL dialect).
const EARLIEST: i64 = i64::MIN / 2;

async fn scanned_grid(
    ctx: &Ctx<'_>,
    q: &RetentionQuery,
    setup: &Setup,
    cohorts: &HashMap<String, Arc<ResolvedCohort>>,
) -> Result<Grid, QueryError> {
    let mut needs = Needs::new();
    needs.count_by(&q.common.count_by);
    needs.selector(&q.start, cohorts);
    needs.selector(&q.return_event, cohorts);
    if let Some(f) = &q.common.filters {
        needs.filter(f, cohorts);
    }
    if let Some(b) = &q.common.breakdown {
        needs.breakdown(b);
    }
    // First-time cohorts need each actor's first start event ever, before the range too.
    let from = match q.cohorting {
        Cohorting::FirstTime => None,
        Cohorting::Recurring => Some(setup.from_us),
    };
    let frame = scan(ctx, &needs, from, Some(setup.to_us)).await?;
    let column = frame.column(&q.common.count_by);
    let start = frame.matcher(&q.start, q.common.filters.as_ref(), cohorts)?;
    let back = frame.matcher(&q.return_event, q.common.filters.as_ref(), cohorts)?;

    // Actor ids are dense: one slot each beats hashing once per event.
    let mut actors: Vec<Activity> = Vec::new();
    actors.resize_with(frame.actor_count(column), Activity::default);
    let mut hint = 0;
    for i in 0..frame.len() {
        let (is_start, is_return) = (start.matches(&frame, i), back.matches(&frame, i));
        if !is_start && !is_return {
            continue;
        }
        for &a in frame.actors(i, column) {
            if let Some(activity) = actors.get_mut(a as usize) {
                activity.record(q, setup, (frame.scan.ts[i], i), (is_start, is_return), &mut hint);
            }
        }
    }
    let value = |event: usize| {
        q.common.breakdown.as_ref().and_then(|bd| frame.breakdown_values(bd, event).into_iter().flatten().next())
    };
    Ok(grid(q, setup, actors, value))
}

impl Activity {
    /// One start and/or return event `(time, event index)` of the actor, in any order; `hint`
    /// is the bucket of the event before (see [`crate::time::Buckets::index_near`]).
    fn record(
        &mut self,
        q: &RetentionQuery,
        setup: &Setup,
        (ts, i): (i64, usize),
        (is_start, is_return): (bool, bool),
        hint: &mut usize,
    ) {
        let bucket = if setup.in_range(ts) { setup.buckets.index_near(ts, hint) } else { None };
        if is_start {
            // Events come unordered: keep the earliest.
            earliest(&mut self.first_start, (ts, i));
            if let (Cohorting::Recurring, Some(b)) = (q.cohorting, bucket) {
                let entry = self.cohorts.entry(b).or_insert((ts, i));
                *entry = (*entry).min((ts, i));
            }
        }
        if let (true, Some(b)) = (is_return, bucket) {
            self.returned.insert(b);
        }
    }
}

/// The grid from each actor's activity (indexed by actor id); `value` is the breakdown value of
/// an entering event.
fn grid(q: &RetentionQuery, setup: &Setup, mut actors: Vec<Activity>, value: impl Fn(usize) -> Option<String>) -> Grid {
    let buckets = &setup.buckets;
    if q.cohorting == Cohorting::FirstTime {
        for activity in &mut actors {
            if let Some((ts, event)) = activity.first_start.filter(|(ts, _)| setup.in_range(*ts)) {
                if let Some(b) = buckets.index(ts) {
                    activity.cohorts.insert(b, (ts, event));
                }
            }
        }
    }

    // (breakdown value, cohort bucket) → actors.
    let mut entries: Vec<(Option<String>, usize, u32)> = Vec::new();
    for (a, activity) in actors.iter().enumerate() {
        for (&b, &(_, event)) in &activity.cohorts {
            entries.push((value(event), b, a as u32));
        }
    }
    if let Some(bd) = &q.common.breakdown {
        let mut weights = HashMap::default();
        for (v, _, _) in &entries {
            *weights.entry(v.clone()).or_insert(0u64) += 1;
        }
        let kept = top_values(weights, breakdown_limit(bd));
        for e in &mut entries {
            e.0 = keep(&kept, e.0.take());
        }
    }
    let mut grid: BTreeMap<Option<String>, Vec<Vec<u32>>> = BTreeMap::new();
    if q.common.breakdown.is_none() {
        grid.insert(None, vec![Vec::new(); buckets.len()]);
    }
    for (v, b, a) in entries {
        grid.entry(v).or_insert_with(|| vec![Vec::new(); buckets.len()])[b].push(a);
    }
    let n = buckets.len();
    let mut out = Grid::new();
    for (value, members) in grid {
        let mut table = empty_cohorts(n);
        for (c, members) in members.iter().enumerate() {
            table[c][0] = members.len() as u64;
            for (p, count) in table[c].iter_mut().enumerate().skip(1) {
                *count = members.iter().filter(|&&a| actors[a as usize].returned.contains(c + p)).count() as u64;
            }
        }
        out.insert(value, table);
    }
    out
}

fn earliest(slot: &mut Option<(i64, usize)>, candidate: (i64, usize)) {
    if slot.is_none_or(|current| candidate < current) {
        *slot = Some(candidate);
    }
}
