//! Funnels: how many actors go through steps in order within a conversion window.
//!
//! Each actor's events (a group's: every event attributed to it, from any member) are walked
//! in time order ([`walk`]); events sharing a timestamp serve every step they match, in step
//! order, never two steps of one path. The window is measured from the first step and is
//! inclusive. Of the paths reaching the furthest step, the first to get there is reported (its
//! times to convert and its breakdown value). [`report`] turns the paths into the answer: steps,
//! breakdowns, conversion over time and the time-to-convert histogram.

mod report;
mod walk;

use std::sync::Arc;

use rayon::prelude::*;
use rustc_hash::FxHashMap as HashMap;
use troupe_store::aggregate::StreamsRequest;
use troupe_store::Actor;

use crate::cohorts::{resolve_all, ResolvedCohort};
use crate::error::QueryError;
use crate::frame::{ActorColumn, Frame, Masks, Matcher, Needs};
use crate::pushdown;
use crate::result::FunnelResult;
use crate::spec::{Attribution, AttributionKind, EventSelector, FunnelOrder, FunnelQuery, Window, WindowUnit};
use crate::splits;
use crate::time::window_end;
use crate::{scan, Ctx, Setup};

use report::{Outcome, Report};
use walk::{time_order, Entries, Path, Shape, StreamEvent, Streams, Walker};

pub const MAX_STEPS: usize = 20;
/// Exclusions are bits of a `u32` per event.
pub const MAX_EXCLUSIONS: usize = 32;
/// Time-to-convert bins at most.
pub const MAX_BINS: usize = 90;
const DEFAULT_WINDOW: Window = Window { value: 14, unit: WindowUnit::Day };

pub async fn run(ctx: &Ctx<'_>, q: &FunnelQuery) -> Result<FunnelResult, QueryError> {
    validate(q)?;
    let setup = Setup::new(&q.common, ctx.now)?;
    let window = q.window.filter(|w| w.value > 0).unwrap_or(DEFAULT_WINDOW);
    let shape = Shape::new(q, window);
    let selectors: Vec<&EventSelector> = q.steps.iter().map(|s| &s.selector).collect();
    let filters = q
        .common
        .filters
        .iter()
        .chain(selectors.iter().filter_map(|s| s.filters.as_ref()))
        .chain(q.exclusions.iter().filter_map(|e| e.selector.filters.as_ref()));
    let cohorts = resolve_all(ctx, filters).await?;
    if let Some(pushed) = pushed_streams(ctx, q, &setup, &cohorts).await? {
        let profiles = pushdown::ProfileIndex::new(&pushed.profiles);
        let label = |e: usize| pushed.labels.get(e).cloned().flatten();
        let actor = |a: u32| pushed.keys.get(a as usize).map(|key| profiles.actor(key));
        return answer(q, &setup, shape, pushed.streams, &label, &actor);
    }
    let mut needs = Needs::new();
    needs.count_by(&q.common.count_by);
    for s in selectors.iter().copied().chain(q.exclusions.iter().map(|e| &e.selector)) {
        needs.selector(s, &cohorts);
    }
    if let Some(f) = &q.common.filters {
        needs.filter(f, &cohorts);
    }
    if let Some(b) = &q.common.breakdown {
        needs.breakdown(b);
    }
    if q.order == FunnelOrder::Strict {
        // Any other event of the actor breaks a strict funnel, so all of them are read.
        needs.all_events();
    }
    if q.actors.is_some() {
        needs.actors_listed();
    }
    let frame = scan(ctx, &needs, Some(setup.from_us), Some(setup.to_us)).await?;
    let column = frame.column(&q.common.count_by);
    let global = q.common.filters.as_ref();
    let steps: Vec<Matcher> = selectors.iter().map(|s| frame.matcher(s, global, &cohorts)).collect::<Result<_, _>>()?;
    let exclusions: Vec<Matcher> =
        q.exclusions.iter().map(|e| frame.matcher(&e.selector, global, &cohorts)).collect::<Result<_, _>>()?;
    let streams = streams(&frame, column, &steps, &exclusions, q.order == FunnelOrder::Strict);
    let label =
        |e: usize| q.common.breakdown.as_ref().and_then(|b| frame.breakdown_values(b, e).into_iter().flatten().next());
    answer(q, &setup, shape, streams, &label, &|a| frame.actor(column, a).cloned())
}

