//! Insight answers, as the API returns them. Bucket labels are the local start of each period in
//! RFC 3339 with its offset; a breakdown value is the property's text, `null` when the property
//! is not set, and `"$other"` for the values beyond the breakdown's limit.

use serde::{Deserialize, Serialize};
use troupe_store::Actor;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum InsightResult {
    Trends(TrendsResult),
    Funnel(FunnelResult),
    Retention(RetentionResult),
    Stickiness(StickinessResult),
    Lifecycle(LifecycleResult),
    Paths(PathsResult),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendsResult {
    pub buckets: Vec<String>,
    pub series: Vec<TrendLine>,
    /// The actors behind the data point the query asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actors: Option<Vec<Actor>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendLine {
    pub label: String,
    /// Index of the query's series; `None` for the formula.
    pub series: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub formula: Option<String>,
    pub breakdown_value: Option<String>,
    /// `current` or `previous` when the query compares periods.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compare: Option<String>,
    /// The previous period's own bucket labels.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub buckets: Option<Vec<String>>,
    pub data: Vec<f64>,
    /// Over the whole range (distinct actors over the range for `unique`, not a sum of buckets).
    pub aggregated_value: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelResult {
    pub steps: Vec<FunnelStep>,
    /// Per breakdown value, when the query has a breakdown.
    pub breakdowns: Vec<FunnelBreakdown>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actors: Option<Vec<Actor>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversion_over_time: Option<ConversionOverTime>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_to_convert: Option<TimeToConvertResult>,
}

/// Per interval of entry into the funnel: the actors whose paths entered then and reached
/// `from_step`, and those of them who reached `to_step` (within the window).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversionOverTime {
    pub from_step: usize,
    pub to_step: usize,
    pub buckets: Vec<String>,
    /// One line without a breakdown, else one per breakdown value.
    pub lines: Vec<ConversionLine>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConversionLine {
    pub breakdown_value: Option<String>,
    pub entered: Vec<u64>,
    pub converted: Vec<u64>,
    /// `converted / entered` per bucket, 0–1 (0 when nobody entered).
    pub conversion_rate: Vec<f64>,
}

/// How long the actors who reached `to_step` took from `from_step`, in bins of equal width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeToConvertResult {
    pub from_step: usize,
    pub to_step: usize,
    pub bins: Vec<TimeBin>,
    pub average_seconds: Option<f64>,
    pub median_seconds: Option<f64>,
}

/// Actors who took from `from_seconds` (inclusive) to `to_seconds` (exclusive; inclusive for the
/// last bin).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TimeBin {
    pub from_seconds: f64,
    pub to_seconds: f64,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelBreakdown {
    pub breakdown_value: Option<String>,
    pub steps: Vec<FunnelStep>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunnelStep {
    pub index: usize,
    pub name: String,
    /// Counted among the actors who did it; skipping it does not stop a path.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub optional: bool,
    pub count: u64,
    /// Ratios in 0..=1.
    pub conversion_from_first: f64,
    pub conversion_from_previous: f64,
    /// Reached the previous step but not this one (for the step after an optional one, and for
    /// an optional step: the last required step before it stands for "previous").
    pub dropped: u64,
    /// From the previous step, over the actors who reached this one.
    pub median_seconds: Option<f64>,
    pub average_seconds: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionResult {
    pub buckets: Vec<String>,
    pub rows: Vec<RetentionRow>,
    /// Per breakdown value, the mean row over the cohorts.
    #[serde(default)]
    pub means: Vec<RetentionMean>,
    /// The actors of the cell the query asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actors: Option<Vec<Actor>>,
}

/// Per period, over the cohorts that reach it and are not empty: `count` and `size` summed,
/// `percentage` weighted by size (`count / size`), `simple_percentage` the plain mean of the
/// cohorts' percentages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionMean {
    pub breakdown_value: Option<String>,
    pub values: Vec<RetentionMeanCell>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionMeanCell {
    pub period: usize,
    /// Cohorts averaged (those reaching the period with at least one actor).
    pub cohorts: usize,
    pub size: u64,
    pub count: u64,
    pub percentage: f64,
    pub simple_percentage: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionRow {
    pub cohort: String,
    pub breakdown_value: Option<String>,
    pub size: u64,
    /// Period 0 is the cohort itself; period k counts the cohort's actors who did the return
    /// event k intervals later.
    pub values: Vec<RetentionCell>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RetentionCell {
    pub period: usize,
    pub count: u64,
    /// 0..=100.
    pub percentage: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StickinessResult {
    /// 1..=the number of intervals in the range.
    pub intervals: Vec<usize>,
    pub series: Vec<StickinessLine>,
    /// The actors of the bar the query asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actors: Option<Vec<Actor>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StickinessLine {
    pub label: String,
    pub series: usize,
    pub breakdown_value: Option<String>,
    /// `data[n - 1]`: actors active on exactly n intervals (n or more when cumulative).
    pub data: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LifecycleResult {
    pub buckets: Vec<String>,
    pub new: Vec<u64>,
    pub returning: Vec<u64>,
    pub resurrecting: Vec<u64>,
    /// Negative, as charts draw them below the axis.
    pub dormant: Vec<i64>,
    /// The actors of the status and interval the query asked about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actors: Option<Vec<Actor>>,
}

/// Paths as a Sankey diagram: steps are numbered from 1 along each path (with an `end` event,
/// so that the end event is at step `step_limit`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathsResult {
    /// Actors with a path (those who did the start or end event, when there is one).
    pub actors_with_paths: u64,
    /// Actors per step and event; `ended`: of them, those whose path stops there.
    pub nodes: Vec<PathNode>,
    /// Actors per transition, most first (at most `edge_limit`).
    pub edges: Vec<PathEdge>,
    /// Whole paths, most common first (at most `edge_limit`).
    pub sequences: Vec<PathSequence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actors: Option<Vec<Actor>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathNode {
    pub step: usize,
    pub name: String,
    pub actors: u64,
    pub ended: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathEdge {
    /// The source's step; the target is at `step + 1`.
    pub step: usize,
    pub source: String,
    pub target: String,
    pub actors: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PathSequence {
    pub steps: Vec<String>,
    pub actors: u64,
}
