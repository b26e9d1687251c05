//! Funnels: how many actors go through steps in order within a conversion window.
//!
//! Each actor's events (a group's: every event attributed to it, from any member) are walked
//! once in time order. At one timestamp, events are taken in step order, so steps sharing a
//! timestamp count as in order; an event serves one step of a path. The window is measured from
//! the first step and is inclusive. Of the paths reaching the furthest step, the first to get
//! there is reported (its times to convert and its entry's breakdown value).

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::Arc;

use troupe_store::aggregate::StreamsRequest;
use troupe_store::Actor;

use crate::cohorts::{resolve_all, ResolvedCohort};
use crate::error::QueryError;
use crate::frame::{breakdown_limit, keep, top_values, Frame, Masks, Matcher, Needs};
use crate::pushdown;
use crate::result::{FunnelBreakdown, FunnelResult, FunnelStep};
use crate::spec::{ActorStatus, EventSelector, FunnelOrder, FunnelQuery, Window, WindowUnit};
use crate::splits;
use crate::time::window_end;
use crate::trends::percentile;
use crate::{scan, Ctx, Setup};

pub const MAX_STEPS: usize = 20;
/// Exclusions are bits of a `u32` per event.
pub const MAX_EXCLUSIONS: usize = 32;
const DEFAULT_WINDOW: Window = Window { value: 14, unit: WindowUnit::Day };

pub async fn run(ctx: &Ctx<'_>, q: &FunnelQuery) -> Result<FunnelResult, QueryError> {
    validate(q)?;
    let setup = Setup::new(&q.common, ctx.now)?;
    let window = q.window.filter(|w| w.value > 0).unwrap_or(DEFAULT_WINDOW);
    let names: Vec<String> = q
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| s.event.clone().unwrap_or_else(|| format!("Any event ({i})")))
        .collect();
    let filters = q
        .common
        .filters
        .iter()
        .chain(q.steps.iter().filter_map(|s| s.filters.as_ref()))
        .chain(q.exclusions.iter().filter_map(|e| e.selector.filters.as_ref()));
    let cohorts = resolve_all(ctx, filters).await?;
    if let Some(pushed) = pushed_streams(ctx, q, &setup, &cohorts).await? {
        let mut streams = pushed.streams;
        let outcomes = walk(q, streams.iter_mut().map(|(&a, s)| (a, s.as_mut_slice())), window);
        let value = |_: u32, p: &Path| pushed.labels.get(p.entry_event).cloned().flatten();
        let profiles = pushdown::ProfileIndex::new(&pushed.profiles);
        let actor = |a: u32| pushed.keys.get(a as usize).map(|key| profiles.actor(key));
        return finish(q, &names, outcomes, value, actor);
    }
    let mut needs = Needs::new();
    needs.count_by(&q.common.count_by);
    for s in q.steps.iter().chain(q.exclusions.iter().map(|e| &e.selector)) {
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
    let steps: Vec<Matcher> =
        q.steps.iter().map(|s| frame.matcher(s, q.common.filters.as_ref(), &cohorts)).collect::<Result<_, _>>()?;
    let exclusions: Vec<Matcher> = q
        .exclusions
        .iter()
        .map(|e| frame.matcher(&e.selector, q.common.filters.as_ref(), &cohorts))
        .collect::<Result<_, _>>()?;

    let mut streams = streams(&frame, column, &steps, &exclusions, q.order == FunnelOrder::Strict);
    let outcomes = walk(q, streams.each(), window);
    let value = |_: u32, p: &Path| {
        q.common.breakdown.as_ref().and_then(|b| frame.breakdown_values(b, p.entry_event).into_iter().flatten().next())
    };
    finish(q, &names, outcomes, value, |a| frame.actor(column, a).cloned())
}

