//! A scan ready for the insight kinds: who each event counts for, which events pass a filter,
//! and which breakdown values an event has.

use std::collections::BTreeSet;

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::sync::Arc;

use regex::Regex;
use serde_json::Value;
use troupe_store::aggregate::{Condition, NumberOp, ValueCondition};
use troupe_store::{Actor, EventScan, ScanRequest};

use crate::cohorts::{cohort_key, ResolvedCohort};
use crate::error::QueryError;
use crate::spec::{Breakdown, CountBy, EventSelector, Filter, Operator, PropertySource, GROUP_KEY};

/// What a scan must return for a query's filters, breakdowns and counting.
#[derive(Debug, Default)]
pub struct Needs {
    /// `None`: every event.
    pub events: Option<BTreeSet<String>>,
    pub group_types: BTreeSet<String>,
    pub event_properties: bool,
    pub persons: bool,
    pub person_details: bool,
    /// Groups' properties: read by a group property filter or breakdown, a cohort of groups,
    /// or a list of actors.
    pub group_details: bool,
}

impl Needs {
    pub fn new() -> Self {
        Needs { events: Some(BTreeSet::new()), ..Needs::default() }
    }

    pub fn all_events(&mut self) {
        self.events = None;
    }

    pub fn count_by(&mut self, by: &CountBy) {
        match by {
            CountBy::Users => self.persons = true,
            CountBy::Group { group_type } => {
                self.group_types.insert(group_type.clone());
            }
        }
    }

    pub fn selector(&mut self, s: &EventSelector, cohorts: &HashMap<String, Arc<ResolvedCohort>>) {
        match (&mut self.events, &s.event) {
            (Some(names), Some(name)) => {
                names.insert(name.clone());
            }
            (Some(_), None) => self.events = None,
            (None, _) => {}
        }
        if let Some(f) = &s.filters {
            self.filter(f, cohorts);
        }
    }

    pub fn filter(&mut self, f: &Filter, cohorts: &HashMap<String, Arc<ResolvedCohort>>) {
        match f {
            Filter::And { and: items } | Filter::Or { or: items } => items.iter().for_each(|f| self.filter(f, cohorts)),
            Filter::Not { not } => self.filter(not, cohorts),
            Filter::Property(c) => self.source(&c.source),
            Filter::Cohort { cohort } => {
                if let Some(resolved) = cohorts.get(&cohort_key(cohort)) {
                    self.count_by(&resolved.count_by);
                    self.person_details |= resolved.count_by == CountBy::Users;
                    self.group_details |= resolved.count_by != CountBy::Users;
                }
            }
        }
    }

    pub fn breakdown(&mut self, b: &Breakdown) {
        self.source(&b.source);
    }

    /// A property read from where `source` says (a series' property of profiles).
    pub fn property_source(&mut self, source: &PropertySource) {
        self.source(source);
    }

    fn source(&mut self, source: &PropertySource) {
        match source {
            PropertySource::Event => self.event_properties = true,
            PropertySource::Person => self.person_details = true,
            PropertySource::Group { group_type } => {
                self.group_types.insert(group_type.clone());
                self.group_details = true;
            }
        }
    }

    /// The question lists who it counted: their profiles are part of the answer.
    pub fn actors_listed(&mut self) {
        self.person_details = true;
        self.group_details = true;
    }

    pub fn request(&self, from: Option<i64>, to: Option<i64>) -> ScanRequest {
        ScanRequest {
            from: from.map(crate::time::from_micros),
            to: to.map(crate::time::from_micros),
            events: self.events.as_ref().map(|e| e.iter().cloned().collect()),
            group_types: self.group_types.iter().cloned().collect(),
            event_properties: self.event_properties,
            persons: self.persons || self.person_details,
            person_details: self.person_details,
            group_details: self.group_details,
        }
    }
}

/// Whose events: persons, or the groups in one column of the scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActorColumn {
    Persons,
    Group(usize),
}

