//! Breakdowns the backend splits by (push-down): troupe labels what it can label (group and
//! person profiles), the backend weighs the labels by matching events, troupe ranks them with the
//! scan path's rules and sends the lines back as a [`Split`].

use rustc_hash::FxHashMap as HashMap;
use troupe_store::aggregate::{
    ActorKind, ActorStream, EventTest, PeriodCount, PeriodCounts, PeriodCountsRequest, Periods, RangeCount, Split,
    SplitBy, ValuesRequest,
};

use crate::error::QueryError;
use crate::frame::{breakdown_limit, label, rank};
use crate::pushdown;
use crate::spec::{Breakdown, PropertySource};
use crate::Ctx;

/// A breakdown as lines the backend splits by, and each line's value; `None` when the backend
/// leaves it to the scan path.
pub async fn split(
    ctx: &Ctx<'_>,
    b: &Breakdown,
    calendar: Periods,
    tests: &[EventTest],
    ranges: &[(i64, i64)],
) -> Result<Option<(Option<Split>, Vec<Option<String>>)>, QueryError> {
    Ok(split_counting(ctx, b, calendar, tests, ranges).await?.map(|lines| (lines.split, lines.values)))
}

/// A breakdown's lines, and what weighing them already counted.
pub struct Lines {
    pub split: Option<Split>,
    pub values: Vec<Option<String>>,
    /// The events of `tests` per period and line — what a request for the events (not the
    /// actors) of this split would answer — when weighing the lines counted exactly that: one
    /// test, one range, and every label with events on a line of its own. Breakdowns by a group
    /// property weigh with the periods' counts, so the question needs no second pass then.
    pub events: Option<PeriodCounts>,
}

/// [`split`], with the counts its weighing pass holds.
pub async fn split_counting(
    ctx: &Ctx<'_>,
    b: &Breakdown,
    calendar: Periods,
    tests: &[EventTest],
    ranges: &[(i64, i64)],
) -> Result<Option<Lines>, QueryError> {
    let without_counts = |found: Option<(Option<Split>, Vec<Option<String>>)>| {
        found.map(|(split, values)| Lines { split, values, events: None })
    };
    match &b.source {
        PropertySource::Group { group_type } => group_split(ctx, b, group_type, calendar, tests, ranges).await,
        PropertySource::Event => Ok(without_counts(event_split(ctx, b, tests, ranges).await?)),
        PropertySource::Person => Ok(without_counts(person_split(ctx, b, tests, ranges[0]).await?)),
    }
}

/// A breakdown by a person property: troupe labels each person from the profiles, the backend
/// counts each person's matching events of the current period (the labels' weights), and the
/// persons of each kept label go back as that line's set. Persons without the property (or
/// without a profile) are on the "not set" line.
async fn person_split(
    ctx: &Ctx<'_>,
    b: &Breakdown,
    tests: &[EventTest],
    (from, to): (i64, i64),
) -> Result<Option<(Option<Split>, Vec<Option<String>>)>, QueryError> {
    let Some(profiles) = pushdown::profiles(ctx, ActorKind::Persons).await? else { return Ok(None) };
    let any = EventTest::any_of(tests);
    let Some(counts) = pushdown::actors(ctx, ActorKind::Persons, any, 1, (from, to), None).await? else {
        return Ok(None);
    };
    // Label 0 is "not set".
    let mut labels: Vec<Option<String>> = vec![None];
    let mut label_ids: HashMap<String, usize> = HashMap::default();
    let mut label_of_person: HashMap<&str, usize> = HashMap::default();
    for p in profiles.iter() {
        let Some(value) = label(p.properties.get(&b.key)) else { continue };
        let id = *label_ids.entry(value.clone()).or_insert_with(|| {
            labels.push(Some(value));
            labels.len() - 1
        });
        label_of_person.insert(&p.key, id);
    }
    let mut weights = vec![0u64; labels.len()];
    for (person, events) in &counts {
        weights[label_of_person.get(person.as_str()).copied().unwrap_or(0)] += events;
    }
    let (line_of_label, values) = rank(&labels, &weights, breakdown_limit(b));
    let line = |label: usize| line_of_label.get(label).copied().unwrap_or(0) as u32;
    let lines = label_of_person.iter().map(|(person, &l)| (person.to_string(), line(l))).collect();
    let split = Split { by: SplitBy::Person, lines, default_line: line(0), unset_line: line(0) };
    Ok(Some((Some(split), values)))
}

/// A breakdown by an event property: the backend counts matching events per value in each
/// range, troupe ranks the values by the current period's counts (values seen only in the
/// previous period, and those beyond the limit, go to "other") and sends them as lines.
async fn event_split(
    ctx: &Ctx<'_>,
    b: &Breakdown,
    tests: &[EventTest],
    ranges: &[(i64, i64)],
) -> Result<Option<(Option<Split>, Vec<Option<String>>)>, QueryError> {
    let request = ValuesRequest { key: b.key.clone(), test: EventTest::any_of(tests), ranges: ranges.to_vec() };
    let Some(counts) = pushdown::values(ctx, request).await? else { return Ok(None) };
    let mut labels: Vec<Option<String>> = Vec::new();
    let mut label_ids: HashMap<Option<String>, usize> = HashMap::default();
    let mut weights: Vec<u64> = Vec::new();
    for c in counts {
        let id = *label_ids.entry(c.value.clone()).or_insert_with(|| {
            labels.push(c.value.clone());
            weights.push(0);
            labels.len() - 1
        });
        if c.range == 0 {
            weights[id] += c.events;
        }
    }
    let (line_of_label, values) = rank(&labels, &weights, breakdown_limit(b));
    // Every value of a matching event is listed; a line past the last one is never reached.
    let unreached = values.len() as u32;
    let line = |label: Option<&usize>| label.and_then(|&l| line_of_label.get(l)).map_or(unreached, |&l| l as u32);
    let lines =
        labels.iter().enumerate().filter_map(|(l, v)| v.as_ref().map(|v| (v.clone(), line(Some(&l))))).collect();
    let split = Split {
        by: SplitBy::EventProperty(b.key.clone()),
        lines,
        default_line: unreached,
        unset_line: line(label_ids.get(&None)),
    };
    Ok(Some((Some(split), values)))
}

