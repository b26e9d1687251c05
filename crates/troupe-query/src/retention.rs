//! Retention: cohorts by the interval of a start event, and how many of each cohort did the
//! return event 1, 2, … intervals later (the classic triangle).

use std::collections::BTreeMap;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};

use std::sync::Arc;

use crate::actor_set::BucketSet;
use crate::cohorts::{resolve_all, ResolvedCohort};
use crate::error::QueryError;
use crate::frame::{breakdown_limit, keep, top_values, ActorColumn, Frame, Matcher, Needs, QuickMatch};
use crate::pushdown::{self, KeyMap};
use crate::result::{RetentionCell, RetentionMean, RetentionMeanCell, RetentionResult, RetentionRow};
use crate::spec::{Cohorting, RetentionQuery};
use crate::splits;
use crate::{parallel, scan, Ctx, Setup};
use troupe_store::aggregate::StreamsRequest;
use troupe_store::Actor;

/// One actor's part: the cohorts it entered (bucket → entering event) and where it returned.
#[derive(Debug, Default, PartialEq)]
struct Activity {
    /// The earliest start event: (time, event index).
    first_start: Option<(i64, usize)>,
    /// Cohort bucket → its earliest start event there.
    cohorts: BTreeMap<usize, (i64, usize)>,
    /// The buckets it came back in (with at least `min_occurrences` return events).
    returned: BucketSet,
    /// The latest of them, for cumulative retention.
    last_returned: Option<usize>,
    /// Return events per bucket, kept only when coming back takes more than one.
    counts: HashMap<usize, u32>,
}

/// A question's answer before it becomes rows: the grid, and the actors of the cell asked for.
struct Answer {
    grid: Grid,
    actors: Option<Vec<Actor>>,
}

pub async fn run(ctx: &Ctx<'_>, q: &RetentionQuery) -> Result<RetentionResult, QueryError> {
    if q.min_occurrences == Some(0) {
        return Err(QueryError::invalid("min_occurrences must be at least 1"));
    }
    let setup = Setup::new(&q.common, ctx.now)?;
    let n = setup.buckets.len();
    if let Some(a) = &q.actors {
        if a.cohort >= n || a.period >= n - a.cohort {
            return Err(QueryError::invalid(format!(
                "actors: cohort {} period {} is not a cell of the triangle ({n} cohorts; cohort c has periods 0 to {n} - 1 - c)",
                a.cohort, a.period
            )));
        }
    }
    let filters = q.common.filters.iter().chain(q.start.filters.as_ref()).chain(q.return_event.filters.as_ref());
    let cohorts = resolve_all(ctx, filters).await?;
    // Counts of actors per pattern answer the plain triangle; anything per actor or per event
    // needs each actor's events.
    let per_actor = q.common.breakdown.is_some() || q.min_occurrences.unwrap_or(1) > 1 || q.actors.is_some();
    let pushed = match per_actor {
        false => pushed_grid(ctx, q, &setup, &cohorts).await?.map(|grid| Answer { grid, actors: None }),
        true => streamed_grid(ctx, q, &setup, &cohorts).await?,
    };
    let answer = match pushed {
        Some(answer) => answer,
        None => scanned_grid(ctx, q, &setup, &cohorts).await?,
    };
    let mut rows = Vec::new();
    let mut means = Vec::new();
    for (value, cohorts) in answer.grid {
        for (c, counts) in cohorts.iter().enumerate() {
            let size = counts[0];
            let values = (0..n - c)
                .map(|p| RetentionCell { period: p, count: counts[p], percentage: percent(counts[p], size) })
                .collect();
            rows.push(RetentionRow {
                cohort: setup.buckets.labels[c].clone(),
                breakdown_value: value.clone(),
                size,
                values,
            });
        }
        means.push(RetentionMean { breakdown_value: value, values: mean(&cohorts) });
    }
    Ok(RetentionResult { buckets: setup.buckets.labels.clone(), rows, means, actors: answer.actors })
}