pub struct Frame {
    pub scan: EventScan,
    group_index: HashMap<String, usize>,
}

impl Frame {
    pub fn new(scan: EventScan) -> Self {
        let group_index = scan.groups.iter().enumerate().map(|(i, g)| (g.group_type.clone(), i)).collect();
        Frame { scan, group_index }
    }

    pub fn len(&self) -> usize {
        self.scan.len()
    }

    /// Events of these persons (by person id) count for no person: they stay events (totals),
    /// but no user is counted for them.
    pub fn leave_out_persons(&mut self, ids: &rustc_hash::FxHashSet<String>) {
        if ids.is_empty() || self.scan.person.is_empty() {
            return;
        }
        let left_out: Vec<u32> =
            self.scan.persons.iter().enumerate().filter(|(_, p)| ids.contains(&p.key)).map(|(i, _)| i as u32).collect();
        if left_out.is_empty() {
            return;
        }
        for p in self.scan.person.iter_mut() {
            if left_out.contains(p) {
                *p = troupe_store::GroupColumn::NO_ID;
            }
        }
    }

    pub fn column(&self, by: &CountBy) -> ActorColumn {
        match by {
            CountBy::Users => ActorColumn::Persons,
            CountBy::Group { group_type } => self.group_column(group_type),
        }
    }

    pub fn group_column(&self, group_type: &str) -> ActorColumn {
        // Every requested type has a column (empty when the type does not exist).
        ActorColumn::Group(self.group_index.get(group_type).copied().unwrap_or(usize::MAX))
    }

    /// Per event its one actor ([`troupe_store::GroupColumn::NO_ID`]: none), when no event counts for
    /// several (persons always; a group type while no event has two groups of it).
    pub fn single_actors(&self, column: ActorColumn) -> Option<&[u32]> {
        match column {
            ActorColumn::Persons => Some(&self.scan.person),
            ActorColumn::Group(g) => self.scan.groups.get(g).map_or(Some(&[]), |c| c.single_ids()),
        }
    }

    /// The actors event `i` counts for.
    #[inline]
    pub fn actors(&self, i: usize, column: ActorColumn) -> &[u32] {
        match column {
            ActorColumn::Persons => match self.scan.person.get(i) {
                Some(p) if *p != troupe_store::GroupColumn::NO_ID => std::slice::from_ref(p),
                _ => &[],
            },
            ActorColumn::Group(g) => self.scan.groups.get(g).map_or(&[], |c| c.of(i)),
        }
    }

    pub fn actor(&self, column: ActorColumn, id: u32) -> Option<&Actor> {
        match column {
            ActorColumn::Persons => self.scan.persons.get(id as usize),
            ActorColumn::Group(g) => self.scan.groups.get(g).and_then(|c| c.actors.get(id as usize)),
        }
    }

    pub fn actor_count(&self, column: ActorColumn) -> usize {
        match column {
            ActorColumn::Persons => self.scan.persons.len(),
            ActorColumn::Group(g) => self.scan.groups.get(g).map_or(0, |c| c.actors.len()),
        }
    }

    pub fn name_index(&self, name: &str) -> Option<u32> {
        self.scan.names.iter().position(|n| n == name).map(|i| i as u32)
    }

    /// A selector's test for this frame.
    pub fn matcher(
        &self,
        selector: &EventSelector,
        global: Option<&Filter>,
        cohorts: &HashMap<String, Arc<ResolvedCohort>>,
    ) -> Result<Matcher, QueryError> {
        let name = match &selector.event {
            None => NameTest::Any,
            Some(name) => self.name_index(name).map_or(NameTest::Never, NameTest::Is),
        };
        let mut filters = Vec::new();
        for f in selector.filters.iter().chain(global) {
            filters.push(self.compile(f, cohorts)?);
        }
        Ok(Matcher { name, filter: Compiled::And(filters) })
    }

