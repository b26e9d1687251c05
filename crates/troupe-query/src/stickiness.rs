//! Stickiness: how many actors did the event on exactly N distinct intervals of the range.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use std::sync::Arc;

use crate::cohorts::{resolve_all, ResolvedCohort};
use crate::error::QueryError;
use crate::frame::{breakdown_limit, ActorColumn, Frame, Lines, Matcher, Needs, QuickMatch};
use crate::pushdown::{self, KeyMap};
use crate::result::{StickinessLine, StickinessResult};
use crate::spec::{EventSelector, StickinessQuery, StickyOperator};
use crate::splits;
use crate::time::Buckets;
use crate::{parallel, scan, Ctx, Setup};
use troupe_store::Actor;

pub async fn run(ctx: &Ctx<'_>, q: &StickinessQuery) -> Result<StickinessResult, QueryError> {
    if q.series.is_empty() {
        return Err(QueryError::invalid("stickiness needs at least one series"));
    }
    let setup = Setup::new(&q.common, ctx.now)?;
    let filters = q.common.filters.iter().chain(q.series.iter().filter_map(|s| s.filters.as_ref()));
    let cohorts = resolve_all(ctx, filters).await?;
    let n = setup.buckets.len();
    if q.criterion.is_some_and(|c| c.value == 0 && c.operator != StickyOperator::Gte) {
        return Err(QueryError::invalid(
            "criterion.value: an actor is active in an interval with at least one event, so exact or lte 0 never holds",
        ));
    }
    if let Some(request) = &q.actors {
        if request.series >= q.series.len() {
            return Err(QueryError::invalid(format!("actors.series {} does not exist", request.series)));
        }
        if request.intervals == 0 || request.intervals > n {
            return Err(QueryError::invalid(format!("actors.intervals must be between 1 and {n}")));
        }
    }
    // The backend's patterns say where actors were active, not how often: a criterion other
    // than "at least once", or a list of actors, is counted from a scan.
    let pushed = match at_least_once(q) && q.actors.is_none() {
        true => pushed_histograms(ctx, q, &setup, &cohorts).await?,
        false => None,
    };
    let (per_series, actors) = match pushed {
        Some(histograms) => (histograms, None),
        None => scanned_histograms(ctx, q, &setup, &cohorts).await?,
    };
    let mut series = Vec::new();
    for (index, (s, histograms)) in q.series.iter().zip(per_series).enumerate() {
        for (value, mut data) in histograms {
            if q.cumulative {
                for k in (0..n.saturating_sub(1)).rev() {
                    data[k] += data[k + 1];
                }
            }
            let label = s.event.clone().unwrap_or_else(|| format!("All events ({index})"));
            series.push(StickinessLine { label, series: index, breakdown_value: value, data });
        }
    }
    Ok(StickinessResult { intervals: (1..=n).collect(), series, actors })
}

/// Whether an actor is active in an interval with any event there (no criterion, or "at least
/// once"): then where it was active is all a question needs, not how often.
fn at_least_once(q: &StickinessQuery) -> bool {
    q.criterion.is_none_or(|c| c.operator == StickyOperator::Gte && c.value <= 1)
}

/// Per series, per line: how many actors were active in exactly 1, 2, … intervals.
type Histograms = Vec<(Option<String>, Vec<u64>)>;