fn percent(count: u64, size: u64) -> f64 {
    if size == 0 {
        0.0
    } else {
        count as f64 * 100.0 / size as f64
    }
}

/// The mean row: per period, over the cohorts that reach it and have actors.
fn mean(cohorts: &[Vec<u64>]) -> Vec<RetentionMeanCell> {
    (0..cohorts.len())
        .map(|p| {
            let reaching: Vec<&Vec<u64>> = cohorts.iter().filter(|c| c.len() > p && c[0] > 0).collect();
            let (size, count) = reaching.iter().fold((0, 0), |(s, n), c| (s + c[0], n + c[p]));
            let simple = match reaching.len() {
                0 => 0.0,
                k => reaching.iter().map(|c| percent(c[p], c[0])).sum::<f64>() / k as f64,
            };
            RetentionMeanCell {
                period: p,
                cohorts: reaching.len(),
                size,
                count,
                percentage: percent(count, size),
                simple_percentage: simple,
            }
        })
        .collect()
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
        let last = returned.iter().max().copied();
        for c in entered {
            cohorts[c][0] += p.actors;
            for (offset, count) in cohorts[c].iter_mut().enumerate().skip(1) {
                let back = match q.cumulative {
                    true => last.is_some_and(|l| l >= c + offset),
                    false => returned.contains(&(c + offset)),
                };
                if back {
                    *count += p.actors;
                }
            }
        }
    }
    Ok(Some(BTreeMap::from([(None, cohorts)])))
}

/// Per actor (broken down, counting return events, or listing a cell's actors): each actor's
/// start and return events from the backend's streams, each labelled as the scan path labels
/// it, through the scan path's grid.
async fn streamed_grid(
    ctx: &Ctx<'_>,
    q: &RetentionQuery,
    setup: &Setup,
    cohorts: &HashMap<String, Arc<ResolvedCohort>>,
) -> Result<Option<Answer>, QueryError> {
    let Some(tests) = pushdown::tests(ctx, cohorts, &q.common, &[&q.start, &q.return_event]).await? else {
        return Ok(None);
    };
    let Some(labeller) = splits::Labeller::of(ctx, q.common.breakdown.as_ref()).await? else { return Ok(None) };
    let actor = pushdown::actor_kind(ctx, &q.common.count_by).await?;
    let Some(profiles) = pushdown::listed_profiles(ctx, &actor, q.actors.is_some()).await? else { return Ok(None) };
    let from = match q.cohorting {
        // The first start event ever, before the range too.
        Cohorting::FirstTime => EARLIEST,
        Cohorting::Recurring => setup.from_us,
    };
    let request = StreamsRequest {
        actor,
        tests,
        all_events: false,
        from,
        to: setup.to_us,
        keys: labeller.as_ref().map(|l| l.by.clone()),
    };
    let Some(streams) = pushdown::streams(ctx, request).await? else { return Ok(None) };
    let mut labels: Vec<Option<String>> = Vec::new();
    let mut keys: Vec<String> = Vec::with_capacity(streams.len());
    let mut actors: Vec<Activity> = Vec::with_capacity(streams.len());
    let mut hint = 0;
    for stream in streams {
        let mut activity = Activity::default();
        for (k, &(ts, mask)) in stream.events.iter().enumerate() {
            let event = labels.len();
            labels.push(splits::Labeller::event_label(labeller.as_ref(), &stream, k));
            activity.record(q, setup, (ts, event), (mask & 1 != 0, mask & 2 != 0), &mut hint);
        }
        activity.count_returns(q);
        actors.push(activity);
        keys.push(stream.actor);
    }
    let profiles = pushdown::ProfileIndex::new(&profiles);
    let actor = |a: u32| keys.get(a as usize).map(|key| profiles.actor(key));
    Ok(Some(grid(q, setup, actors, |event| labels.get(event).cloned().flatten(), &actor)))
}