/// A breakdown by a group property as lines the backend splits by: every group's label by the
/// scan path's rules, the top labels by matching events of the current period (asked of the
/// backend first), the rest as "other". `None` when the backend leaves it to the scan path.
async fn group_split(
    ctx: &Ctx<'_>,
    b: &Breakdown,
    group_type: &str,
    calendar: Periods,
    tests: &[EventTest],
    ranges: &[(i64, i64)],
) -> Result<Option<Lines>, QueryError> {
    let Some(profiles) = pushdown::profiles(ctx, ActorKind::Group(group_type.to_string())).await? else {
        return Ok(None);
    };
    // Label 0 is "not set": groups without the property, events without a group of the type.
    let mut labels: Vec<Option<String>> = vec![None];
    let mut label_ids: HashMap<String, u32> = HashMap::default();
    let mut label_of_group = Vec::new();
    for g in profiles.iter() {
        let Some(value) = label(g.properties.get(&b.key)) else { continue };
        let id = *label_ids.entry(value.clone()).or_insert_with(|| {
            labels.push(Some(value));
            (labels.len() - 1) as u32
        });
        label_of_group.push((g.key.clone(), id));
    }
    let by_label =
        Split { by: SplitBy::Group(group_type.to_string()), lines: label_of_group, default_line: 0, unset_line: 0 };
    let weigh = PeriodCountsRequest {
        actor: None,
        periods: calendar,
        tests: vec![EventTest::any_of(tests)],
        ranges: vec![ranges[0]],
        split: Some(by_label.clone()),
    };
    let Some((cells, totals)) = pushdown::period_counts(ctx, weigh).await? else { return Ok(None) };
    let mut weights = vec![0u64; labels.len()];
    for t in &totals {
        if let Some(w) = weights.get_mut(t.line as usize) {
            *w = t.events;
        }
    }
    let limit = breakdown_limit(b);
    let (line_of_label, values) = rank(&labels, &weights, limit);
    let line = |label: u32| line_of_label.get(label as usize).copied().unwrap_or(0) as u32;
    // Every label with events has a line of its own: the weighing counts, relabelled, are the
    // question's (an event on two labels counted once on each, as it would be on their lines).
    let own_lines = weights.iter().filter(|w| **w > 0).count() <= limit;
    let events = (own_lines && tests.len() == 1 && ranges.len() == 1).then(|| PeriodCounts {
        cells: cells.into_iter().map(|c| PeriodCount { line: line(c.line), ..c }).collect(),
        totals: totals.into_iter().map(|t| RangeCount { line: line(t.line), ..t }).collect(),
    });
    let split = Split {
        by: by_label.by,
        lines: by_label.lines.into_iter().map(|(key, l)| (key, line(l))).collect(),
        default_line: line(0),
        unset_line: line(0),
    };
    Ok(Some(Lines { split: Some(split), values, events }))
}

/// Labels an event from the keys a stream carries for it (see
/// [`troupe_store::aggregate::StreamsRequest`]) as the scan path labels it: a property's text, or the smallest
/// label among its groups, or its person's label.
pub struct Labeller {
    pub by: SplitBy,
    /// Group or person key → label; `None` for event properties (the key is the label).
    labels: Option<HashMap<String, Option<String>>>,
}

impl Labeller {
    /// `None` when the backend has no profiles to label by.
    pub async fn new(ctx: &Ctx<'_>, b: &Breakdown) -> Result<Option<Self>, QueryError> {
        let (by, actor) = match &b.source {
            PropertySource::Event => {
                return Ok(Some(Labeller { by: SplitBy::EventProperty(b.key.clone()), labels: None }));
            }
            PropertySource::Person => (SplitBy::Person, ActorKind::Persons),
            PropertySource::Group { group_type } => {
                (SplitBy::Group(group_type.clone()), ActorKind::Group(group_type.clone()))
            }
        };
        let Some(profiles) = pushdown::profiles(ctx, actor).await? else { return Ok(None) };
        let labels = profiles.iter().map(|a| (a.key.clone(), label(a.properties.get(&b.key)))).collect();
        Ok(Some(Labeller { by, labels: Some(labels) }))
    }

    /// For a question that may have a breakdown: `Some(None)` without one, `None` when the
    /// backend cannot label by it.
    pub async fn of(ctx: &Ctx<'_>, b: Option<&Breakdown>) -> Result<Option<Option<Self>>, QueryError> {
        match b {
            None => Ok(Some(None)),
            Some(b) => Ok(Labeller::new(ctx, b).await?.map(Some)),
        }
    }

    /// The label of a backend stream's event `k`, by what it carries (`None` without a
    /// labeller).
    pub fn event_label(labeller: Option<&Self>, stream: &ActorStream, k: usize) -> Option<String> {
        labeller.zip(stream.keys.get(k)).and_then(|(l, keys)| l.label(keys))
    }

    pub fn label(&self, keys: &[String]) -> Option<String> {
        match &self.labels {
            None => keys.first().cloned(),
            Some(labels) => keys.iter().filter_map(|k| labels.get(k).cloned().flatten()).min(),
        }
    }
}