/// The result from each actor's path: steps, breakdowns by the value on the event that entered
/// (`value`), and the actors asked for (`actor`).
fn finish(
    q: &FunnelQuery,
    names: &[String],
    outcomes: Vec<(u32, Path)>,
    value: impl Fn(u32, &Path) -> Option<String>,
    actor: impl Fn(u32) -> Option<Actor>,
) -> Result<FunnelResult, QueryError> {
    let n = q.steps.len();
    let mut result = FunnelResult {
        steps: step_stats(names, outcomes.iter().map(|(_, p)| p)),
        breakdowns: Vec::new(),
        actors: None,
    };
    let mut values: HashMap<u32, Option<String>> = HashMap::default();
    if let Some(b) = &q.common.breakdown {
        // First touch: the value on the event that entered the funnel.
        let raw: Vec<(u32, Option<String>)> = outcomes.iter().map(|(a, p)| (*a, value(*a, p))).collect();
        let mut weights = HashMap::default();
        for (_, v) in &raw {
            *weights.entry(v.clone()).or_insert(0u64) += 1;
        }
        let kept: HashSet<Option<String>> = top_values(weights, breakdown_limit(b));
        values = raw.into_iter().map(|(a, v)| (a, keep(&kept, v))).collect();
        let mut distinct: Vec<Option<String>> = values.values().cloned().collect::<HashSet<_>>().into_iter().collect();
        distinct.sort();
        for value in distinct {
            let paths = outcomes.iter().filter(|(a, _)| values.get(a) == Some(&value)).map(|(_, p)| p);
            result.breakdowns.push(FunnelBreakdown { breakdown_value: value.clone(), steps: step_stats(names, paths) });
        }
        result.breakdowns.sort_by(|a, b| {
            b.steps[0].count.cmp(&a.steps[0].count).then_with(|| a.breakdown_value.cmp(&b.breakdown_value))
        });
    }
    if let Some(request) = &q.actors {
        if request.step >= n {
            return Err(QueryError::invalid(format!("actors.step {} is past the last step ({})", request.step, n - 1)));
        }
        let mut actors: Vec<_> = outcomes
            .iter()
            .filter(|(_, p)| match request.status {
                ActorStatus::Converted => p.times.len() > request.step,
                ActorStatus::Dropped => request.step > 0 && p.times.len() == request.step,
            })
            .filter(|(a, _)| {
                request.breakdown_value.is_none() || values.get(a).cloned().flatten() == request.breakdown_value
            })
            .filter_map(|(a, _)| actor(*a))
            .collect();
        actors.sort_by(|a, b| a.key.cmp(&b.key));
        actors.truncate(request.limit.unwrap_or(100));
        result.actors = Some(actors);
    }
    Ok(result)
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
    }
    if q.order == FunnelOrder::Unordered && !q.exclusions.is_empty() {
        return Err(QueryError::invalid("exclusions need an ordered or strict funnel"));
    }
    Ok(())
}

/// One event of an actor's stream.
#[derive(Debug, Clone, Copy)]
struct StreamEvent {
    ts: i64,
    /// Bit k: the event matches step k.
    steps: u32,
    /// Bit k: the event matches exclusion k.
    exclusions: u32,
    event: usize,
}

/// Each actor's stream events, grouped by actor with one counting pass (actor ids are dense):
/// the events of actor `a` are `events[offsets[a]..offsets[a + 1]]`, in frame order.
struct Streams {
    offsets: Vec<usize>,
    events: Vec<StreamEvent>,
}

impl Streams {
    fn each(&mut self) -> impl Iterator<Item = (u32, &mut [StreamEvent])> {
        let mut rest = self.events.as_mut_slice();
        let mut out = Vec::with_capacity(self.offsets.len().saturating_sub(1));
        for (actor, bounds) in self.offsets.windows(2).enumerate() {
            let (stream, tail) = std::mem::take(&mut rest).split_at_mut(bounds[1] - bounds[0]);
            rest = tail;
            if !stream.is_empty() {
                out.push((actor as u32, stream));
            }
        }
        out.into_iter()
    }
}

