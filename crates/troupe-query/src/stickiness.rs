//! Stickiness: how many actors did the event on exactly N distinct intervals of the range.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap as HashMap;

use std::sync::Arc;

use crate::cohorts::{resolve_all, ResolvedCohort};
use crate::error::QueryError;
use crate::frame::{breakdown_limit, Lines, Matcher, Needs};
use crate::pushdown::{self, KeyMap};
use crate::result::{StickinessLine, StickinessResult};
use crate::spec::{EventSelector, StickinessQuery, StickyOperator};
use crate::splits;
use crate::{scan, Ctx, Setup};

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
    // The backend's patterns say where actors were active, not how often: a criterion other
    // than "at least once" is counted from a scan.
    let plain = q.criterion.is_none_or(|c| c.operator == StickyOperator::Gte && c.value <= 1);
    let pushed = match plain {
        true => pushed_histograms(ctx, q, &setup, &cohorts).await?,
        false => None,
    };
    let per_series = match pushed {
        Some(histograms) => histograms,
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
    Ok(StickinessResult { intervals: (1..=n).collect(), series })
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
) -> Result<Vec<Histograms>, QueryError> {
    let mut needs = Needs::new();
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
    for m in &matchers {
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
        for ((line, _), per_bucket) in active {
            let counted = per_bucket.values().filter(|&&events| q.criterion.is_none_or(|c| c.passes(events))).count();
            if let Some(slot) = counted.checked_sub(1) {
                histograms.entry(line).or_insert_with(|| vec![0; n])[slot] += 1;
            }
        }
        out.push(histograms.into_iter().map(|(line, data)| (split.values[line].clone(), data)).collect());
    }
    Ok(out)
}
