//! From each actor's path to the answer: step counts and times, breakdowns, the actors of a
//! step, conversion over time, and the time-to-convert histogram.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use troupe_store::Actor;

use crate::error::QueryError;
use crate::frame::{breakdown_limit, keep, top_values};
use crate::result::{
    ConversionLine, ConversionOverTime, FunnelBreakdown, FunnelResult, FunnelStep, TimeBin, TimeToConvertResult,
};
use crate::spec::{ActorStatus, FunnelQuery, StepSpan};
use crate::trends::percentile;
use crate::Setup;

use super::walk::{Path, Shape};
use super::MAX_BINS;

/// One actor's path, with the breakdown value it counts under and (over time) the bucket it
/// entered in.
pub struct Outcome {
    pub actor: u32,
    pub path: Path,
    pub value: Option<String>,
    pub bucket: usize,
}

/// Every actor's paths: overall (one per actor), attributed to breakdown values (an actor may
/// have several when attributing to all steps), and per interval of entry.
#[derive(Default)]
pub struct Report {
    pub overall: Vec<Outcome>,
    pub attributed: Vec<Outcome>,
    pub over_time: Vec<Outcome>,
}

/// A span's steps, checked against a funnel of `n` steps; `field` names it in the error.
pub fn span(span: StepSpan, n: usize, field: &str) -> Result<(usize, usize), QueryError> {
    let (from, to) = (span.from_step.unwrap_or(0), span.to_step.unwrap_or(n - 1));
    if from >= to || to >= n {
        return Err(QueryError::invalid(format!(
            "{field}: from_step must be before to_step, both between 0 and {}",
            n - 1
        )));
    }
    Ok((from, to))
}

impl Report {
    /// Reports of consecutive runs of actors, as one (in the runs' order).
    pub fn join(reports: Vec<Report>) -> Report {
        let mut joined = Report::default();
        for r in reports {
            joined.overall.extend(r.overall);
            joined.attributed.extend(r.attributed);
            joined.over_time.extend(r.over_time);
        }
        joined
    }

    pub fn finish(
        mut self,
        q: &FunnelQuery,
        setup: &Setup,
        shape: Shape,
        actor: &dyn Fn(u32) -> Option<Actor>,
    ) -> Result<FunnelResult, QueryError> {
        let names: Vec<String> = q
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| s.selector.event.clone().unwrap_or_else(|| format!("Any event ({i})")))
            .collect();
        let mut result = FunnelResult {
            steps: step_stats(&names, shape.optional, self.overall.iter().map(|o| &o.path)),
            breakdowns: Vec::new(),
            actors: None,
            conversion_over_time: None,
            time_to_convert: None,
        };
        if let Some(b) = &q.common.breakdown {
            // Values beyond the limit (by actors entering) become "$other", where an actor
            // counts once, with its furthest path.
            let mut weights = HashMap::default();
            for o in &self.attributed {
                *weights.entry(o.value.clone()).or_insert(0u64) += 1;
            }
            let kept = top_values(weights, breakdown_limit(b));
            for outcomes in [&mut self.attributed, &mut self.over_time] {
                kept_values(outcomes, &kept);
            }
            result.breakdowns = breakdowns(&names, shape.optional, &self.attributed);
        }
        if let Some(request) = &q.actors {
            let n = q.steps.len();
            if request.step >= n {
                return Err(QueryError::invalid(format!(
                    "actors.step {} is past the last step ({})",
                    request.step,
                    n - 1
                )));
            }
            let among = match (&request.breakdown_value, q.common.breakdown.is_some()) {
                (Some(v), true) => self.attributed.iter().filter(|o| o.value.as_ref() == Some(v)).collect::<Vec<_>>(),
                _ => self.overall.iter().collect(),
            };
            let mut actors: Vec<Actor> = among
                .into_iter()
                .filter(|o| match request.status {
                    ActorStatus::Converted => o.path.did(request.step),
                    ActorStatus::Dropped => request.step > 0 && o.path.times.len() == request.step,
                })
                .filter_map(|o| actor(o.actor))
                .collect();
            actors.sort_by(|a, b| a.key.cmp(&b.key));
            actors.dedup_by(|a, b| a.key == b.key);
            actors.truncate(request.limit.unwrap_or(100));
            result.actors = Some(actors);
        }
        if let Some(s) = q.conversion_over_time {
            let (from, to) = span(s, q.steps.len(), "conversion_over_time")?;
            result.conversion_over_time =
                Some(over_time(&self.over_time, setup, from, to, q.common.breakdown.is_some()));
        }
        if let Some(t) = q.time_to_convert {
            let (from, to) = span(t.span, q.steps.len(), "time_to_convert")?;
            result.time_to_convert = Some(time_to_convert(&self.overall, from, to, t.bins));
        }
        Ok(result)
    }
}

/// Map values to the kept ones, then keep one outcome per actor and value (the furthest, the
/// first on ties): merging values into "$other" may have given an actor two.
fn kept_values(outcomes: &mut Vec<Outcome>, kept: &HashSet<Option<String>>) {
    for o in outcomes.iter_mut() {
        o.value = keep(kept, o.value.take());
    }
    let mut best: HashMap<(u32, usize, Option<String>), usize> = HashMap::default();
    let mut keep_index = vec![true; outcomes.len()];
    for (i, o) in outcomes.iter().enumerate() {
        match best.entry((o.actor, o.bucket, o.value.clone())) {
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(i);
            }
            std::collections::hash_map::Entry::Occupied(mut seen) => {
                let j = *seen.get();
                if o.path.times.len() > outcomes[j].path.times.len() {
                    keep_index[j] = false;
                    seen.insert(i);
                } else {
                    keep_index[i] = false;
                }
            }
        }
    }
    let mut index = 0;
    outcomes.retain(|_| {
        index += 1;
        keep_index[index - 1]
    });
}

