//! Walking one actor's events through the steps: ordered and strict funnels (one pass with the
//! latest-entered path per step), unordered funnels (a sliding window), and exclusions.

use crate::spec::{FunnelOrder, FunnelQuery, Window};
use crate::time::window_end;

use super::MAX_STEPS;

/// One event of an actor's stream.
#[derive(Debug, Clone, Copy)]
pub struct StreamEvent {
    pub ts: i64,
    /// Bit k: the event matches step k.
    pub steps: u32,
    /// Bit k: the event matches exclusion k.
    pub exclusions: u32,
    /// The event's index in what the stream was read from (frame row, or pushed event), for
    /// its breakdown value.
    pub event: usize,
}

impl StreamEvent {
    pub const EMPTY: StreamEvent = StreamEvent { ts: 0, steps: 0, exclusions: 0, event: 0 };
}

/// Every actor's stream events, grouped by actor: the events of actor `a` are
/// `events[offsets[a]..offsets[a + 1]]`.
pub struct Streams {
    pub offsets: Vec<usize>,
    pub events: Vec<StreamEvent>,
}

impl Streams {
    /// Each actor with events, and its stream.
    pub fn each(&mut self) -> impl Iterator<Item = (u32, &mut [StreamEvent])> {
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

/// Time order; at one timestamp, earlier steps first, other events last (the rest of the key
/// only makes the order the same whatever order the backend returned events in). Stores usually
/// hand events over in time order: then only runs sharing a timestamp are sorted.
pub fn time_order(stream: &mut [StreamEvent]) {
    let key = |e: &StreamEvent| (e.ts, e.steps.trailing_zeros(), e.steps, e.exclusions, e.event);
    if stream.is_sorted_by_key(|e| e.ts) {
        for run in stream.chunk_by_mut(|a, b| a.ts == b.ts).filter(|run| run.len() > 1) {
            run.sort_by_key(key);
        }
    } else {
        stream.sort_by_key(key);
    }
}

/// What a walk needs to know of the question.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub n: usize,
    pub window: Window,
    pub order: FunnelOrder,
    /// Bit k: step k is optional.
    pub optional: u32,
}

impl Shape {
    pub fn new(q: &FunnelQuery, window: Window) -> Self {
        let optional = q.steps.iter().enumerate().filter(|(_, s)| s.optional).fold(0u32, |m, (k, _)| m | 1 << k);
        Shape { n: q.steps.len(), window, order: q.order, optional }
    }
}

/// Only paths entering within `[from, to)` (microseconds) count; `None`: any.
pub type Entries = Option<(i64, i64)>;

/// How far one actor got: the time of each step reached, the event that served it, and the
/// event that entered.
#[derive(Debug, Clone, Copy)]
pub struct Path {
    pub times: Times,
    /// Step k's event (as [`node_event`] keeps it); an optional step skipped: [`SKIPPED`].
    pub events: [u32; MAX_STEPS],
    pub entry_event: usize,
    /// Bit k: optional step k was skipped (its time is the step before it's).
    pub skipped: u32,
}

pub const SKIPPED: u32 = u32::MAX;

impl Path {
    pub fn entry(&self) -> i64 {
        self.times[0]
    }

    /// Whether the path did step k (reached it and did not skip it).
    pub fn did(&self, k: usize) -> bool {
        k < self.times.len() && self.skipped & (1 << k) == 0
    }

    /// The last step the path did.
    pub fn last_event(&self) -> Option<usize> {
        (0..self.times.len()).rev().find(|&k| self.did(k)).map(|k| self.events[k] as usize)
    }