/// A lower bound before any event (microseconds, far enough from `i64::MIN` to stay a plain
/// integer literal in any SQL dialect).
const EARLIEST: i64 = i64::MIN / 2;

async fn scanned_grid(
    ctx: &Ctx<'_>,
    q: &RetentionQuery,
    setup: &Setup,
    cohorts: &HashMap<String, Arc<ResolvedCohort>>,
) -> Result<Answer, QueryError> {
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
    if q.actors.is_some() {
        needs.actors_listed();
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

    let actors = activities(q, setup, &frame, column, (&start, &back));
    let value = |event: usize| {
        q.common.breakdown.as_ref().and_then(|bd| frame.breakdown_values(bd, event).into_iter().flatten().next())
    };
    Ok(grid(q, setup, actors, value, &|a| frame.actor(column, a).cloned()))
}

/// Each actor's starts and returns (indexed by actor id) from the frame's events.
fn activities(
    q: &RetentionQuery,
    setup: &Setup,
    frame: &Frame,
    column: ActorColumn,
    (start, back): (&Matcher, &Matcher),
) -> Vec<Activity> {
    // Actor ids are dense: one slot each beats hashing once per event. Ranges of events are
    // recorded on every core, each into its own slots, then merged.
    let actor_count = frame.actor_count(column);
    let (start, back) = (QuickMatch::new(start, frame), QuickMatch::new(back, frame));
    let record_range = |events: std::ops::Range<usize>| {
        let mut actors: Vec<Activity> = Vec::new();
        actors.resize_with(actor_count, Activity::default);
        let mut hint = 0;
        for i in events {
            let (is_start, is_return) = (start.matches(i), back.matches(i));
            if !is_start && !is_return {
                continue;
            }
            for &a in frame.actors(i, column) {
                if let Some(activity) = actors.get_mut(a as usize) {
                    activity.record(q, setup, (frame.scan.ts[i], i), (is_start, is_return), &mut hint);
                }
            }
        }
        actors
    };
    let merge = |mut earlier: Vec<Activity>, later: Vec<Activity>| {
        earlier.iter_mut().zip(later).for_each(|(a, b)| a.merge(b));
        earlier
    };
    let mut actors = parallel::count_ranges(frame.len(), record_range, merge).unwrap_or_default();
    actors.iter_mut().for_each(|a| a.count_returns(q));
    actors
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
            match q.min_occurrences.unwrap_or(1) {
                0 | 1 => self.came_back(b),
                // Counted here; whether that is enough is known once every event is in
                // (`count_returns`).
                _ => *self.counts.entry(b).or_insert(0) += 1,
            }
        }
    }

    /// After the last event: the buckets with at least `min_occurrences` return events count
    /// as returned.
    fn count_returns(&mut self, q: &RetentionQuery) {
        let min = q.min_occurrences.unwrap_or(1);
        let counts = std::mem::take(&mut self.counts);
        for (&b, &count) in &counts {
            if count >= min {
                self.came_back(b);
            }
        }
        self.counts = counts;
    }

    /// The actor counts as back in bucket `b`.
    fn came_back(&mut self, b: usize) {
        self.returned.insert(b);
        self.last_returned = self.last_returned.max(Some(b));
    }

    /// What recording `later`'s events after this one's would have made.
    fn merge(&mut self, later: Activity) {
        if let Some(first) = later.first_start {
            earliest(&mut self.first_start, first);
        }
        for (b, event) in later.cohorts {
            let entry = self.cohorts.entry(b).or_insert(event);
            *entry = (*entry).min(event);
        }
        for (b, count) in later.counts {
            *self.counts.entry(b).or_insert(0) += count;
        }
        self.returned.union(&later.returned);
        self.last_returned = self.last_returned.max(later.last_returned);
    }

    /// Whether the actor counts as back in `bucket`: came back then, or (cumulative) then or
    /// later.
    fn back_in(&self, bucket: usize, cumulative: bool) -> bool {
        match cumulative {
            true => self.last_returned.is_some_and(|last| last >= bucket),
            false => self.returned.contains(bucket),
        }
    }
}