/// Walk every actor's stream and report: `label` gives a stream event's breakdown value,
/// `actor` an actor's profile.
fn answer(
    q: &FunnelQuery,
    setup: &Setup,
    shape: Shape,
    mut streams: Streams,
    label: &Label<'_>,
    actor: &dyn Fn(u32) -> Option<Actor>,
) -> Result<FunnelResult, QueryError> {
    // Actors are independent: contiguous runs of them are walked on every core, and their
    // reports joined in actor order, so the answer is the one a single thread gives.
    let mut actors: Vec<(u32, &mut [StreamEvent])> = streams.each().collect();
    let runs = actors.len().div_ceil(rayon::current_num_threads() * 4).max(MIN_ACTORS_PER_RUN);
    let reports: Vec<Report> = actors
        .par_chunks_mut(runs)
        .map(|run| {
            let (mut walker, mut report) = (Walker::default(), Report::default());
            for (a, stream) in run.iter_mut() {
                walk_actor(q, setup, shape, (&mut walker, &mut report), *a, stream, label);
            }
            report
        })
        .collect();
    Report::join(reports).finish(q, setup, shape, actor)
}

/// A stream event's breakdown value, shared by the threads walking actors.
type Label<'a> = dyn Fn(usize) -> Option<String> + Sync + 'a;

/// Actors per thread's run at least: fewer are not worth a thread's start.
const MIN_ACTORS_PER_RUN: usize = 256;

/// One actor's paths into the report: overall, attributed to breakdown values, and per interval
/// of entry.
fn walk_actor(
    q: &FunnelQuery,
    setup: &Setup,
    shape: Shape,
    (walker, report): (&mut Walker, &mut Report),
    a: u32,
    stream: &mut [StreamEvent],
    label: &Label<'_>,
) {
    time_order(stream);
    // No path overall: none from any interval either.
    let Some(path) = walker.path(q, shape, stream, None) else { return };
    if q.common.breakdown.is_some() {
        for (path, value) in attribute(q, shape, walker, stream, path, None, label) {
            report.attributed.push(Outcome { actor: a, path, value, bucket: 0 });
        }
    }
    if q.conversion_over_time.is_some() {
        for (bucket, (from, to)) in entry_buckets(stream, setup) {
            // Only the events a path entering in the bucket can use: from the bucket's start
            // to the window's end after it (earlier events neither extend nor exclude it).
            let first = stream.partition_point(|e| e.ts < from);
            let last = stream.partition_point(|e| e.ts <= window_end(shape.window, to));
            let part = &stream[first..last.max(first)];
            let entries = Some((from, to));
            let Some(path) = walker.path(q, shape, part, entries) else { continue };
            let attributed = match q.common.breakdown {
                Some(_) => attribute(q, shape, walker, part, path, entries, label),
                None => vec![(path, None)],
            };
            for (path, value) in attributed {
                report.over_time.push(Outcome { actor: a, path, value, bucket });
            }
        }
    }
    report.overall.push(Outcome { actor: a, path, value: None, bucket: 0 });
}

/// The breakdown value (or values, attributing to all steps) an actor's path counts under.
fn attribute(
    q: &FunnelQuery,
    shape: Shape,
    walker: &mut Walker,
    stream: &[StreamEvent],
    path: Path,
    entries: Entries,
    label: &Label<'_>,
) -> Vec<(Path, Option<String>)> {
    let value = match q.breakdown_attribution {
        Attribution::Named(AttributionKind::FirstTouch) => label(path.entry_event),
        Attribution::Named(AttributionKind::LastTouch) => path.last_event().and_then(label),
        Attribution::Step { step } => path.event(step).and_then(label),
        Attribution::Named(AttributionKind::AllSteps) => return all_steps(q, shape, walker, stream, entries, label),
    };
    vec![(path, value)]
}

