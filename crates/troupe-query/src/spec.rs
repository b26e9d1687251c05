//! The insight query language, as JSON: what the API, the CLI and the dashboard send.
//! docs/insights.md describes every field with examples.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// One insight question.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Insight {
    Trends(TrendsQuery),
    Funnel(FunnelQuery),
    Retention(RetentionQuery),
    Stickiness(StickinessQuery),
    Lifecycle(LifecycleQuery),
    Paths(PathsQuery),
}

impl Insight {
    pub fn common(&self) -> &Common {
        match self {
            Insight::Trends(q) => &q.common,
            Insight::Funnel(q) => &q.common,
            Insight::Retention(q) => &q.common,
            Insight::Stickiness(q) => &q.common,
            Insight::Lifecycle(q) => &q.common,
            Insight::Paths(q) => &q.common,
        }
    }

    pub fn common_mut(&mut self) -> &mut Common {
        match self {
            Insight::Trends(q) => &mut q.common,
            Insight::Funnel(q) => &mut q.common,
            Insight::Retention(q) => &mut q.common,
            Insight::Stickiness(q) => &mut q.common,
            Insight::Lifecycle(q) => &mut q.common,
            Insight::Paths(q) => &mut q.common,
        }
    }
}

/// Settings every kind takes.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Common {
    #[serde(default)]
    pub count_by: CountBy,
    #[serde(default)]
    pub date_range: DateRange,
    #[serde(default)]
    pub interval: Interval,
    /// IANA name, e.g. `Europe/Paris`; UTC when absent.
    #[serde(default)]
    pub timezone: Option<String>,
    #[serde(default)]
    pub week_start: WeekStart,
    /// Applied to every event the insight reads.
    #[serde(default)]
    pub filters: Option<Filter>,
    #[serde(default)]
    pub breakdown: Option<Breakdown>,
}

/// Whom an insight counts: distinct persons, or distinct groups of one type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub enum CountBy {
    #[default]
    Users,
    Group {
        group_type: String,
    },
}

impl Serialize for CountBy {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CountBy::Users => s.serialize_str("users"),
            CountBy::Group { group_type } => serde_json::json!({ "group_type": group_type }).serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for CountBy {
    /// `"users"` or `{"group_type": "company"}`.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(s) if s == "users" => Ok(CountBy::Users),
            Value::Object(o) => match o.get("group_type") {
                Some(Value::String(t)) if !t.is_empty() => Ok(CountBy::Group { group_type: t.clone() }),
                _ => Err(serde::de::Error::custom("count_by object needs a \"group_type\" string")),
            },
            other => Err(serde::de::Error::custom(format!(
                "count_by must be \"users\" or {{\"group_type\": \"…\"}}, got {other}"
            ))),
        }
    }
}

/// `from`/`to`: a date (`2026-03-01`, the whole day in the timezone), a date-time (RFC 3339),
/// relative (`-7d`, `-24h`, `-4w`, `-3m`, `-1y`), `today`, `yesterday`; `to` also `now`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DateRange {
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Hour,
    #[default]
    Day,
    Week,
    Month,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeekStart {
    #[default]
    Sunday,
    Monday,
}

/// An event (or every event, when `event` is absent) with its own filters.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EventSelector {
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub filters: Option<Filter>,
}

/// Filters: conditions combined with `and`, `or` and `not`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Filter {
    And { and: Vec<Filter> },
    Or { or: Vec<Filter> },
    Not { not: Box<Filter> },
    Property(PropertyCondition),
    Cohort { cohort: CohortRef },
}

/// The key that reads a group's own key (`{"type": "group", "group_type": "company", "key":
/// "$group_key", "value": "acme"}`: events attributed to acme), as PostHog's `$group_key`.
pub const GROUP_KEY: &str = "$group_key";