    pub fn compile(&self, f: &Filter, cohorts: &HashMap<String, Arc<ResolvedCohort>>) -> Result<Compiled, QueryError> {
        Ok(match f {
            Filter::And { and } => {
                Compiled::And(and.iter().map(|f| self.compile(f, cohorts)).collect::<Result<_, _>>()?)
            }
            Filter::Or { or } => Compiled::Or(or.iter().map(|f| self.compile(f, cohorts)).collect::<Result<_, _>>()?),
            Filter::Not { not } => Compiled::Not(Box::new(self.compile(not, cohorts)?)),
            Filter::Property(c) => match (self.source(&c.source), c.key == GROUP_KEY) {
                (Source::Group(g), true) => {
                    Compiled::GroupKey { group: g, test: ValueTest::new(c.operator, &c.value)? }
                }
                (source, _) => {
                    Compiled::Property { source, key: c.key.clone(), test: ValueTest::new(c.operator, &c.value)? }
                }
            },
            Filter::Cohort { cohort } => {
                let key = cohort_key(cohort);
                let resolved =
                    cohorts.get(&key).ok_or_else(|| QueryError::invalid(format!("cohort {key} was not resolved")))?;
                let column = self.column(&resolved.count_by);
                let members = (0..self.actor_count(column))
                    .map(|id| self.actor(column, id as u32).is_some_and(|a| resolved.contains(a)))
                    .collect();
                Compiled::Cohort { column, members }
            }
        })
    }

    fn source(&self, source: &PropertySource) -> Source {
        match source {
            PropertySource::Event => Source::Event,
            PropertySource::Person => Source::Person,
            PropertySource::Group { group_type } => match self.group_column(group_type) {
                ActorColumn::Group(g) => Source::Group(g),
                ActorColumn::Persons => Source::Person,
            },
        }
    }

    /// The distinct breakdown values of event `i` (`None`: the property is not set).
    pub fn breakdown_values(&self, b: &Breakdown, i: usize) -> Vec<Option<String>> {
        match self.source(&b.source) {
            Source::Event => vec![self.scan.properties.get(i).and_then(|p| label(p.get(&b.key)))],
            Source::Person => vec![self.person(i).and_then(|p| label(p.properties.get(&b.key)))],
            Source::Group(g) => {
                let column = ActorColumn::Group(g);
                let mut values: Vec<Option<String>> = self
                    .actors(i, column)
                    .iter()
                    .map(|&id| self.actor(column, id).and_then(|a| label(a.properties.get(&b.key))))
                    .collect();
                values.sort();
                values.dedup();
                if values.is_empty() {
                    values.push(None);
                }
                values
            }
        }
    }

    /// Every event's breakdown values as ids into a label table, computed once per question
    /// (person and group labels once per actor, not per event).
    pub fn breakdown_keys(&self, b: &Breakdown) -> BreakdownKeys {
        let mut keys =
            BreakdownKeys { labels: Vec::new(), index: HashMap::default(), offsets: vec![0], ids: Vec::new() };
        let column = match self.source(&b.source) {
            Source::Event => {
                for i in 0..self.len() {
                    let id = keys.intern(self.scan.properties.get(i).and_then(|p| label(p.get(&b.key))));
                    keys.ids.push(id);
                    keys.offsets.push(keys.ids.len() as u32);
                }
                return keys;
            }
            Source::Person => ActorColumn::Persons,
            Source::Group(g) => ActorColumn::Group(g),
        };
        let per_actor: Vec<u32> = (0..self.actor_count(column))
            .map(|a| keys.intern(self.actor(column, a as u32).and_then(|a| label(a.properties.get(&b.key)))))
            .collect();
        let none = keys.intern(None);
        if let Some(single) = self.single_actors(column) {
            // One actor per event at most (persons always): one label per event, no offsets.
            keys.offsets.clear();
            keys.ids = single.iter().map(|&a| per_actor.get(a as usize).copied().unwrap_or(none)).collect();
            keys.ids.resize(self.len(), none);
            return keys;
        }
        for i in 0..self.len() {
            let start = keys.ids.len();
            for &a in self.actors(i, column) {
                let id = per_actor[a as usize];
                if !keys.ids[start..].contains(&id) {
                    keys.ids.push(id);
                }
            }
            if keys.ids.len() == start {
                keys.ids.push(none);
            }
            keys.offsets.push(keys.ids.len() as u32);
        }
        keys
    }