/// Every step's event must carry the value: one walk per value found on the actor's step
/// events, each seeing only the step events of that value (the others still break strict
/// funnels and still count as exclusions).
fn all_steps(
    q: &FunnelQuery,
    shape: Shape,
    walker: &mut Walker,
    stream: &[StreamEvent],
    entries: Entries,
    label: &Label<'_>,
) -> Vec<(Path, Option<String>)> {
    let labels: Vec<Option<String>> = stream.iter().map(|e| if e.steps != 0 { label(e.event) } else { None }).collect();
    let mut values: Vec<&Option<String>> =
        stream.iter().zip(&labels).filter(|(e, _)| e.steps != 0).map(|(_, l)| l).collect();
    values.sort();
    values.dedup();
    let mut out = Vec::new();
    let mut only: Vec<StreamEvent> = Vec::with_capacity(stream.len());
    for value in values {
        only.clear();
        only.extend(stream.iter().zip(&labels).map(|(e, l)| match l == value {
            true => *e,
            false => StreamEvent { steps: 0, ..*e },
        }));
        if let Some(path) = walker.path(q, shape, &only, entries) {
            out.push((path, value.clone()));
        }
    }
    out
}

/// The buckets in which the actor has step-1 events, with their bounds.
fn entry_buckets(stream: &[StreamEvent], setup: &Setup) -> Vec<(usize, (i64, i64))> {
    let mut found: Vec<usize> = Vec::new();
    let mut hint = 0;
    for e in stream.iter().filter(|e| e.steps & 1 != 0) {
        if let Some(b) = setup.buckets.index_near(e.ts, &mut hint) {
            if found.last() != Some(&b) && !found.contains(&b) {
                found.push(b);
            }
        }
    }
    found.into_iter().map(|b| (b, (setup.buckets.bounds[b], setup.buckets.bounds[b + 1]))).collect()
}

fn validate(q: &FunnelQuery) -> Result<(), QueryError> {
    let n = q.steps.len();
    if !(2..=MAX_STEPS).contains(&n) {
        return Err(QueryError::invalid(format!("a funnel has 2 to {MAX_STEPS} steps, got {n}")));
    }
    if q.exclusions.len() > MAX_EXCLUSIONS {
        return Err(QueryError::invalid(format!(
            "a funnel has at most {MAX_EXCLUSIONS} exclusions, got {}",
            q.exclusions.len()
        )));
    }
    for (i, e) in q.exclusions.iter().enumerate() {
        if e.from_step >= e.to_step || e.to_step >= n {
            return Err(QueryError::invalid(format!(
                "exclusion {i}: from_step must be before to_step, both between 0 and {}",
                n - 1
            )));
        }
        if q.order == FunnelOrder::Unordered && (e.from_step != 0 || e.to_step != n - 1) {
            return Err(QueryError::invalid(format!(
                "exclusion {i}: in an unordered funnel an exclusion spans the whole funnel \
                 (from_step 0, to_step {}), as steps have no order",
                n - 1
            )));
        }
    }
    if q.steps.first().is_some_and(|s| s.optional) {
        return Err(QueryError::invalid("steps[0]: the first step cannot be optional"));
    }
    if q.order == FunnelOrder::Unordered && q.steps.iter().any(|s| s.optional) {
        return Err(QueryError::invalid("optional steps need an ordered or strict funnel"));
    }
    if let Attribution::Step { step } = q.breakdown_attribution {
        if step >= n {
            return Err(QueryError::invalid(format!(
                "breakdown_attribution.step {step} is past the last step ({})",
                n - 1
            )));
        }
    }
    if let Some(span) = q.conversion_over_time {
        report::span(span, n, "conversion_over_time")?;
    }
    if let Some(t) = q.time_to_convert {
        report::span(t.span, n, "time_to_convert")?;
        if t.bins.is_some_and(|b| !(1..=MAX_BINS).contains(&b)) {
            return Err(QueryError::invalid(format!("time_to_convert.bins must be 1 to {MAX_BINS}")));
        }
    }
    Ok(())
}