/// The steps per breakdown value, the value with most actors entering first.
fn breakdowns(names: &[String], optional: u32, attributed: &[Outcome]) -> Vec<FunnelBreakdown> {
    let mut values: Vec<&Option<String>> = attributed.iter().map(|o| &o.value).collect();
    values.sort();
    values.dedup();
    let mut out: Vec<FunnelBreakdown> = values
        .into_iter()
        .map(|value| {
            let paths = attributed.iter().filter(|o| &o.value == value).map(|o| &o.path);
            FunnelBreakdown { breakdown_value: value.clone(), steps: step_stats(names, optional, paths) }
        })
        .collect();
    out.sort_by(|a, b| b.steps[0].count.cmp(&a.steps[0].count).then_with(|| a.breakdown_value.cmp(&b.breakdown_value)));
    out
}

/// Per bucket of entry: actors whose path from that bucket reached `from`, and `to`.
fn over_time(outcomes: &[Outcome], setup: &Setup, from: usize, to: usize, by_value: bool) -> ConversionOverTime {
    let buckets = setup.buckets.len();
    let mut lines: Vec<ConversionLine> = Vec::new();
    let mut index: HashMap<Option<String>, usize> = HashMap::default();
    for o in outcomes {
        let value = if by_value { o.value.clone() } else { None };
        let line = *index.entry(value.clone()).or_insert_with(|| {
            lines.push(ConversionLine {
                breakdown_value: value,
                entered: vec![0; buckets],
                converted: vec![0; buckets],
                conversion_rate: vec![0.0; buckets],
            });
            lines.len() - 1
        });
        let reached = o.path.times.len();
        if reached > from && o.bucket < buckets {
            lines[line].entered[o.bucket] += 1;
            if reached > to {
                lines[line].converted[o.bucket] += 1;
            }
        }
    }
    if lines.is_empty() {
        lines.push(ConversionLine {
            breakdown_value: None,
            entered: vec![0; buckets],
            converted: vec![0; buckets],
            conversion_rate: vec![0.0; buckets],
        });
    }
    for line in &mut lines {
        for b in 0..buckets {
            line.conversion_rate[b] = ratio(line.converted[b], line.entered[b]);
        }
    }
    lines.sort_by(|a, b| {
        let total = |l: &ConversionLine| l.entered.iter().sum::<u64>();
        total(b).cmp(&total(a)).then_with(|| a.breakdown_value.cmp(&b.breakdown_value))
    });
    ConversionOverTime { from_step: from, to_step: to, buckets: setup.buckets.labels.clone(), lines }
}

/// The times from `from` to `to` of the actors who did `to`, in `bins` equal bins from the
/// shortest to the longest time (whole seconds wide, at least one second).
fn time_to_convert(outcomes: &[Outcome], from: usize, to: usize, bins: Option<usize>) -> TimeToConvertResult {
    let mut seconds: Vec<f64> = outcomes
        .iter()
        .filter(|o| o.path.did(to))
        .map(|o| (o.path.times[to] - o.path.times[from]) as f64 / 1e6)
        .collect();
    let mut result = TimeToConvertResult {
        from_step: from,
        to_step: to,
        bins: Vec::new(),
        average_seconds: None,
        median_seconds: None,
    };
    if seconds.is_empty() {
        return result;
    }
    result.average_seconds = Some(seconds.iter().sum::<f64>() / seconds.len() as f64);
    result.median_seconds = Some(percentile(&mut seconds, 0.5));
    // Sturges' rule by default: enough bins to show a shape, not so many that each holds one.
    let count = bins.unwrap_or_else(|| (seconds.len() as f64).log2().ceil() as usize + 1).clamp(1, MAX_BINS);
    let (low, high) = (seconds[0].floor(), seconds[seconds.len() - 1]);
    let width = ((high - low) / count as f64).ceil().max(1.0);
    result.bins = (0..count)
        .map(|i| TimeBin { from_seconds: low + width * i as f64, to_seconds: low + width * (i + 1) as f64, count: 0 })
        .collect();
    for s in seconds {
        let i = (((s - low) / width) as usize).min(count - 1);
        result.bins[i].count += 1;
    }
    result
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Per step: actors who did it, conversion, drop-off and times from the step before. An
/// optional step counts those who did it; for it and for the step after it, "previous" is the
/// last required step before.
pub fn step_stats<'a>(names: &[String], optional: u32, paths: impl Iterator<Item = &'a Path>) -> Vec<FunnelStep> {
    let n = names.len();
    let mut counts = vec![0u64; n];
    let mut durations: Vec<Vec<f64>> = vec![Vec::new(); n];
    for p in paths {
        for k in (0..p.times.len().min(n)).filter(|&k| p.did(k)) {
            counts[k] += 1;
            if k > 0 {
                durations[k].push((p.times[k] - p.times[k - 1]) as f64 / 1e6);
            }
        }
    }
    let required_before = |k: usize| (0..k).rev().find(|&j| optional & (1 << j) == 0).unwrap_or(0);
    (0..n)
        .map(|k| {
            let previous = if k == 0 { counts[0] } else { counts[required_before(k)] };
            let d = &mut durations[k];
            FunnelStep {
                index: k,
                name: names[k].clone(),
                optional: optional & (1 << k) != 0,
                count: counts[k],
                conversion_from_first: ratio(counts[k], counts[0]),
                conversion_from_previous: ratio(counts[k], previous),
                dropped: previous.saturating_sub(counts[k]),
                average_seconds: (!d.is_empty()).then(|| d.iter().sum::<f64>() / d.len() as f64),
                median_seconds: (!d.is_empty()).then(|| percentile(d, 0.5)),
            }
        })
        .collect()
}
