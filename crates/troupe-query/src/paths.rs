//! Paths: the most common sequences of events after a start event, before an end event, or
//! from each actor's first event, by users or by a group type (a group's path is made of the
//! events attributed to it, from any member, in time order).
//!
//! Each actor's events of the range (passing the question's filters, and `include`/`exclude`)
//! are put in time order (events at one timestamp by name), renamed by the cleaning rules, and
//! repeats in a row merged into one step (PostHog's rule). Then one path per actor: from its
//! first start event on, up to its first end event, or from its first event; at most
//! `step_limit` steps.

use std::sync::Arc;

use regex::Regex;
use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use troupe_store::aggregate::{SplitBy, StreamsRequest};
use troupe_store::Actor;

use crate::cohorts::{resolve_all, ResolvedCohort};
use crate::error::QueryError;
use crate::frame::Needs;
use crate::pushdown;
use crate::result::{PathEdge, PathNode, PathSequence, PathsResult};
use crate::spec::{EventSelector, PathsQuery};
use crate::{scan, Ctx, Setup};

pub const MAX_STEPS: usize = 20;
const DEFAULT_STEPS: usize = 5;
const DEFAULT_EDGES: usize = 50;
const MAX_EDGES: usize = 1000;

/// One event of an actor: time, raw name (an index into the question's name table), and
/// whether it is the anchor (the start or end event).
#[derive(Debug, Clone, Copy)]
struct Step {
    ts: i64,
    name: u32,
    anchor: bool,
}

/// Every actor's events, and the names they use.
struct Events {
    names: Vec<String>,
    /// Per actor (index into `actor`'s table), its events in no particular order.
    actors: Vec<(u32, Vec<Step>)>,
}

pub async fn run(ctx: &Ctx<'_>, q: &PathsQuery) -> Result<PathsResult, QueryError> {
    let shape = Shape::new(q)?;
    let setup = Setup::new(&q.common, ctx.now)?;
    let anchor = q.start.as_ref().or(q.end.as_ref());
    let filters = q.common.filters.iter().chain(anchor.and_then(|a| a.filters.as_ref()));
    let cohorts = resolve_all(ctx, filters).await?;
    if let Some(pushed) = pushed_events(ctx, q, anchor, &setup, &cohorts).await? {
        let profiles = pushdown::ProfileIndex::new(&pushed.profiles);
        let actor = |a: u32| pushed.keys.get(a as usize).map(|key| profiles.actor(key));
        return Ok(shape.answer(q, pushed.events, &actor));
    }
    let mut needs = Needs::new();
    needs.count_by(&q.common.count_by);
    needs.all_events();
    if let Some(f) = &q.common.filters {
        needs.filter(f, &cohorts);
    }
    if let Some(a) = anchor {
        needs.selector(a, &cohorts);
    }
    if q.actors.is_some() {
        needs.actors_listed();
    }
    let frame = scan(ctx, &needs, Some(setup.from_us), Some(setup.to_us)).await?;
    let column = frame.column(&q.common.count_by);
    let every = frame.matcher(&EventSelector::default(), q.common.filters.as_ref(), &cohorts)?;
    let anchor = anchor.map(|a| frame.matcher(a, q.common.filters.as_ref(), &cohorts)).transpose()?;
    // Each actor's steps at their exact size: counted first, so no list grows by doubling
    // (at 10M events, doubling held up to twice the steps' 160 MB at the peak).
    let mut counts = vec![0usize; frame.actor_count(column)];
    for i in (0..frame.len()).filter(|&i| every.matches(&frame, i)) {
        for &a in frame.actors(i, column) {
            if let Some(n) = counts.get_mut(a as usize) {
                *n += 1;
            }
        }
    }
    let mut by_actor: Vec<Vec<Step>> = counts.into_iter().map(Vec::with_capacity).collect();
    for i in 0..frame.len() {
        if !every.matches(&frame, i) {
            continue;
        }
        let step = Step {
            ts: frame.scan.ts[i],
            name: frame.scan.name[i],
            anchor: anchor.as_ref().is_some_and(|m| m.matches(&frame, i)),
        };
        for &a in frame.actors(i, column) {
            if let Some(steps) = by_actor.get_mut(a as usize) {
                steps.push(step);
            }
        }
    }
    let actors = by_actor.into_iter().enumerate().filter(|(_, steps)| !steps.is_empty());
    let events =
        Events { names: frame.scan.names.clone(), actors: actors.map(|(a, steps)| (a as u32, steps)).collect() };
    Ok(shape.answer(q, events, &|a| frame.actor(column, a).cloned()))
}

/// What the backend gives: each actor's events with their names (actor `a` is `keys[a]`).
struct Pushed {
    events: Events,
    keys: Vec<String>,
    profiles: Arc<Vec<Actor>>,
}