/// Where a property is read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PropertySource {
    #[default]
    Event,
    Person,
    /// The current properties of the event's group(s) of this type.
    Group {
        group_type: String,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PropertyCondition {
    #[serde(flatten)]
    pub source: PropertySource,
    pub key: String,
    #[serde(default)]
    pub operator: Operator,
    #[serde(default)]
    pub value: Value,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operator {
    /// Equal to the value, or to any value of a list.
    #[default]
    Equals,
    NotEquals,
    /// Case-insensitive substring.
    Contains,
    NotContains,
    Regex,
    NotRegex,
    IsSet,
    IsNotSet,
    Gt,
    Gte,
    Lt,
    Lte,
    In,
    NotIn,
}

/// A saved cohort by id, or one written inline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CohortRef {
    Saved(String),
    Inline(Box<CohortDefinition>),
}

impl<'de> Deserialize<'de> for Filter {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(d)?;
        Filter::from_value(value).map_err(serde::de::Error::custom)
    }
}

impl Filter {
    /// Parsed by hand so a mistake gets a message that names it.
    fn from_value(value: Value) -> Result<Filter, String> {
        let Value::Object(mut o) = value else {
            return Err(format!("a filter must be an object, got {value}"));
        };
        if let Some(items) = o.remove("and") {
            return Ok(Filter::And { and: filter_list("and", items)? });
        }
        if let Some(items) = o.remove("or") {
            return Ok(Filter::Or { or: filter_list("or", items)? });
        }
        if let Some(inner) = o.remove("not") {
            return Ok(Filter::Not { not: Box::new(Filter::from_value(inner)?) });
        }
        if let Some(cohort) = o.remove("cohort") {
            let cohort = serde_json::from_value(cohort).map_err(|e| format!("cohort filter: {e}"))?;
            return Ok(Filter::Cohort { cohort });
        }
        if o.contains_key("key") {
            let condition = serde_json::from_value(Value::Object(o))
                .map_err(|e| format!("property filter: {e} (type is event, person or group)"))?;
            return Ok(Filter::Property(condition));
        }
        Err("a filter is {\"and\": […]}, {\"or\": […]}, {\"not\": …}, {\"cohort\": …} \
             or {\"type\": \"event|person|group\", \"key\": …, \"operator\": …, \"value\": …}"
            .to_string())
    }
}