    /// Step k's event, when the path did it.
    pub fn event(&self, k: usize) -> Option<usize> {
        self.did(k).then(|| self.events[k] as usize)
    }
}

/// When a path reached each of its steps: a fixed array (a funnel has at most [`MAX_STEPS`]),
/// so that a result allocates nothing.
#[derive(Debug, Clone, Copy)]
pub struct Times {
    at: [i64; MAX_STEPS],
    len: usize,
}

impl Times {
    const EMPTY: Times = Times { at: [0; MAX_STEPS], len: 0 };

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

/// Walks actors' streams, keeping its working memory between actors.
#[derive(Default)]
pub struct Walker {
    ordered: OrderedWalker,
}

impl Walker {
    /// The actor's furthest path entering within `entries`, unless an exclusion voids it.
    pub fn path(&mut self, q: &FunnelQuery, shape: Shape, stream: &[StreamEvent], entries: Entries) -> Option<Path> {
        let path = match shape.order {
            FunnelOrder::Ordered | FunnelOrder::Strict => self.ordered.walk(stream, shape, entries),
            FunnelOrder::Unordered => unordered(stream, shape, entries),
        }?;
        (!excluded(q, stream, &path, shape.window)).then_some(path)
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
    /// Strict funnels: the state before the current timestamp.
    before: Vec<Option<Partial>>,
}

#[derive(Debug, Clone, Copy)]
struct Partial {
    entry: i64,
    entry_event: usize,
    /// Steps reached (optional ones skipped included).
    len: usize,
    /// The last step's node.
    node: u32,
    /// Bit k: the path did step k (the others below `len` were optional and skipped).
    done: u32,
}

/// A step's time, the node of the step before it ([`NO_NODE`] for the first), and the event
/// that served it.
#[derive(Debug, Clone, Copy)]
struct Node {
    ts: i64,
    previous: u32,
    event: u32,
}

const NO_NODE: u32 = u32::MAX;

/// An event's index as a node keeps it: 32 bits fill the node's padding (16 bytes either way),
/// and a frame of 2^32 events would not fit in memory.
fn node_event(event: usize) -> u32 {
    event as u32
}

/// Where one walk stands: the shape, the entries allowed, and the timestamp's first node.
#[derive(Clone, Copy)]
struct At {
    shape: Shape,
    entries: Entries,
    run_nodes: u32,
}

impl OrderedWalker {
    fn walk(&mut self, stream: &[StreamEvent], shape: Shape, entries: Entries) -> Option<Path> {
        let n = shape.n;
        self.nodes.clear();
        for state in [&mut self.state, &mut self.before] {
            state.clear();
            state.resize(n, None);
        }
        let mut best: Option<Partial> = None;
        for run in stream.chunk_by(|a, b| a.ts == b.ts) {
            if entries.is_some_and(|(_, to)| run[0].ts >= to) && self.state.iter().all(|s| s.is_none()) {
                // Nothing entered, and nothing can any more.
                break;
            }
            if shape.order == FunnelOrder::Strict {
                // Only the paths extended by the events of this timestamp survive them: events
                // sharing a timestamp have no order among them, so none comes "between" another.
                std::mem::swap(&mut self.state, &mut self.before);
                self.state.clear();
                self.state.resize(n, None);
            }
            let at = At { shape, entries, run_nodes: self.nodes.len() as u32 };
            match run {
                [e] => self.single(e, at, &mut best),
                _ => self.shared_timestamp(run, at, &mut best),
            }
        }
        best.map(|p| self.path(p))
    }

    /// The path an event at step `k` may extend: the latest-entered path at step `k - 1` (or
    /// earlier, over optional steps), within the window, that does not already use `e` (at
    /// `e`'s timestamp). In strict funnels the paths from before this timestamp are in `before`
    /// (`state` holds this timestamp's).
    fn previous(&self, k: usize, e: &StreamEvent, at: At) -> Option<Partial> {
        let usable = |p: &Partial| e.ts <= window_end(at.shape.window, p.entry) && !self.uses(p, e.event, at.run_nodes);
        let strict = at.shape.order == FunnelOrder::Strict;
        let mut found: Option<Partial> = None;
        let mut take = |p: Option<Partial>| {
            if let Some(p) = p.filter(|p| found.is_none_or(|f| p.entry > f.entry) && usable(p)) {
                found = Some(p);
            }
        };
        let mut j = k;
        while j > 0 {
            j -= 1;
            take(self.state[j]);
            if strict {
                take(self.before[j]);
            }
            if at.shape.optional & (1 << j) == 0 {
                break;
            }
        }
        found
    }

    /// Extend `p` to step `k` with `e`, unless a path entered no earlier already reached `k`.
    fn extend(&mut self, k: usize, p: Partial, e: &StreamEvent, best: &mut Option<Partial>) {
        if self.state[k].is_some_and(|q| p.entry <= q.entry) {
            return;
        }
        let node = self.node(e.ts, p.node, e.event);
        let extended = Partial { len: k + 1, node, done: p.done | 1 << k, ..p };
        consider(best, extended);
        self.state[k] = Some(extended);
    }

    fn enter(&mut self, e: &StreamEvent, at: At, best: &mut Option<Partial>) {
        if at.entries.is_some_and(|(from, to)| e.ts < from || e.ts >= to) {
            return;
        }
        let node = self.node(e.ts, NO_NODE, e.event);
        let entered = Partial { entry: e.ts, entry_event: e.event, len: 1, node, done: 1 };
        consider(best, entered);
        self.state[0] = Some(entered);
    }