    fn person(&self, i: usize) -> Option<&Actor> {
        self.scan.person.get(i).and_then(|&p| self.scan.persons.get(p as usize))
    }
}

/// Breakdown values per event as ids into `labels`: CSR (event `i` has
/// `ids[offsets[i]..offsets[i + 1]]`), or, when `offsets` is empty, one id per event (the label
/// of the event's one person or group: no offsets to build or read).
pub struct BreakdownKeys {
    pub labels: Vec<Option<String>>,
    index: HashMap<Option<String>, u32>,
    offsets: Vec<u32>,
    ids: Vec<u32>,
}

impl BreakdownKeys {
    fn intern(&mut self, label: Option<String>) -> u32 {
        if let Some(&id) = self.index.get(&label) {
            return id;
        }
        let id = self.labels.len() as u32;
        self.index.insert(label.clone(), id);
        self.labels.push(label);
        id
    }

    pub fn of(&self, event: usize) -> &[u32] {
        if self.offsets.is_empty() {
            return self.ids.get(event).map(std::slice::from_ref).unwrap_or(&[]);
        }
        match (self.offsets.get(event), self.offsets.get(event + 1)) {
            (Some(&a), Some(&b)) => &self.ids[a as usize..b as usize],
            _ => &[],
        }
    }
}

/// Lines of a broken-down answer: each kept label its own line, the rest one `$other` line.
/// Without a breakdown, one line.
pub struct Lines {
    pub keys: Option<BreakdownKeys>,
    /// Per label id, its line.
    line_of_label: Vec<usize>,
    /// Per line, its breakdown value.
    pub values: Vec<Option<String>>,
}

impl Lines {
    pub fn none() -> Self {
        Lines { keys: None, line_of_label: Vec::new(), values: vec![None] }
    }

    /// Keep the `limit` labels of most weight (`weight(event)` counts an event for its labels).
    pub fn top(keys: BreakdownKeys, limit: usize, frame_len: usize, counts: impl Fn(usize) -> bool) -> Self {
        let mut weights = vec![0u64; keys.labels.len()];
        for i in (0..frame_len).filter(|&i| counts(i)) {
            for &l in keys.of(i) {
                weights[l as usize] += 1;
            }
        }
        let (line_of_label, values) = rank(&keys.labels, &weights, limit);
        Lines { keys: Some(keys), line_of_label, values }
    }

    /// The distinct lines event `i` belongs to, into `out`.
    pub fn of(&self, i: usize, out: &mut Vec<usize>) {
        out.clear();
        match &self.keys {
            None => out.push(0),
            Some(keys) => {
                for &l in keys.of(i) {
                    let line = self.line_of_label[l as usize];
                    if !out.contains(&line) {
                        out.push(line);
                    }
                }
            }
        }
    }
}

/// The lines of a breakdown from its labels' weights: the `limit` labels of most weight (ties in
/// label order) each get a line, the rest (and labels of no weight) share an [`OTHER`] line.
/// Returns each label's line and each line's value.
pub fn rank(labels: &[Option<String>], weights: &[u64], limit: usize) -> (Vec<usize>, Vec<Option<String>>) {
    let weight = |l: usize| weights.get(l).copied().unwrap_or(0);
    let mut ranked: Vec<usize> = (0..labels.len()).filter(|&l| weight(l) > 0).collect();
    ranked.sort_by(|&a, &b| weight(b).cmp(&weight(a)).then_with(|| labels[a].cmp(&labels[b])));
    let mut values: Vec<Option<String>> = Vec::new();
    let mut line_of_label = vec![usize::MAX; labels.len()];
    for &l in ranked.iter().take(limit) {
        line_of_label[l] = values.len();
        values.push(labels[l].clone());
    }
    if line_of_label.contains(&usize::MAX) {
        let other = values.len();
        values.push(Some(OTHER.to_string()));
        for line in line_of_label.iter_mut().filter(|l| **l == usize::MAX) {
            *line = other;
        }
    }
    (line_of_label, values)
}