fn filter_list(name: &str, items: Value) -> Result<Vec<Filter>, String> {
    match items {
        Value::Array(items) => items.into_iter().map(Filter::from_value).collect(),
        other => Err(format!("\"{name}\" takes a list of filters, got {other}")),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Breakdown {
    #[serde(flatten)]
    pub source: PropertySource,
    pub key: String,
    /// The top values kept (by events); the rest are summed as "other". Default 10.
    #[serde(default)]
    pub limit: Option<usize>,
}

// ---- Trends ----

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrendsQuery {
    #[serde(flatten)]
    pub common: Common,
    pub series: Vec<TrendSeries>,
    /// Arithmetic over the series named A, B, C… in order, e.g. `A / B`.
    #[serde(default)]
    pub formula: Option<String>,
    /// Also answer for the period just before the range.
    #[serde(default)]
    pub compare: bool,
    /// Also list the actors behind one data point.
    #[serde(default)]
    pub actors: Option<TrendActors>,
    /// Each bucket shows the total up to it: a running sum, or for `unique` the distinct actors
    /// from the range's start.
    #[serde(default)]
    pub cumulative: bool,
}

/// A data point of the current period: series index, bucket index, breakdown value.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrendActors {
    pub series: usize,
    pub bucket: usize,
    #[serde(default)]
    pub breakdown_value: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrendSeries {
    #[serde(flatten)]
    pub selector: EventSelector,
    #[serde(default)]
    pub math: Math,
    /// The numeric property for sum/avg/min/max/median/p90.
    #[serde(default)]
    pub property: Option<String>,
    /// Where `property` is read: the event (default), or the current profile of the event's
    /// person or groups of a type, each actor counted once per bucket ("the sum of `mrr` over
    /// the companies that did X").
    #[serde(default)]
    pub property_source: PropertySource,
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Math {
    /// Events.
    #[default]
    Total,
    /// Distinct actors (users, or groups of the count-by type).
    Unique,
    Sum,
    Avg,
    Min,
    Max,
    Median,
    P90,
    /// Distinct actors active in the 7 days ending with each (daily) bucket.
    WeeklyActive,
    /// Distinct actors active in the 30 days ending with each (daily) bucket.
    MonthlyActive,
    /// Events per actor, averaged over the actors active in the bucket (and so on).
    AvgPerActor,
    MinPerActor,
    MaxPerActor,
    MedianPerActor,
    P90PerActor,
}

// ---- Funnels ----

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunnelQuery {
    #[serde(flatten)]
    pub common: Common,
    pub steps: Vec<FunnelStepSpec>,
    #[serde(default)]
    pub order: FunnelOrder,
    /// From the first step's time, inclusive. Default 14 days (PostHog's).
    #[serde(default)]
    pub window: Option<Window>,
    #[serde(default)]
    pub exclusions: Vec<Exclusion>,
    /// Also list the actors who converted to, or dropped at, a step.
    #[serde(default)]
    pub actors: Option<FunnelActors>,
    /// Which of a path's events gives the breakdown value an actor counts under.
    #[serde(default)]
    pub breakdown_attribution: Attribution,
    /// Also answer the conversion rate per interval of entry.
    #[serde(default, deserialize_with = "span_or_true")]
    pub conversion_over_time: Option<StepSpan>,
    /// Also answer a histogram of the time taken between two steps.
    #[serde(default)]
    pub time_to_convert: Option<TimeToConvert>,
}

/// A funnel step: an event selector, which may be optional (not the first step).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FunnelStepSpec {
    #[serde(flatten)]
    pub selector: EventSelector,
    /// Actors may skip this step and still go on to the next ones.
    #[serde(default)]
    pub optional: bool,
}

impl From<EventSelector> for FunnelStepSpec {
    fn from(selector: EventSelector) -> Self {
        FunnelStepSpec { selector, optional: false }
    }
}

/// `first_touch` (the entry event's value, the default), `last_touch` (the value on the last
/// step reached), `all_steps` (every step's event must have the value; an actor may count under
/// several), or `{"step": k}` (the value on step k's event).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Attribution {
    Named(AttributionKind),
    Step { step: usize },
}

impl<'de> Deserialize<'de> for Attribution {
    /// By hand, so that a mistake is told what the choices are (an untagged enum's error does
    /// not say).
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Step {
            step: usize,
        }
        let value = Value::deserialize(d)?;
        let named = serde_json::from_value::<AttributionKind>(value.clone()).map(Attribution::Named);
        let step = || serde_json::from_value::<Step>(value.clone()).map(|s| Attribution::Step { step: s.step });
        named.or_else(|_| step()).map_err(|_| {
            serde::de::Error::custom(format!(
                "breakdown_attribution is \"first_touch\", \"last_touch\", \"all_steps\" or {{\"step\": k}}, got {value}"
            ))
        })
    }
}