/// From the backend's activity patterns: an actor's active intervals per series.
async fn pushed_histograms(
    ctx: &Ctx<'_>,
    q: &StickinessQuery,
    setup: &Setup,
    cohorts: &HashMap<String, Arc<ResolvedCohort>>,
) -> Result<Option<Vec<Histograms>>, QueryError> {
    let periods = pushdown::periods(&setup.calendar);
    let selectors: Vec<&EventSelector> = q.series.iter().collect();
    let Some(tests) = pushdown::tests(ctx, cohorts, &q.common, &selectors).await? else { return Ok(None) };
    let range = (setup.from_us, setup.to_us);
    let (split, values) = match &q.common.breakdown {
        None => (None, vec![None]),
        Some(b) => match splits::split(ctx, b, periods, &tests, &[range]).await? {
            Some(split) => split,
            None => return Ok(None),
        },
    };
    let split_lines = split.is_some();
    let Some(patterns) = pushdown::patterns(ctx, &q.common.count_by, periods, tests, None, range, split).await? else {
        return Ok(None);
    };
    let n = setup.buckets.len();
    let keys = KeyMap::new(&periods, &setup.buckets);
    let mut out = Vec::new();
    for s in 0..q.series.len() {
        // Per line, the histogram; unsplit, line 0 is there even when empty (as on the scan path).
        let mut histograms: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
        if !split_lines {
            histograms.insert(0, vec![0; n]);
        }
        for p in &patterns {
            let active = p.periods.get(s).map_or(0, |ks| ks.iter().filter(|&&k| keys.index(k).is_some()).count());
            if let Some(slot) = active.checked_sub(1) {
                histograms.entry(p.line).or_insert_with(|| vec![0; n])[slot] += p.actors;
            }
        }
        let lines = histograms
            .into_iter()
            .filter_map(|(line, data)| values.get(line as usize).map(|v| (v.clone(), data)))
            .collect();
        out.push(lines);
    }
    Ok(Some(out))
}

async fn scanned_histograms(
    ctx: &Ctx<'_>,
    q: &StickinessQuery,
    setup: &Setup,
    cohorts: &HashMap<String, Arc<ResolvedCohort>>,
) -> Result<(Vec<Histograms>, Option<Vec<Actor>>), QueryError> {
    let mut needs = Needs::new();
    if q.actors.is_some() {
        needs.actors_listed();
    }
    needs.count_by(&q.common.count_by);
    for s in &q.series {
        needs.selector(s, cohorts);
    }
    if let Some(f) = &q.common.filters {
        needs.filter(f, cohorts);
    }
    if let Some(b) = &q.common.breakdown {
        needs.breakdown(b);
    }
    let frame = scan(ctx, &needs, Some(setup.from_us), Some(setup.to_us)).await?;
    let column = frame.column(&q.common.count_by);
    let matchers: Vec<Matcher> =
        q.series.iter().map(|s| frame.matcher(s, q.common.filters.as_ref(), cohorts)).collect::<Result<_, _>>()?;
    let split = match &q.common.breakdown {
        Some(b) => Lines::top(frame.breakdown_keys(b), breakdown_limit(b), frame.len(), |i| {
            matchers.iter().any(|m| m.matches(&frame, i))
        }),
        None => Lines::none(),
    };
    let n = setup.buckets.len();
    let mut out = Vec::new();
    let mut listed = q.actors.as_ref().map(|_| Vec::new());
    for (index, m) in matchers.iter().enumerate() {
        if split.keys.is_none() && at_least_once(q) && q.actors.is_none() {
            if let Some(histogram) = active_intervals(&frame, column, m, &setup.buckets) {
                out.push(vec![(None, histogram)]);
                continue;
            }
        }
        // (line, actor) → its events per interval.
        let mut active: HashMap<(usize, u32), HashMap<usize, u64>> = HashMap::default();
        let mut hit = Vec::new();
        let mut hint = 0;
        for i in 0..frame.len() {
            let Some(bucket) = setup.buckets.index_near(frame.scan.ts[i], &mut hint) else { continue };
            if !m.matches(&frame, i) {
                continue;
            }
            split.of(i, &mut hit);
            for &line in &hit {
                for &a in frame.actors(i, column) {
                    *active.entry((line, a)).or_default().entry(bucket).or_default() += 1;
                }
            }
        }
        let mut histograms: BTreeMap<usize, Vec<u64>> = BTreeMap::new();
        if split.keys.is_none() {
            histograms.insert(0, vec![0; n]);
        }
        let wanted = q.actors.as_ref().filter(|r| r.series == index);
        for ((line, actor), per_bucket) in active {
            let counted = per_bucket.values().filter(|&&events| q.criterion.is_none_or(|c| c.passes(events))).count();
            if let Some(slot) = counted.checked_sub(1) {
                histograms.entry(line).or_insert_with(|| vec![0; n])[slot] += 1;
            }
            if let (Some(request), Some(list)) = (wanted, listed.as_mut()) {
                let bar = if q.cumulative { counted >= request.intervals } else { counted == request.intervals };
                if bar && split.values[line] == request.breakdown_value {
                    list.extend(frame.actor(column, actor).cloned());
                }
            }
        }
        out.push(histograms.into_iter().map(|(line, data)| (split.values[line].clone(), data)).collect());
    }
    let actors = listed.map(|mut list| {
        list.sort_by(|a, b| a.key.cmp(&b.key));
        list.truncate(q.actors.as_ref().and_then(|r| r.limit).unwrap_or(100));
        list
    });
    Ok((out, actors))
}