/// A property value as a breakdown label.
pub fn label(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[derive(Debug, Clone, Copy)]
enum NameTest {
    Any,
    Is(u32),
    /// The event does not occur in the scan at all.
    Never,
}

/// An event selector compiled against a frame.
pub struct Matcher {
    name: NameTest,
    filter: Compiled,
}

impl Matcher {
    /// Per event name, whether it matches, when the test is on the name alone (no filter).
    pub fn name_table(&self, frame: &Frame) -> Option<Vec<bool>> {
        self.name_only().then(|| (0..frame.scan.names.len() as u32).map(|name| self.matches_name(name)).collect())
    }

    pub fn matches(&self, frame: &Frame, i: usize) -> bool {
        let name_ok = match frame.scan.name.get(i) {
            Some(&name) => self.matches_name(name),
            None => matches!(self.name, NameTest::Any),
        };
        name_ok && self.filter.test(frame, i)
    }

    /// Whether the test is on the event's name alone (no filter).
    fn name_only(&self) -> bool {
        matches!(&self.filter, Compiled::And(filters) if filters.is_empty())
    }

    fn matches_name(&self, name: u32) -> bool {
        match self.name {
            NameTest::Any => true,
            NameTest::Is(n) => n == name,
            NameTest::Never => false,
        }
    }
}

/// A matcher's test for a loop over a frame's events: a lookup in a table by event name when it
/// tests the name alone, else the whole test.
pub struct QuickMatch<'a> {
    matcher: &'a Matcher,
    frame: &'a Frame,
    names: Option<Vec<bool>>,
}

impl<'a> QuickMatch<'a> {
    pub fn new(matcher: &'a Matcher, frame: &'a Frame) -> Self {
        QuickMatch { matcher, frame, names: matcher.name_table(frame) }
    }

    #[inline]
    pub fn matches(&self, i: usize) -> bool {
        match &self.names {
            Some(table) => self.frame.scan.name.get(i).and_then(|&n| table.get(n as usize)).copied().unwrap_or(false),
            None => self.matcher.matches(self.frame, i),
        }
    }
}

/// Which of some matchers an event matches, as bits (bit k: matcher k; at most 32 matchers).
/// When every matcher tests the name alone (funnel steps without filters, most often), the bits
/// come from a table by event name: one lookup per event instead of one test per matcher.
pub struct Masks<'a> {
    matchers: &'a [Matcher],
    by_name: Option<Vec<u32>>,
}

impl<'a> Masks<'a> {
    pub fn new(frame: &Frame, matchers: &'a [Matcher]) -> Self {
        let by_name = matchers.iter().all(Matcher::name_only).then(|| {
            (0..frame.scan.names.len() as u32).map(|name| bits(matchers.iter().map(|m| m.matches_name(name)))).collect()
        });
        Masks { matchers, by_name }
    }

    #[inline]
    pub fn of(&self, frame: &Frame, i: usize) -> u32 {
        match &self.by_name {
            Some(table) => frame.scan.name.get(i).and_then(|&n| table.get(n as usize)).copied().unwrap_or(0),
            None => bits(self.matchers.iter().map(|m| m.matches(frame, i))),
        }
    }
}

fn bits(tests: impl Iterator<Item = bool>) -> u32 {
    tests.enumerate().fold(0, |mask, (k, hit)| if hit { mask | 1 << k } else { mask })
}