/// The actors' events from the backend's streams, each labelled with its name: test 0 is every
/// event passing the filters, test 1 the anchor.
async fn pushed_events(
    ctx: &Ctx<'_>,
    q: &PathsQuery,
    anchor: Option<&EventSelector>,
    setup: &Setup,
    cohorts: &HashMap<String, Arc<ResolvedCohort>>,
) -> Result<Option<Pushed>, QueryError> {
    let every = EventSelector::default();
    let selectors: Vec<&EventSelector> = std::iter::once(&every).chain(anchor).collect();
    let Some(tests) = pushdown::tests(ctx, cohorts, &q.common, &selectors).await? else { return Ok(None) };
    let actor = pushdown::actor_kind(ctx, &q.common.count_by).await?;
    let Some(profiles) = pushdown::listed_profiles(ctx, &actor, q.actors.is_some()).await? else { return Ok(None) };
    let request = StreamsRequest {
        actor,
        tests,
        all_events: false,
        from: setup.from_us,
        to: setup.to_us,
        keys: Some(SplitBy::EventName),
    };
    let Some(streams) = pushdown::streams(ctx, request).await? else { return Ok(None) };
    let mut names: Vec<String> = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::default();
    let mut pushed = Pushed { events: Events { names: Vec::new(), actors: Vec::new() }, keys: Vec::new(), profiles };
    for (a, stream) in streams.into_iter().enumerate() {
        let mut steps = Vec::with_capacity(stream.events.len());
        for ((ts, mask), keys) in stream.events.into_iter().zip(stream.keys) {
            if mask & 1 == 0 {
                continue;
            }
            let Some(name) = keys.into_iter().next() else { continue };
            let id = *index.entry(name.clone()).or_insert_with(|| {
                names.push(name);
                (names.len() - 1) as u32
            });
            steps.push(Step { ts, name: id, anchor: mask & 2 != 0 });
        }
        pushed.events.actors.push((a as u32, steps));
        pushed.keys.push(stream.actor);
    }
    pushed.events.names = names;
    Ok(Some(pushed))
}

/// Where paths are anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    /// From each actor's first event.
    First,
    Start,
    End,
}

/// The question's path rules, checked.
struct Shape {
    anchor: Anchor,
    steps: usize,
    edges: usize,
    cleaning: Vec<(Regex, String)>,
}

impl Shape {
    fn new(q: &PathsQuery) -> Result<Self, QueryError> {
        let anchor = match (&q.start, &q.end) {
            (Some(_), Some(_)) => {
                return Err(QueryError::invalid("paths take a start or an end event, not both"));
            }
            (Some(_), None) => Anchor::Start,
            (None, Some(_)) => Anchor::End,
            (None, None) => Anchor::First,
        };
        let steps = q.step_limit.unwrap_or(DEFAULT_STEPS);
        if !(2..=MAX_STEPS).contains(&steps) {
            return Err(QueryError::invalid(format!("step_limit must be 2 to {MAX_STEPS}, got {steps}")));
        }
        let edges = q.edge_limit.unwrap_or(DEFAULT_EDGES);
        if !(1..=MAX_EDGES).contains(&edges) {
            return Err(QueryError::invalid(format!("edge_limit must be 1 to {MAX_EDGES}, got {edges}")));
        }
        let mut cleaning = Vec::new();
        for (i, rule) in q.cleaning.iter().enumerate() {
            let regex = Regex::new(&rule.regex)
                .map_err(|e| QueryError::invalid(format!("cleaning[{i}].regex does not parse: {e}")))?;
            cleaning.push((regex, rule.label.clone()));
        }
        if let Some(a) = &q.actors {
            if a.step == 0 || a.step > steps {
                return Err(QueryError::invalid(format!("actors.step must be 1 to {steps} (the step_limit)")));
            }
        }
        Ok(Shape { anchor, steps, edges, cleaning })
    }