/// Bitmaps per range at most, in bytes: beyond, the general count (a map per actor) is used.
const ACTIVE_BITS_BUDGET: usize = 64 << 20;

/// The common question — no breakdown, active means at least one event — on every core: each
/// actor's active intervals as a row of bits, ranges of events OR-ed together, then actors
/// counted by how many bits they have. `None` when the rows would take too much memory.
fn active_intervals(frame: &Frame, column: ActorColumn, m: &Matcher, buckets: &Buckets) -> Option<Vec<u64>> {
    let n = buckets.len();
    let (actors, words) = (frame.actor_count(column), n.div_ceil(64).max(1));
    let ranges = parallel::most_ranges(frame.len());
    if actors.saturating_mul(words).saturating_mul(8).saturating_mul(ranges) > ACTIVE_BITS_BUDGET {
        return None;
    }
    let test = QuickMatch::new(m, frame);
    let rows = parallel::count_ranges(
        frame.len(),
        |events| {
            let mut bits = vec![0u64; actors * words];
            let mut hint = 0;
            for i in events {
                let Some(b) = buckets.index_near(frame.scan.ts[i], &mut hint) else { continue };
                if !test.matches(i) {
                    continue;
                }
                for &a in frame.actors(i, column) {
                    if let Some(w) = bits.get_mut(a as usize * words + b / 64) {
                        *w |= 1 << (b % 64);
                    }
                }
            }
            bits
        },
        |mut earlier, later| {
            earlier.iter_mut().zip(later).for_each(|(w, l)| *w |= l);
            earlier
        },
    )?;
    let mut histogram = vec![0u64; n];
    for row in rows.chunks(words) {
        let active: u32 = row.iter().map(|w| w.count_ones()).sum();
        if let Some(slot) = (active as usize).checked_sub(1) {
            histogram[slot] += 1;
        }
    }
    Some(histogram)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{Interval, WeekStart};
    use crate::time::Calendar;
    use chrono::{TimeZone, Utc};
    use troupe_store::{Actor, EventScan};

    /// Active intervals as bits, on one thread or several, give each actor's count of distinct
    /// active days, as counted one by one here.
    #[test]
    fn active_intervals_on_several_threads_count_each_actors_days() {
        let from = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).single().expect("date");
        let (days, events, actors) = (70i64, 300_000usize, 3_001usize);
        let mut scan = EventScan { names: vec!["x".into(), "y".into()], ..EventScan::default() };
        for i in 0..events {
            scan.ts.push(
                from.timestamp_micros() + ((i * 48_271) % events) as i64 * (days * 86_400_000_000 / events as i64),
            );
            scan.name.push((i % 4 == 0) as u32);
            scan.person.push(((i * 7) % actors) as u32);
        }
        scan.persons = (0..actors).map(|k| Actor { key: format!("p{k}"), ..Actor::default() }).collect();
        let mut expected_days: HashMap<u32, std::collections::BTreeSet<i64>> = HashMap::default();
        for i in (0..events).filter(|&i| scan.name[i] == 0) {
            expected_days
                .entry(scan.person[i])
                .or_default()
                .insert((scan.ts[i] - from.timestamp_micros()) / 86_400_000_000);
        }
        let mut expected = vec![0u64; days as usize];
        for d in expected_days.values() {
            expected[d.len() - 1] += 1;
        }
        let frame = Frame::new(scan);
        let buckets = Calendar::new(None, Interval::Day, WeekStart::Sunday)
            .expect("calendar")
            .buckets(from, from + chrono::Duration::days(days));
        let m = frame
            .matcher(&EventSelector { event: Some("x".into()), filters: None }, None, &HashMap::default())
            .expect("matcher");
        for threads in [1, 4] {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().expect("pool");
            let got = pool.install(|| active_intervals(&frame, ActorColumn::Persons, &m, &buckets));
            assert_eq!(got.as_ref(), Some(&expected), "{threads} threads");
        }
    }
}