    /// An event alone at its timestamp: it serves each step it matches, on different paths
    /// (later steps first, so that it never extends a path it just started or extended).
    fn single(&mut self, e: &StreamEvent, at: At, best: &mut Option<Partial>) {
        let mut later = e.steps & !1;
        while later != 0 {
            let k = (u32::BITS - 1 - later.leading_zeros()) as usize;
            later &= !(1 << k);
            if let Some(p) = self.previous(k, e, at) {
                self.extend(k, p, e, best);
            }
        }
        if e.steps & 1 != 0 {
            self.enter(e, at, best);
        }
    }

    /// Events sharing a timestamp, PostHog's rule: each serves every step it matches, steps taken
    /// in order (one copy of the event per matching step), and no event serves two steps of one
    /// path. So ten steps whose events all share one timestamp can complete. The first event to
    /// enter at this timestamp is the entry; later ones would start the same path again.
    fn shared_timestamp(&mut self, run: &[StreamEvent], at: At, best: &mut Option<Partial>) {
        let matched = run.iter().fold(0u32, |m, e| m | e.steps);
        for k in (0..at.shape.n).filter(|k| matched & (1 << k) != 0) {
            for e in run.iter().filter(|e| e.steps & (1 << k) != 0) {
                if k == 0 {
                    if self.state[0].is_none_or(|p| p.entry != e.ts) {
                        self.enter(e, at, best);
                    }
                } else if let Some(p) = self.previous(k, e, at) {
                    self.extend(k, p, e, best);
                }
            }
        }
    }

    /// Whether path `p` used event `event` at this timestamp: its nodes made since `run_nodes`
    /// (the first node of this timestamp) are the only ones that can hold it.
    fn uses(&self, p: &Partial, event: usize, run_nodes: u32) -> bool {
        if p.node < run_nodes {
            // Made before this timestamp (the usual case).
            return false;
        }
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

    /// The path's step times and events, read back from its last node; a skipped optional step
    /// takes the time of the step before it, so that durations run between steps done.
    fn path(&self, p: Partial) -> Path {
        let len = p.len.min(MAX_STEPS);
        let mut path = Path {
            times: Times { at: [0; MAX_STEPS], len },
            events: [SKIPPED; MAX_STEPS],
            entry_event: p.entry_event,
            skipped: !p.done & ((1u64 << len) - 1) as u32,
        };
        let mut node = p.node;
        for k in (0..len).rev().filter(|&k| p.done & (1 << k) != 0) {
            let Some(n) = self.nodes.get(node as usize) else { break };
            path.times.at[k] = n.ts;
            path.events[k] = n.event;
            node = n.previous;
        }
        for k in 1..len {
            if path.skipped & (1 << k) != 0 {
                path.times.at[k] = path.times.at[k - 1];
            }
        }
        path
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
fn unordered(stream: &[StreamEvent], shape: Shape, entries: Entries) -> Option<Path> {
    let window = shape.window;
    let events: Vec<&StreamEvent> = stream.iter().filter(|e| e.steps != 0).collect();
    let mut counts = vec![0u32; shape.n];
    let mut end = 0;
    let mut best: Option<(usize, usize)> = None;
    for (start, anchor) in events.iter().enumerate() {
        let limit = window_end(window, anchor.ts);
        while end < events.len() && events[end].ts <= limit {
            add_steps(&mut counts, events[end].steps, 1);
            end += 1;
        }
        let may_enter = entries.is_none_or(|(from, to)| anchor.ts >= from && anchor.ts < to);
        let done = counts.iter().filter(|&&c| c > 0).count();
        if may_enter && best.is_none_or(|(d, _)| done > d) {
            best = Some((done, start));
        }
        add_steps(&mut counts, anchor.steps, -1);
    }
    let (_, start) = best?;
    let anchor = events[start];
    let limit = window_end(window, anchor.ts);
    let mut seen = 0u32;
    let mut path = Path { times: Times::EMPTY, events: [SKIPPED; MAX_STEPS], entry_event: anchor.event, skipped: 0 };
    for e in events[start..].iter().take_while(|e| e.ts <= limit) {
        let new = e.steps & !seen;
        for _ in 0..new.count_ones() {
            if let Some(slot) = path.events.get_mut(path.times.len) {
                *slot = node_event(e.event);
            }
            path.times.push(e.ts);
        }
        seen |= e.steps;
    }
    Some(path)
}

fn add_steps(counts: &mut [u32], mask: u32, delta: i32) {
    for (k, c) in counts.iter_mut().enumerate() {
        if mask & (1 << k) != 0 {
            *c = c.saturating_add_signed(delta);
        }
    }
}

/// Whether an exclusion event happened strictly between the path's `from_step` and `to_step`
/// (or, when the path stops before `to_step`, after `from_step` and within the window). In
/// unordered funnels exclusions span the whole funnel: from the entry to the last step.
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