impl Default for Attribution {
    fn default() -> Self {
        Attribution::Named(AttributionKind::FirstTouch)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttributionKind {
    FirstTouch,
    LastTouch,
    AllSteps,
}

/// From one step to a later one (0-based); the first and the last step when absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepSpan {
    #[serde(default)]
    pub from_step: Option<usize>,
    #[serde(default)]
    pub to_step: Option<usize>,
}

/// A [`StepSpan`], or `true` for the whole funnel.
fn span_or_true<'de, D: Deserializer<'de>>(d: D) -> Result<Option<StepSpan>, D::Error> {
    match Value::deserialize(d)? {
        Value::Bool(true) => Ok(Some(StepSpan::default())),
        Value::Null => Ok(None),
        value @ Value::Object(_) => serde_json::from_value(value).map(Some).map_err(serde::de::Error::custom),
        other => Err(serde::de::Error::custom(format!(
            "expected true or {{\"from_step\": …, \"to_step\": …}}, got {other} (leave the field out for none)"
        ))),
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeToConvert {
    #[serde(flatten)]
    pub span: StepSpan,
    /// Number of bins; by default Sturges' rule on the number of actors (at most 30).
    #[serde(default)]
    pub bins: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FunnelOrder {
    #[default]
    Ordered,
    Strict,
    Unordered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    pub value: u32,
    pub unit: WindowUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowUnit {
    Second,
    Minute,
    Hour,
    Day,
    Week,
    Month,
}

/// Actors who do this event between two steps of their path are taken out of the funnel.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Exclusion {
    #[serde(flatten)]
    pub selector: EventSelector,
    /// 0-based step indexes.
    pub from_step: usize,
    pub to_step: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FunnelActors {
    /// 0-based step index.
    pub step: usize,
    /// Converted: reached this step. Dropped: reached the step before, not this one.
    #[serde(default)]
    pub status: ActorStatus,
    /// Only actors of this breakdown value.
    #[serde(default)]
    pub breakdown_value: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorStatus {
    #[default]
    Converted,
    Dropped,
}

// ---- Retention ----

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetentionQuery {
    #[serde(flatten)]
    pub common: Common,
    /// The event that puts an actor in a cohort.
    pub start: EventSelector,
    /// The event that counts as coming back.
    #[serde(rename = "return")]
    pub return_event: EventSelector,
    #[serde(default)]
    pub cohorting: Cohorting,
    /// Period k counts the actors who came back in period k *or later* ("on or after").
    #[serde(default)]
    pub cumulative: bool,
    /// Coming back takes at least this many return events in the period (default 1).
    #[serde(default)]
    pub min_occurrences: Option<u32>,
    /// Also list the actors of one cell.
    #[serde(default)]
    pub actors: Option<RetentionActors>,
}

/// A cell of the triangle: the cohort's index (0 is the range's first interval) and the period.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetentionActors {
    pub cohort: usize,
    pub period: usize,
    #[serde(default)]
    pub breakdown_value: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cohorting {
    /// The cohort is the interval of the actor's first-ever start event.
    #[default]
    FirstTime,
    /// The actor is in every interval's cohort in which it did the start event.
    Recurring,
}

// ---- Stickiness and lifecycle ----

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StickinessQuery {
    #[serde(flatten)]
    pub common: Common,
    pub series: Vec<EventSelector>,
    /// Count actors active on N *or more* intervals instead of exactly N.
    #[serde(default)]
    pub cumulative: bool,
    /// An interval counts for an actor when its events there pass this (default: at least 1).
    #[serde(default)]
    pub criterion: Option<StickyCriterion>,
    /// Also list the actors of one bar.
    #[serde(default)]
    pub actors: Option<StickinessActors>,
}

/// The actors of a series' line active on `intervals` intervals (that many or more when the
/// question is cumulative).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StickinessActors {
    #[serde(default)]
    pub series: usize,
    pub intervals: usize,
    #[serde(default)]
    pub breakdown_value: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Per interval: at least (`gte`), exactly (`exact`) or at most (`lte`) `value` events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StickyCriterion {
    pub operator: StickyOperator,
    pub value: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StickyOperator {
    Gte,
    Exact,
    Lte,
}

impl StickyCriterion {
    /// Whether an interval with `events` events (at least one) counts.
    pub fn passes(&self, events: u64) -> bool {
        match self.operator {
            StickyOperator::Gte => events >= self.value,
            StickyOperator::Exact => events == self.value,
            StickyOperator::Lte => events <= self.value,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifecycleQuery {
    #[serde(flatten)]
    pub common: Common,
    pub event: EventSelector,
    /// What makes an actor *new*: its first event (default) or its profile's creation time.
    #[serde(default)]
    pub new_by: NewBy,
    /// Also list the actors of one status in one interval.
    #[serde(default)]
    pub actors: Option<LifecycleActors>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LifecycleActors {
    /// 0-based interval of the range.
    pub bucket: usize,
    pub status: LifecycleStatus,
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifecycleStatus {
    New,
    Returning,
    Resurrecting,
    Dormant,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NewBy {
    #[default]
    FirstEvent,
    CreatedAt,
}

// ---- Paths ----

/// The most common sequences of events, from a start event, up to an end event, or from each
/// actor's first event in the range.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathsQuery {
    #[serde(flatten)]
    pub common: Common,
    /// Paths begin at each actor's first such event in the range.
    #[serde(default)]
    pub start: Option<EventSelector>,
    /// Paths lead up to each actor's first such event in the range.
    #[serde(default)]
    pub end: Option<EventSelector>,
    /// Steps per path, the start or end event included: 2 to 20, default 5.
    #[serde(default)]
    pub step_limit: Option<usize>,
    /// Only events of these names make up paths (default: every event).
    #[serde(default)]
    pub include: Vec<String>,
    /// Events of these names are left out of paths.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Event names rewritten before paths are made: the first rule whose regex matches gives
    /// the step its label.
    #[serde(default)]
    pub cleaning: Vec<CleaningRule>,
    /// Edges (and sequences) kept, most actors first: 1 to 1000, default 50.
    #[serde(default)]
    pub edge_limit: Option<usize>,
    /// Also list the actors who went along one edge (or reached one node).
    #[serde(default)]
    pub actors: Option<PathActors>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleaningRule {
    pub regex: String,
    pub label: String,
}

/// The edge from `source` at `step` (1-based) to `target` at `step + 1`; without `target`, the
/// node `source` at `step`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PathActors {
    pub step: usize,
    pub source: String,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub limit: Option<usize>,
}

// ---- Cohorts ----

/// A set of users or of groups of one type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CohortDefinition {
    #[serde(default)]
    pub name: Option<String>,
    /// Users, or groups of a type.
    #[serde(default)]
    pub count_by: CountBy,
    #[serde(flatten)]
    pub rule: CohortRule,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CohortRule {
    /// Uploaded ids: distinct ids or person ids for users, keys for groups.
    Static { ids: Vec<String> },
    /// Actors meeting all (or any) of the criteria, evaluated when the insight runs.
    Dynamic {
        #[serde(default, rename = "match")]
        match_mode: Match,
        criteria: Vec<Criterion>,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    #[default]
    All,
    Any,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Criterion {
    /// Did the event at least `at_least` times in the last `days` days (up to now).
    PerformedEvent {
        event: Option<String>,
        #[serde(default)]
        filters: Option<Filter>,
        #[serde(default = "one")]
        at_least: u64,
        days: u32,
    },
    /// User cohorts: persons currently members of a group of `group_type` whose property
    /// passes the test (`key` [`GROUP_KEY`] tests the group's key): "users whose company is on
    /// the enterprise plan now".
    GroupProperty {
        group_type: String,
        key: String,
        #[serde(default)]
        operator: Operator,
        #[serde(default)]
        value: Value,
    },
    /// A current property of the person (or of the group, for group cohorts).
    Property {
        key: String,
        #[serde(default)]
        operator: Operator,
        #[serde(default)]
        value: Value,
    },
}

fn one() -> u64 {
    1
}

// ---- Reading a question strictly ----

/// Why a question (or a cohort) could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    /// A field the spec does not have, by its path (`series[0].mathh`): a typo or an option
    /// troupe does not offer. Ignoring it would answer a different question than was asked.
    #[error("unknown field `{0}`: not part of the question (docs/insights.md lists every field)")]
    UnknownField(String),
    /// The value does not fit the spec (serde's message names the field).
    #[error("{0}")]
    Invalid(String),
}

/// Read a question (or any spec type) from JSON, refusing fields it does not have. The spec's
/// types share fields through `#[serde(flatten)]` and internal tags, where serde cannot refuse
/// unknown fields itself; so the value read is written back out and every field of the input
/// must be found again at the same place.
pub fn from_json<T: serde::de::DeserializeOwned + Serialize>(value: Value) -> Result<T, SpecError> {
    let read: T = serde_json::from_value(value.clone()).map_err(|e| SpecError::Invalid(e.to_string()))?;
    let written = serde_json::to_value(&read).map_err(|e| SpecError::Invalid(e.to_string()))?;
    match unknown_field(&value, &written, "") {
        Some(path) => Err(SpecError::UnknownField(path)),
        None => Ok(read),
    }
}

/// The first field of `input` that `written` does not have at the same place.
fn unknown_field(input: &Value, written: &Value, path: &str) -> Option<String> {
    match (input, written) {
        (Value::Object(given), Value::Object(kept)) => given.iter().find_map(|(key, value)| {
            let here = if path.is_empty() { key.clone() } else { format!("{path}.{key}") };
            match kept.get(key) {
                None => Some(here),
                Some(kept) => unknown_field(value, kept, &here),
            }
        }),
        (Value::Array(given), Value::Array(kept)) => {
            given.iter().zip(kept).enumerate().find_map(|(i, (g, k))| unknown_field(g, k, &format!("{path}[{i}]")))
        }
        _ => None,
    }
}

#[cfg(test)]
mod strict_tests {
    #[test]
    fn funnel_options_name_their_choices() {
        let funnel = |extra: Value| {
            let mut q = json!({"kind": "funnel", "steps": [{"event": "a"}, {"event": "b"}]});
            for (k, v) in extra.as_object().into_iter().flatten() {
                q[k] = v.clone();
            }
            from_json::<Insight>(q)
        };
        let Err(SpecError::Invalid(m)) = funnel(json!({"breakdown_attribution": "middle_touch"})) else {
            panic!("middle_touch is refused")
        };
        assert!(m.contains("first_touch") && m.contains("middle_touch"), "{m}");
        let Err(SpecError::Invalid(m)) = funnel(json!({"conversion_over_time": false})) else {
            panic!("false is refused")
        };
        assert!(m.contains("leave the field out"), "{m}");
        for ok in [
            json!({"breakdown_attribution": {"step": 1}, "conversion_over_time": true}),
            json!({"breakdown_attribution": "all_steps", "conversion_over_time": {"to_step": 1}, "time_to_convert": {}}),
        ] {
            assert!(funnel(ok.clone()).is_ok(), "{ok}: {:?}", funnel(ok.clone()));
        }
    }

    use serde_json::json;

    use super::*;

    #[test]
    fn unknown_fields_are_named_by_their_path_everywhere() {
        let ok = json!({"kind": "trends", "series": [{"event": "a", "math": "unique"}], "date_range": {"from": "-7d"},
                        "filters": {"and": [{"type": "event", "key": "plan", "operator": "equals", "value": {"x": 1}}]}});
        let read = from_json::<Insight>(ok.clone());
        assert!(
            read.is_ok(),
            "{read:?} {}",
            serde_json::to_value(serde_json::from_value::<Insight>(ok).ok()).unwrap_or_default()
        );
        for (question, path) in [
            (json!({"kind": "trends", "series": [{"event": "a"}], "cohortng": 1}), "cohortng"),
            (json!({"kind": "trends", "series": [{"event": "a", "mathh": "sum"}]}), "series[0].mathh"),
            (
                json!({"kind": "funnel", "steps": [{"event": "a"}, {"event": "b"}], "window": {"value": 1, "unit": "day", "x": 0}}),
                "window.x",
            ),
            (
                json!({"kind": "retention", "start": {"event": "a"}, "return": {"event": "b"}, "cumulatve": true}),
                "cumulatve",
            ),
            (json!({"kind": "trends", "series": [{"event": "a"}], "filters": {"and": [], "or": []}}), "filters.or"),
            (
                json!({"kind": "funnel", "steps": [{"event": "a", "optionel": true}, {"event": "b"}]}),
                "steps[0].optionel",
            ),
            (
                json!({"kind": "funnel", "steps": [{"event": "a"}, {"event": "b"}], "time_to_convert": {"bin": 3}}),
                "time_to_convert.bin",
            ),
            (
                json!({"kind": "trends", "series": [{"event": "a"}], "date_range": {"from": "-7d", "till": "x"}}),
                "date_range.till",
            ),
        ] {
            assert_eq!(
                from_json::<Insight>(question.clone()).map(|_| ()),
                Err(SpecError::UnknownField(path.into())),
                "{question}"
            );
        }
    }
}