#[derive(Debug, Clone, Copy)]
pub enum Source {
    Event,
    Person,
    Group(usize),
}

pub enum Compiled {
    And(Vec<Compiled>),
    Or(Vec<Compiled>),
    Not(Box<Compiled>),
    Property {
        source: Source,
        key: String,
        test: ValueTest,
    },
    /// The key of the event's group(s) of a type ([`GROUP_KEY`]).
    GroupKey {
        group: usize,
        test: ValueTest,
    },
    /// Membership per actor index of the column.
    Cohort {
        column: ActorColumn,
        members: Vec<bool>,
    },
}

impl Compiled {
    pub fn test(&self, frame: &Frame, i: usize) -> bool {
        match self {
            Compiled::And(items) => items.iter().all(|c| c.test(frame, i)),
            Compiled::Or(items) => items.iter().any(|c| c.test(frame, i)),
            Compiled::Not(inner) => !inner.test(frame, i),
            Compiled::Property { source, key, test } => match source {
                Source::Event => test.test(frame.scan.properties.get(i).and_then(|p| p.get(key))),
                Source::Person => test.test(frame.person(i).and_then(|p| p.properties.get(key))),
                Source::Group(g) => {
                    let column = ActorColumn::Group(*g);
                    let ids = frame.actors(i, column);
                    if ids.is_empty() {
                        // No group of the type: the property reads as not set.
                        return test.test(None);
                    }
                    ids.iter().any(|&id| test.test(frame.actor(column, id).and_then(|a| a.properties.get(key))))
                }
            },
            Compiled::GroupKey { group, test } => {
                let column = ActorColumn::Group(*group);
                let ids = frame.actors(i, column);
                if ids.is_empty() {
                    return test.test(None);
                }
                ids.iter().any(|&id| {
                    let key = frame.actor(column, id).map(|a| Value::String(a.key.clone()));
                    test.test(key.as_ref())
                })
            }
            Compiled::Cohort { column, members } => {
                frame.actors(i, *column).iter().any(|&id| members.get(id as usize).copied().unwrap_or(false))
            }
        }
    }
}

/// One operator and its value, prepared once.
#[derive(Debug, Clone)]
pub struct ValueTest {
    operator: Operator,
    /// The comparison values (a list for equals/in).
    values: Vec<Value>,
    lowered: String,
    number: Option<f64>,
    regex: Option<Regex>,
}

impl ValueTest {
    pub fn new(operator: Operator, value: &Value) -> Result<Self, QueryError> {
        let values = match value {
            Value::Array(items) => items.clone(),
            Value::Null => Vec::new(),
            v => vec![v.clone()],
        };
        let text = values.first().map(text_of).unwrap_or_default();
        let number = values.first().and_then(number_of);
        let needs_value = !matches!(operator, Operator::IsSet | Operator::IsNotSet);
        if needs_value && values.is_empty() {
            return Err(QueryError::invalid(format!("operator {operator:?} needs a value")));
        }
        if matches!(operator, Operator::Gt | Operator::Gte | Operator::Lt | Operator::Lte) && number.is_none() {
            return Err(QueryError::invalid(format!("operator {operator:?} needs a number, got {value}")));
        }
        let regex = match operator {
            Operator::Regex | Operator::NotRegex => Some(
                Regex::new(&text).map_err(|e| QueryError::invalid(format!("regex {text:?} does not compile: {e}")))?,
            ),
            _ => None,
        };
        Ok(ValueTest { operator, values, lowered: text.to_lowercase(), number, regex })
    }

