//! Stickiness: how many actors did the event on exactly N distinct intervals of the range.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::cohorts::resolve_all;
use crate::error::QueryError;
use crate::frame::{breakdown_limit, keep, top_values, Matcher, Needs};
use crate::result::{StickinessLine, StickinessResult};
use crate::spec::StickinessQuery;
use crate::{scan, Ctx, Setup};

pub async fn run(ctx: &Ctx<'_>, q: &StickinessQuery) -> Result<StickinessResult, QueryError> {
    if q.series.is_empty() {
        return Err(QueryError::invalid("stickiness needs at least one series"));
    }
    let setup = Setup::new(&q.common, ctx.now)?;
    let filters = q.common.filters.iter().chain(q.series.iter().filter_map(|s| s.filters.as_ref()));
    let cohorts = resolve_all(ctx, filters).await?;
    let mut needs = Needs::new();
    needs.count_by(&q.common.count_by);
    for s in &q.series {
        needs.selector(s, &cohorts);
    }
    if let Some(f) = &q.common.filters {
        needs.filter(f, &cohorts);
    }
    if let Some(b) = &q.common.breakdown {
        needs.breakdown(b);
    }
    let frame =
        scan(ctx, &needs, Some(setup.range.from.timestamp_micros()), Some(setup.range.to.timestamp_micros())).await?;
    let column = frame.column(&q.common.count_by);
    let matchers: Vec<Matcher> =
        q.series.iter().map(|s| frame.matcher(s, q.common.filters.as_ref(), &cohorts)).collect::<Result<_, _>>()?;
    let kept = q.common.breakdown.as_ref().map(|b| {
        let mut weights = HashMap::new();
        for i in (0..frame.len()).filter(|&i| matchers.iter().any(|m| m.matches(&frame, i))) {
            for v in frame.breakdown_values(b, i) {
                *weights.entry(v).or_insert(0u64) += 1;
            }
        }
        top_values(weights, breakdown_limit(b))
    });
    let n = setup.buckets.len();
    let mut series = Vec::new();
    for (index, (s, m)) in q.series.iter().zip(&matchers).enumerate() {
        // (breakdown value, actor) → the intervals it was active in.
        let mut active: HashMap<(Option<String>, u32), HashSet<usize>> = HashMap::new();
        for i in 0..frame.len() {
            let Some(bucket) = setup.buckets.index(frame.scan.ts[i]) else { continue };
            if !m.matches(&frame, i) {
                continue;
            }
            let values = match (&q.common.breakdown, &kept) {
                (Some(b), Some(kept)) => frame.breakdown_values(b, i).into_iter().map(|v| keep(kept, v)).collect(),
                _ => vec![None],
            };
            for v in values {
                for &a in frame.actors(i, column) {
                    active.entry((v.clone(), a)).or_default().insert(bucket);
                }
            }
        }
        let mut histograms: BTreeMap<Option<String>, Vec<u64>> = BTreeMap::new();
        if q.common.breakdown.is_none() {
            histograms.insert(None, vec![0; n]);
        }
        for ((v, _), buckets) in active {
            histograms.entry(v).or_insert_with(|| vec![0; n])[buckets.len() - 1] += 1;
        }
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