/// The grid from each actor's activity (indexed by actor id); `value` is the breakdown value of
/// an entering event, `actor` an actor's profile (for the cell's actors).
fn grid(
    q: &RetentionQuery,
    setup: &Setup,
    mut actors: Vec<Activity>,
    value: impl Fn(usize) -> Option<String>,
    actor: &dyn Fn(u32) -> Option<Actor>,
) -> Answer {
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
    let back = |a: u32, bucket: usize| actors[a as usize].back_in(bucket, q.cumulative);
    let listed = q.actors.as_ref().map(|cell| {
        let members = grid.get(&cell.breakdown_value).and_then(|m| m.get(cell.cohort)).into_iter().flatten();
        let mut listed: Vec<Actor> = members
            .filter(|&&a| cell.period == 0 || back(a, cell.cohort + cell.period))
            .filter_map(|&a| actor(a))
            .collect();
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        listed.truncate(cell.limit.unwrap_or(100));
        listed
    });
    let mut out = Grid::new();
    for (value, members) in grid {
        let mut table = empty_cohorts(n);
        for (c, members) in members.iter().enumerate() {
            table[c][0] = members.len() as u64;
            for (p, count) in table[c].iter_mut().enumerate().skip(1) {
                *count = members.iter().filter(|&&a| back(a, c + p)).count() as u64;
            }
        }
        out.insert(value, table);
    }
    Answer { grid: out, actors: listed }
}

fn earliest(slot: &mut Option<(i64, usize)>, candidate: (i64, usize)) {
    if slot.is_none_or(|current| candidate < current) {
        *slot = Some(candidate);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use troupe_store::EventScan;

    /// Starts and returns recorded on several threads (ranges of events, merged) are what one
    /// thread records: earliest starts, cohorts, returns with a minimum of occurrences split
    /// across ranges.
    #[test]
    fn recording_on_several_threads_gives_the_single_thread_activity() {
        let now = chrono::DateTime::parse_from_rfc3339("2026-03-29T00:00:00Z").expect("date").to_utc();
        let from = now - chrono::Duration::days(28);
        let events = 300_000usize;
        let mut scan = EventScan { names: vec!["start".into(), "back".into()], ..EventScan::default() };
        for i in 0..events {
            // Times from a week before the range to its end, not in order.
            let offset = ((i * 7_919) % events) as i64 * (35 * 86_400_000_000 / events as i64);
            scan.ts.push(from.timestamp_micros() - 7 * 86_400_000_000 + offset);
            scan.name.push((i % 3 != 0) as u32);
            scan.person.push(((i * 104_729) % 4_001) as u32);
        }
        scan.persons = (0..4_001).map(|k| Actor { key: format!("p{k}"), ..Actor::default() }).collect();
        let frame = Frame::new(scan);
        for (cohorting, min) in [("first_time", None), ("recurring", Some(3))] {
            let q: RetentionQuery = serde_json::from_value(serde_json::json!({
                "date_range": {"from": "-28d"}, "interval": "week", "cohorting": cohorting,
                "start": {"event": "start"}, "return": {"event": "back"}, "min_occurrences": min,
            }))
            .expect("question");
            let setup = Setup::new(&q.common, now).expect("setup");
            let cohorts = HashMap::default();
            let start = frame.matcher(&q.start, None, &cohorts).expect("matcher");
            let back = frame.matcher(&q.return_event, None, &cohorts).expect("matcher");
            let on_threads = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
                pool.install(|| activities(&q, &setup, &frame, ActorColumn::Persons, (&start, &back)))
            };
            let one = on_threads(1);
            assert!(one.iter().any(|a| a.last_returned.is_some()), "someone came back");
            assert_eq!(on_threads(4), one, "{cohorting}");
        }
    }
}