    /// The paths, counted; `actor` gives an actor's profile for a list of them.
    fn answer(&self, q: &PathsQuery, events: Events, actor: &dyn Fn(u32) -> Option<Actor>) -> PathsResult {
        let Events { names, actors } = events;
        // Each raw name once: kept or not, and its label after cleaning (interned).
        let include: HashSet<&str> = q.include.iter().map(String::as_str).collect();
        let exclude: HashSet<&str> = q.exclude.iter().map(String::as_str).collect();
        let mut labels: Vec<String> = Vec::new();
        let mut label_index: HashMap<String, u32> = HashMap::default();
        let cleaned: Vec<(u32, bool)> = names
            .iter()
            .map(|name| {
                let kept = (include.is_empty() || include.contains(name.as_str())) && !exclude.contains(name.as_str());
                let label = self
                    .cleaning
                    .iter()
                    .find(|(regex, _)| regex.is_match(name))
                    .map_or_else(|| name.clone(), |(_, label)| label.clone());
                let id = *label_index.entry(label.clone()).or_insert_with(|| {
                    labels.push(label);
                    (labels.len() - 1) as u32
                });
                (id, kept)
            })
            .collect();

        let mut nodes: HashMap<(usize, u32), (u64, u64)> = HashMap::default();
        let mut edges: HashMap<(usize, u32, u32), u64> = HashMap::default();
        let mut sequences: HashMap<Vec<u32>, u64> = HashMap::default();
        let mut listed: Vec<u32> = Vec::new();
        let wanted = q.actors.as_ref().map(|a| {
            let id = |name: &str| label_index.get(name).copied();
            (a.step, id(&a.source), a.target.as_deref().map(id))
        });
        let mut with_paths = 0u64;
        for (a, mut steps) in actors {
            steps.sort_by(|x, y| x.ts.cmp(&y.ts).then_with(|| names[x.name as usize].cmp(&names[y.name as usize])));
            let Some((path, first_step)) = self.path(&steps, &cleaned) else { continue };
            with_paths += 1;
            for (k, &label) in path.iter().enumerate() {
                let node = nodes.entry((first_step + k, label)).or_default();
                node.0 += 1;
                if k + 1 == path.len() {
                    node.1 += 1;
                }
            }
            for (k, pair) in path.windows(2).enumerate() {
                *edges.entry((first_step + k, pair[0], pair[1])).or_default() += 1;
            }
            if let Some((step, Some(source), target)) = wanted {
                let at = |s: usize| s.checked_sub(first_step).and_then(|k| path.get(k).copied());
                let on_edge = match target {
                    None => at(step) == Some(source),
                    Some(None) => false,
                    Some(Some(target)) => at(step) == Some(source) && at(step + 1) == Some(target),
                };
                if on_edge {
                    listed.push(a);
                }
            }
            *sequences.entry(path).or_default() += 1;
        }
        let label = |id: u32| labels[id as usize].clone();
        let mut nodes: Vec<PathNode> = nodes
            .into_iter()
            .map(|((step, name), (actors, ended))| PathNode { step, name: label(name), actors, ended })
            .collect();
        nodes.sort_by(|a, b| a.step.cmp(&b.step).then(b.actors.cmp(&a.actors)).then_with(|| a.name.cmp(&b.name)));
        let mut edges: Vec<PathEdge> = edges
            .into_iter()
            .map(|((step, source, target), actors)| PathEdge {
                step,
                source: label(source),
                target: label(target),
                actors,
            })
            .collect();
        edges.sort_by(|a, b| {
            b.actors
                .cmp(&a.actors)
                .then(a.step.cmp(&b.step))
                .then_with(|| a.source.cmp(&b.source))
                .then_with(|| a.target.cmp(&b.target))
        });
        edges.truncate(self.edges);
        let mut sequences: Vec<PathSequence> = sequences
            .into_iter()
            .map(|(path, actors)| PathSequence { steps: path.into_iter().map(label).collect(), actors })
            .collect();
        sequences.sort_by(|a, b| b.actors.cmp(&a.actors).then_with(|| a.steps.cmp(&b.steps)));
        sequences.truncate(self.edges);
        let actors = q.actors.as_ref().map(|request| {
            let mut actors: Vec<Actor> = listed.into_iter().filter_map(actor).collect();
            actors.sort_by(|a, b| a.key.cmp(&b.key));
            actors.truncate(request.limit.unwrap_or(100));
            actors
        });
        PathsResult { actors_with_paths: with_paths, nodes, edges, sequences, actors }
    }

    /// One actor's path (labels) and the step number of its first element; `None` without the
    /// anchor. `steps` are in time order; `cleaned` gives a raw name's label and whether the name
    /// is kept by `include`/`exclude` (the anchor always is).
    fn path(&self, steps: &[Step], cleaned: &[(u32, bool)]) -> Option<(Vec<u32>, usize)> {
        let label = |s: &Step| cleaned.get(s.name as usize).filter(|(_, kept)| *kept).map(|(l, _)| *l);
        let anchor_label = |s: &Step| cleaned.get(s.name as usize).map(|(l, _)| *l);
        let merged = |iter: &mut dyn Iterator<Item = u32>, limit: usize| {
            let mut out: Vec<u32> = Vec::new();
            for l in iter {
                if out.last() != Some(&l) {
                    if out.len() == limit {
                        break;
                    }
                    out.push(l);
                }
            }
            out
        };
        match self.anchor {
            Anchor::First => {
                let path = merged(&mut steps.iter().filter_map(label), self.steps);
                (!path.is_empty()).then_some((path, 1))
            }
            Anchor::Start => {
                let at = steps.iter().position(|s| s.anchor)?;
                let first = anchor_label(&steps[at]);
                let mut rest = first.into_iter().chain(steps[at + 1..].iter().filter_map(label));
                let path = merged(&mut rest, self.steps);
                (!path.is_empty()).then_some((path, 1))
            }
            Anchor::End => {
                let at = steps.iter().position(|s| s.anchor)?;
                let last = anchor_label(&steps[at]);
                // Backwards from the end event, merged, then turned round.
                let mut back = last.into_iter().chain(steps[..at].iter().rev().filter_map(label));
                let mut path = merged(&mut back, self.steps);
                path.reverse();
                let first_step = self.steps + 1 - path.len();
                (!path.is_empty()).then_some((path, first_step))
            }
        }
    }
}