fn streams(
    frame: &Frame,
    column: crate::frame::ActorColumn,
    steps: &[Matcher],
    exclusions: &[Matcher],
    all_events: bool,
) -> Streams {
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
    let mut events = vec![StreamEvent { ts: 0, steps: 0, exclusions: 0, event: 0 }; offsets[offsets.len() - 1]];
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

/// Each actor's furthest path, for the actors whose path an exclusion does not void.
fn walk<'a>(
    q: &FunnelQuery,
    streams: impl Iterator<Item = (u32, &'a mut [StreamEvent])>,
    window: Window,
) -> Vec<(u32, Path)> {
    let n = q.steps.len();
    let mut outcomes = Vec::new();
    let mut walker = OrderedWalker::default();
    for (actor, stream) in streams {
        time_order(stream);
        let path = match q.order {
            FunnelOrder::Ordered => walker.walk(stream, n, window, false),
            FunnelOrder::Strict => walker.walk(stream, n, window, true),
            FunnelOrder::Unordered => unordered(stream, n, window),
        };
        if let Some(path) = path {
            if !excluded(q, stream, &path, window) {
                outcomes.push((actor, path));
            }
        }
    }
    outcomes
}

/// Time order; at one timestamp, earlier steps first, other events last (the rest of the key
/// only makes the order the same whatever order the backend returned events in). Stores usually
/// hand events over in time order: then only runs sharing a timestamp are sorted.
fn time_order(stream: &mut [StreamEvent]) {
    let key = |e: &StreamEvent| (e.ts, e.steps.trailing_zeros(), e.steps, e.exclusions, e.event);
    if stream.is_sorted_by_key(|e| e.ts) {
        for run in stream.chunk_by_mut(|a, b| a.ts == b.ts).filter(|run| run.len() > 1) {
            run.sort_by_key(key);
        }
    } else {
        stream.sort_by_key(key);
    }
}

/// What the backend's streams give a funnel: each actor's stream (by index into `keys`), the raw
/// breakdown value of every stream event (by `StreamEvent::event`), and the profiles of the
/// actors when a list of them is asked for.
struct Pushed {
    streams: HashMap<u32, Vec<StreamEvent>>,
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
    let selectors: Vec<&EventSelector> = q.steps.iter().chain(q.exclusions.iter().map(|e| &e.selector)).collect();
    if selectors.len() > 32 {
        return Ok(None);
    }
    let Some(tests) = pushdown::tests(ctx, cohorts, &q.common, &selectors).await? else { return Ok(None) };
    let labeller = match &q.common.breakdown {
        None => None,
        Some(b) => match splits::Labeller::new(ctx, b).await? {
            Some(l) => Some(l),
            None => return Ok(None),
        },
    };
    let actor = pushdown::actor_kind(ctx, &q.common.count_by).await?;
    let profiles = match &q.actors {
        None => Arc::default(),
        Some(_) => match pushdown::profiles(ctx, actor.clone()).await? {
            Some(profiles) => profiles,
            None => return Ok(None),
        },
    };
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
    let mut pushed = Pushed { streams: HashMap::default(), keys: Vec::new(), labels: Vec::new(), profiles };
    for (id, s) in answer.into_iter().enumerate() {
        let mut events = Vec::with_capacity(s.events.len());
        for (k, (ts, mask)) in s.events.into_iter().enumerate() {
            let event = pushed.labels.len();
            let label = match (&labeller, s.keys.get(k)) {
                (Some(l), Some(keys)) => l.label(keys),
                _ => None,
            };
            pushed.labels.push(label);
            events.push(StreamEvent { ts, steps: mask & step_mask, exclusions: mask >> n, event });
        }
        pushed.streams.insert(id as u32, events);
        pushed.keys.push(s.actor);
    }
    Ok(Some(pushed))
}

/// How far one actor got: the time of each step reached, and the event that entered.
#[derive(Debug, Clone, Copy)]
struct Path {
    times: Times,
    entry_event: usize,
}

/// When a path reached each of its steps: a fixed array (a funnel has at most [`MAX_STEPS`]),
/// so that a result allocates nothing.
#[derive(Debug, Clone, Copy)]
struct Times {
    at: [i64; MAX_STEPS],
    len: usize,
}

impl Times {
    /// Funnels have at most [`MAX_STEPS`] steps, so a path never grows past them.
    fn push(&mut self, ts: i64) {
        if let Some(slot) = self.at.get_mut(self.len) {
            *slot = ts;
            self.len += 1;
        }
    }
}

impl std::ops::Deref for Times {
    type Target = [i64];

    fn deref(&self) -> &[i64] {
        &self.at[..self.len]
    }
}

impl Path {
    fn entry(&self) -> i64 {
        self.times[0]
    }
}

/// Ordered and strict funnels, one actor's stream at a time, with room kept between actors.
///
/// While walking, a path is a [`Partial`]: its entry and its last step's node in `nodes`, which
/// link back to the earlier steps. Extending one is then a push of 16 bytes, where copying a
/// [`Path`] (every step's time) was 10 times that, once per step event.
#[derive(Default)]
struct OrderedWalker {
    nodes: Vec<Node>,
    /// `state[k]`: the latest-entered path that has reached step k, which dominates every other
    /// such path (more window left, and later events can only follow it).
    state: Vec<Option<Partial>>,
    /// Strict funnels: the state before the current event.
    before: Vec<Option<Partial>>,
}

#[derive(Debug, Clone, Copy)]
struct Partial {
    entry: i64,
    entry_event: usize,
    /// Steps reached.
    len: usize,
    /// The last step's node.
    node: u32,
}

/// A step's time, the node of the step before it ([`NO_NODE`] for the first), and the event
/// that served it (told apart only among events sharing a timestamp, see [`node_event`]).
#[derive(Debug, Clone, Copy)]
struct Node {
    ts: i64,
    previous: u32,
    event: u32,
}

/// An event's index as a node keeps it: 32 bits fill the node's padding (16 bytes either way),
/// and a frame of 2^32 events would not fit in memory.
fn node_event(event: usize) -> u32 {
    event as u32
}

const NO_NODE: u32 = u32::MAX;

impl OrderedWalker {
    fn walk(&mut self, stream: &[StreamEvent], n: usize, window: Window, strict: bool) -> Option<Path> {
        self.nodes.clear();
        self.state.clear();
        self.state.resize(n, None);
        self.before.clear();
        self.before.resize(n, None);
        let mut best: Option<Partial> = None;
        for run in stream.chunk_by(|a, b| a.ts == b.ts) {
            if strict {
                // Only the paths extended by the events of this timestamp survive them: events
                // sharing a timestamp have no order among them, so none comes "between" another.
                std::mem::swap(&mut self.state, &mut self.before);
                self.state.clear();
                self.state.resize(n, None);
            }
            match run {
                [e] => self.single(e, window, &mut best),
                _ => self.shared_timestamp(run, n, window, &mut best),
            }
        }
        best.map(|p| self.path(p))
    }

    /// The path an event at step `k` may extend: the latest-entered path at step `k - 1`, within
    /// the window, that does not already use `e` (at `e`'s timestamp). In strict funnels the
    /// paths from before this timestamp are in `before` (`state` holds this timestamp's).
    fn previous(&self, k: usize, e: &StreamEvent, window: Window, run_nodes: u32) -> Option<Partial> {
        let usable = |p: &Partial| e.ts <= window_end(window, p.entry) && !self.uses(p, e.event, run_nodes);
        let here = self.state[k - 1].filter(usable);
        let earlier = self.before[k - 1].filter(usable);
        match (here, earlier) {
            (Some(h), Some(b)) => Some(if b.entry > h.entry { b } else { h }),
            (h, b) => h.or(b),
        }
    }

    /// Extend `p` to step `k` with `e`, unless a path entered no earlier already reached `k`.
    fn extend(&mut self, k: usize, p: Partial, e: &StreamEvent, best: &mut Option<Partial>) {
        if self.state[k].is_some_and(|q| p.entry <= q.entry) {
            return;
        }
        let extended = Partial { len: p.len + 1, node: self.node(e.ts, p.node, e.event), ..p };
        consider(best, extended);
        self.state[k] = Some(extended);
    }

    fn enter(&mut self, e: &StreamEvent, best: &mut Option<Partial>) {
        let entered = Partial { entry: e.ts, entry_event: e.event, len: 1, node: self.node(e.ts, NO_NODE, e.event) };
        consider(best, entered);
        self.state[0] = Some(entered);
    }

    /// An event alone at its timestamp: it serves each step it matches, on different paths
    /// (later steps first, so that it never extends a path it just started or extended).
    fn single(&mut self, e: &StreamEvent, window: Window, best: &mut Option<Partial>) {
        let run_nodes = self.nodes.len() as u32;
        let mut later = e.steps & !1;
        while later != 0 {
            let k = (u32::BITS - 1 - later.leading_zeros()) as usize;
            later &= !(1 << k);
            if let Some(p) = self.previous(k, e, window, run_nodes) {
                self.extend(k, p, e, best);
            }
        }
        if e.steps & 1 != 0 {
            self.enter(e, best);
        }
    }

    /// Events sharing a timestamp, PostHog's rule: each serves every step it matches, steps taken
    /// in order (one copy of the event per matching step), and no event serves two steps of one
    /// path. So ten steps whose events all share one timestamp can complete. The first event to
    /// enter at this timestamp is the entry; later ones would start the same path again.
    fn shared_timestamp(&mut self, run: &[StreamEvent], n: usize, window: Window, best: &mut Option<Partial>) {
        let run_nodes = self.nodes.len() as u32;
        let matched = run.iter().fold(0u32, |m, e| m | e.steps);
        for k in (0..n).filter(|k| matched & (1 << k) != 0) {
            for e in run.iter().filter(|e| e.steps & (1 << k) != 0) {
                if k == 0 {
                    if self.state[0].is_none_or(|p| p.entry != e.ts) {
                        self.enter(e, best);
                    }
                } else if let Some(p) = self.previous(k, e, window, run_nodes) {
                    self.extend(k, p, e, best);
                }
            }
        }
    }

    /// Whether path `p` used event `event` at this timestamp: its nodes made since `run_nodes`
    /// (the first node of this timestamp) are the only ones that can hold it.
    fn uses(&self, p: &Partial, event: usize, run_nodes: u32) -> bool {
        let mut node = p.node;
        while node != NO_NODE && node >= run_nodes {
            let Some(n) = self.nodes.get(node as usize) else { return false };
            if n.event == node_event(event) {
                return true;
            }
            node = n.previous;
        }
        false
    }

    fn node(&mut self, ts: i64, previous: u32, event: usize) -> u32 {
        self.nodes.push(Node { ts, previous, event: node_event(event) });
        (self.nodes.len() - 1) as u32
    }

    /// The path's step times, read back from its last node.
    fn path(&self, p: Partial) -> Path {
        let mut times = Times { at: [0; MAX_STEPS], len: p.len.min(MAX_STEPS) };
        let mut node = p.node;
        for k in (0..times.len).rev() {
            let Some(n) = self.nodes.get(node as usize) else { break };
            times.at[k] = n.ts;
            node = n.previous;
        }
        Path { times, entry_event: p.entry_event }
    }
}

/// Keep the first path to reach further than any before it.
fn consider(best: &mut Option<Partial>, p: Partial) {
    if best.is_none_or(|b| p.len > b.len) {
        *best = Some(p);
    }
}

/// Unordered: from each step event, the distinct steps done within the window (an event
/// matching several steps counts for each); the anchor reaching most steps wins, the first on
/// ties (times to convert come from the first path that got that far, as in ordered funnels).
/// Times are those at which the 1st, 2nd, … distinct step was first done.
fn unordered(stream: &[StreamEvent], n: usize, window: Window) -> Option<Path> {
    let events: Vec<&StreamEvent> = stream.iter().filter(|e| e.steps != 0).collect();
    let mut counts = vec![0u32; n];
    let mut end = 0;
    let mut best: Option<(usize, usize)> = None;
    for (start, anchor) in events.iter().enumerate() {
        let limit = window_end(window, anchor.ts);
        while end < events.len() && events[end].ts <= limit {
            add_steps(&mut counts, events[end].steps, 1);
            end += 1;
        }
        let done = counts.iter().filter(|&&c| c > 0).count();
        if best.is_none_or(|(d, _)| done > d) {
            best = Some((done, start));
        }
        add_steps(&mut counts, anchor.steps, -1);
    }
    let (_, start) = best?;
    let anchor = events[start];
    let limit = window_end(window, anchor.ts);
    let mut seen = 0u32;
    let mut times = Times { at: [0; MAX_STEPS], len: 0 };
    for e in events[start..].iter().take_while(|e| e.ts <= limit) {
        let new = e.steps & !seen;
        for _ in 0..new.count_ones() {
            times.push(e.ts);
        }
        seen |= e.steps;
    }
    Some(Path { times, entry_event: anchor.event })
}

fn add_steps(counts: &mut [u32], mask: u32, delta: i32) {
    for (k, c) in counts.iter_mut().enumerate() {
        if mask & (1 << k) != 0 {
            *c = c.saturating_add_signed(delta);
        }
    }
}

/// Whether an exclusion event happened strictly between the path's `from_step` and `to_step`
/// (or, when the path stops before `to_step`, after `from_step` and within the window).
fn excluded(q: &FunnelQuery, stream: &[StreamEvent], path: &Path, window: Window) -> bool {
    q.exclusions.iter().enumerate().any(|(x, e)| {
        let Some(&from) = path.times.get(e.from_step) else { return false };
        let (to, inclusive) = match path.times.get(e.to_step) {
            Some(&to) => (to, false),
            None => (window_end(window, path.entry()), true),
        };
        stream.iter().any(|s| s.exclusions & (1 << x) != 0 && s.ts > from && (s.ts < to || (inclusive && s.ts == to)))
    })
}

fn step_stats<'a>(names: &[String], paths: impl Iterator<Item = &'a Path>) -> Vec<FunnelStep> {
    let n = names.len();
    let mut counts = vec![0u64; n];
    let mut durations: Vec<Vec<f64>> = vec![Vec::new(); n];
    for p in paths {
        for k in 0..p.times.len().min(n) {
            counts[k] += 1;
            if k > 0 {
                durations[k].push((p.times[k] - p.times[k - 1]) as f64 / 1e6);
            }
        }
    }
    let ratio = |a: u64, b: u64| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    (0..n)
        .map(|k| {
            let previous = if k == 0 { counts[0] } else { counts[k - 1] };
            let d = &mut durations[k];
            FunnelStep {
                index: k,
                name: names[k].clone(),
                count: counts[k],
                conversion_from_first: ratio(counts[k], counts[0]),
                conversion_from_previous: ratio(counts[k], previous),
                dropped: previous - counts[k],
                average_seconds: (!d.is_empty()).then(|| d.iter().sum::<f64>() / d.len() as f64),
                median_seconds: (!d.is_empty()).then(|| percentile(d, 0.5)),
            }
        })
        .collect()
}