/// Each actor's stream events, grouped by actor with one counting pass (actor ids are dense).
fn streams(frame: &Frame, column: ActorColumn, steps: &[Matcher], exclusions: &[Matcher], all_events: bool) -> Streams {
    let (steps, exclusions) = (Masks::new(frame, steps), Masks::new(frame, exclusions));
    // At most every event: capacity never touched costs address space, not memory.
    let mut kept = Vec::with_capacity(frame.len());
    let mut offsets = vec![0usize; frame.actor_count(column) + 2];
    for i in 0..frame.len() {
        let (step_mask, exclusion_mask) = (steps.of(frame, i), exclusions.of(frame, i));
        if step_mask == 0 && exclusion_mask == 0 && !all_events {
            continue;
        }
        let actors = frame.actors(i, column);
        if actors.is_empty() {
            continue;
        }
        for &a in actors {
            offsets[a as usize + 2] += 1;
        }
        kept.push(StreamEvent { ts: frame.scan.ts[i], steps: step_mask, exclusions: exclusion_mask, event: i });
    }
    // offsets[a + 2] counted actor a's events; after the sum, offsets[a + 1] is where they
    // start, and each placed event moves it on, leaving offsets[a + 1] where they end.
    for a in 2..offsets.len() {
        offsets[a] += offsets[a - 1];
    }
    let mut events = vec![StreamEvent::EMPTY; offsets[offsets.len() - 1]];
    for e in kept {
        for &a in frame.actors(e.event, column) {
            let at = &mut offsets[a as usize + 1];
            events[*at] = e;
            *at += 1;
        }
    }
    offsets.pop();
    Streams { offsets, events }
}

/// What the backend's streams give a funnel: each actor's stream (actor `a` is `keys[a]`), the
/// raw breakdown value of every stream event (by `StreamEvent::event`), and the profiles of the
/// actors when a list of them is asked for.
struct Pushed {
    streams: Streams,
    keys: Vec<String>,
    labels: Vec<Option<String>>,
    profiles: Arc<Vec<Actor>>,
}

/// Each actor's stream from the backend: the steps then the exclusions as one list of tests.
async fn pushed_streams(
    ctx: &Ctx<'_>,
    q: &FunnelQuery,
    setup: &Setup,
    cohorts: &HashMap<String, Arc<ResolvedCohort>>,
) -> Result<Option<Pushed>, QueryError> {
    let n = q.steps.len();
    let selectors: Vec<&EventSelector> =
        q.steps.iter().map(|s| &s.selector).chain(q.exclusions.iter().map(|e| &e.selector)).collect();
    if selectors.len() > 32 {
        return Ok(None);
    }
    let Some(tests) = pushdown::tests(ctx, cohorts, &q.common, &selectors).await? else { return Ok(None) };
    let Some(labeller) = splits::Labeller::of(ctx, q.common.breakdown.as_ref()).await? else { return Ok(None) };
    let actor = pushdown::actor_kind(ctx, &q.common.count_by).await?;
    let Some(profiles) = pushdown::listed_profiles(ctx, &actor, q.actors.is_some()).await? else { return Ok(None) };
    let request = StreamsRequest {
        actor,
        tests,
        all_events: q.order == FunnelOrder::Strict,
        from: setup.from_us,
        to: setup.to_us,
        keys: labeller.as_ref().map(|l| l.by.clone()),
    };
    let Some(answer) = pushdown::streams(ctx, request).await? else { return Ok(None) };
    // The steps' bits; the exclusions' follow them (at most 20 steps, checked by `validate`).
    let step_mask = ((1u64 << n) - 1) as u32;
    let streams = Streams { offsets: vec![0], events: Vec::new() };
    let mut pushed = Pushed { streams, keys: Vec::new(), labels: Vec::new(), profiles };
    for s in answer {
        for (k, &(ts, mask)) in s.events.iter().enumerate() {
            let event = pushed.labels.len();
            pushed.labels.push(splits::Labeller::event_label(labeller.as_ref(), &s, k));
            pushed.streams.events.push(StreamEvent { ts, steps: mask & step_mask, exclusions: mask >> n, event });
        }
        pushed.streams.offsets.push(pushed.streams.events.len());
        pushed.keys.push(s.actor);
    }
    Ok(Some(pushed))
}