    /// Whether a property value (`None`: not set) passes.
    pub fn test(&self, v: Option<&Value>) -> bool {
        let v = v.filter(|v| !v.is_null());
        match self.operator {
            Operator::IsSet => v.is_some(),
            Operator::IsNotSet => v.is_none(),
            Operator::Equals | Operator::In => v.is_some_and(|v| self.values.iter().any(|x| equal(v, x))),
            Operator::NotEquals | Operator::NotIn => !v.is_some_and(|v| self.values.iter().any(|x| equal(v, x))),
            Operator::Contains => v.is_some_and(|v| text_of(v).to_lowercase().contains(&self.lowered)),
            Operator::NotContains => !v.is_some_and(|v| text_of(v).to_lowercase().contains(&self.lowered)),
            Operator::Regex => v.is_some_and(|v| self.regex.as_ref().is_some_and(|r| r.is_match(&text_of(v)))),
            Operator::NotRegex => !v.is_some_and(|v| self.regex.as_ref().is_some_and(|r| r.is_match(&text_of(v)))),
            Operator::Gt => self.compare(v, |a, b| a > b),
            Operator::Gte => self.compare(v, |a, b| a >= b),
            Operator::Lt => self.compare(v, |a, b| a < b),
            Operator::Lte => self.compare(v, |a, b| a <= b),
        }
    }

    /// The same test as a condition on an event property a backend evaluates itself, when
    /// there is one: regexes have none (their dialect is Rust's; see `pushdown`, which matches
    /// them against the property's distinct texts instead).
    pub fn event_condition(&self, key: &str) -> Option<Condition> {
        let on = |test| Condition::EventProperty { key: key.to_string(), test };
        let not = |c| Condition::Not(Box::new(c));
        let compare = |op| self.number.map(|number| on(ValueCondition::Compare { op, number }));
        match self.operator {
            Operator::IsSet => Some(on(ValueCondition::IsSet)),
            Operator::IsNotSet => Some(not(on(ValueCondition::IsSet))),
            Operator::Equals | Operator::In => Some(on(ValueCondition::EqualsAny(self.values.clone()))),
            Operator::NotEquals | Operator::NotIn => Some(not(on(ValueCondition::EqualsAny(self.values.clone())))),
            Operator::Gt => compare(NumberOp::Gt),
            Operator::Gte => compare(NumberOp::Gte),
            Operator::Lt => compare(NumberOp::Lt),
            Operator::Lte => compare(NumberOp::Lte),
            Operator::Contains => Some(on(ValueCondition::Contains(self.lowered.clone()))),
            Operator::NotContains => Some(not(on(ValueCondition::Contains(self.lowered.clone())))),
            Operator::Regex | Operator::NotRegex => None,
        }
    }

    /// Whether this is a regex test (`regex`, `not_regex`).
    pub fn is_regex(&self) -> bool {
        self.regex.is_some()
    }

    /// Whether a text matches this test's regex (false for tests of other kinds).
    pub fn regex_matches(&self, text: &str) -> bool {
        self.regex.as_ref().is_some_and(|r| r.is_match(text))
    }

    pub fn negated(&self) -> bool {
        matches!(self.operator, Operator::NotEquals | Operator::NotIn | Operator::NotContains | Operator::NotRegex)
    }

    fn compare(&self, v: Option<&Value>, op: fn(f64, f64) -> bool) -> bool {
        match (v.and_then(number_of), self.number) {
            (Some(a), Some(b)) => op(a, b),
            _ => false,
        }
    }
}

pub use troupe_store::value::{equal, number_of, text_of};

/// The top `limit` values by weight; the rest map to [`OTHER`].
pub fn top_values(weights: HashMap<Option<String>, u64>, limit: usize) -> HashSet<Option<String>> {
    let mut ranked: Vec<_> = weights.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    ranked.into_iter().take(limit).map(|(v, _)| v).collect()
}

/// The label of the values beyond a breakdown's limit.
pub const OTHER: &str = "$other";

pub fn breakdown_limit(b: &Breakdown) -> usize {
    b.limit.unwrap_or(10).max(1)
}

/// Maps an event's raw breakdown values to the kept ones (or [`OTHER`]).
pub fn keep(kept: &HashSet<Option<String>>, v: Option<String>) -> Option<String> {
    if kept.contains(&v) {
        v
    } else {
        Some(OTHER.to_string())
    }
}
