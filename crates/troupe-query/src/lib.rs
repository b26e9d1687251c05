//! Insights over the store: Trends, Funnels, Retention, Stickiness, Lifecycle, Paths, with Cohorts as
//! filters, each counted by users (persons after identity merges) or by groups of one type.
//!
//! Every kind reads one columnar [`troupe_store::EventScan`] and computes in Rust; the
//! semantics (boundaries, ties, DST) are written down in docs/insights.md and pinned by the
//! [`conformance`] suite, which every backend runs.

pub mod activity;
mod actor_set;
pub mod catalog;
mod cohorts;
pub mod conformance;
mod error;
mod frame;
mod funnels;
mod lifecycle;
mod parallel;
mod paths;
mod pushdown;
pub mod result;
mod retention;
pub mod spec;
mod splits;
mod stickiness;
pub mod time;
mod trends;

use chrono::{DateTime, Utc};
use std::sync::Arc;
use troupe_core::ProjectId;

use rustc_hash::FxHashMap as HashMap;
use troupe_store::aggregate::ActorKind;
use troupe_store::{Actor, Store};

pub use cohorts::COHORT_KIND;
pub use error::QueryError;
pub use result::InsightResult;
pub use spec::Insight;

use frame::{Frame, Needs};
use time::{Buckets, Calendar};

/// What a query runs against.
pub struct Ctx<'a> {
    pub store: &'a dyn Store,
    pub project: ProjectId,
    /// "Now" for relative ranges and cohorts' "last N days".
    pub now: DateTime<Utc>,
    /// Profiles the backend gave during this question, each kind read once (see
    /// `pushdown::profiles`).
    profiles: ProfileCache,
    /// The project's group type names, read once per question.
    group_types: tokio::sync::OnceCell<Vec<String>>,
    /// Persons of synthetic distinct ids ([`troupe_core::SYNTHETIC_DISTINCT_IDS`]: a server SDK's
    /// `server_global`), by person id: a question counting users leaves them out.
    synthetic: rustc_hash::FxHashSet<String>,
}

type ProfileCache = std::sync::Mutex<HashMap<ActorKind, Option<Arc<Vec<Actor>>>>>;

impl Ctx<'_> {
    fn cached_profiles(&self, actor: &ActorKind) -> Option<Option<Arc<Vec<Actor>>>> {
        self.profiles.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).get(actor).cloned()
    }

    fn cache_profiles(&self, actor: ActorKind, profiles: Option<Arc<Vec<Actor>>>) {
        self.profiles.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).insert(actor, profiles);
    }
}

/// Answer one insight question.
pub async fn run(
    store: &dyn Store,
    project: ProjectId,
    insight: &Insight,
    now: DateTime<Utc>,
) -> Result<InsightResult, QueryError> {
    let synthetic = match insight.common().count_by {
        spec::CountBy::Users => synthetic_persons(store, project).await?,
        spec::CountBy::Group { .. } => Default::default(),
    };
    let ctx =
        Ctx { store, project, now, profiles: ProfileCache::default(), group_types: Default::default(), synthetic };
    let started = std::time::Instant::now();
    let result = match insight {
        Insight::Trends(q) => InsightResult::Trends(trends::run(&ctx, q).await?),
        Insight::Funnel(q) => InsightResult::Funnel(funnels::run(&ctx, q).await?),
        Insight::Retention(q) => InsightResult::Retention(retention::run(&ctx, q).await?),
        Insight::Stickiness(q) => InsightResult::Stickiness(stickiness::run(&ctx, q).await?),
        Insight::Lifecycle(q) => InsightResult::Lifecycle(lifecycle::run(&ctx, q).await?),
        Insight::Paths(q) => InsightResult::Paths(paths::run(&ctx, q).await?),
    };
    tracing::debug!(ms = started.elapsed().as_secs_f64() * 1e3, "answered");
    Ok(result)
}

/// Every member of a cohort (saved or inline), sorted by key: users with their distinct ids,
/// or groups of the cohort's type. Dynamic criteria are evaluated as of `now`.
pub async fn cohort_members(
    store: &dyn Store,
    project: ProjectId,
    cohort: &spec::CohortRef,
    now: DateTime<Utc>,
) -> Result<(spec::CountBy, Vec<Actor>), QueryError> {
    let ctx = Ctx {
        store,
        project,
        now,
        profiles: ProfileCache::default(),
        group_types: Default::default(),
        synthetic: Default::default(),
    };
    cohorts::members(&ctx, cohort).await
}

/// The persons behind the project's synthetic distinct ids, by person id (usually none).
async fn synthetic_persons(store: &dyn Store, project: ProjectId) -> Result<rustc_hash::FxHashSet<String>, QueryError> {
    let mut out = rustc_hash::FxHashSet::default();
    for id in troupe_core::SYNTHETIC_DISTINCT_IDS {
        if let Some(person) = store.person(project, id, 0).await? {
            out.insert(person.person.id);
        }
    }
    Ok(out)
}

/// The calendar, range and buckets of a query.
struct Setup {
    calendar: Calendar,
    buckets: Buckets,
    /// The date range in microseconds, `[from_us, to_us)`: the form every scan and backend
    /// request takes, and `in_range` checks it once per event.
    from_us: i64,
    to_us: i64,
}

impl Setup {
    fn new(common: &spec::Common, now: DateTime<Utc>) -> Result<Self, QueryError> {
        let calendar = Calendar::new(common.timezone.as_deref(), common.interval, common.week_start)?;
        let range = time::resolve(&common.date_range, &calendar, now)?;
        let buckets = calendar.buckets(range.from, range.to);
        let (from_us, to_us) = (range.from.timestamp_micros(), range.to.timestamp_micros());
        Ok(Setup { calendar, buckets, from_us, to_us })
    }

    fn in_range(&self, ts: i64) -> bool {
        ts >= self.from_us && ts < self.to_us
    }
}

/// Scan what `needs` asks for, after checking the group types it names exist.
async fn scan(ctx: &Ctx<'_>, needs: &Needs, from: Option<i64>, to: Option<i64>) -> Result<Frame, QueryError> {
    check_group_types(ctx, &needs.group_types).await?;
    let started = std::time::Instant::now();
    let scan = ctx.store.scan(ctx.project, needs.request(from, to)).await?;
    // RUST_LOG=troupe_query=debug: how a question's time splits between the store and here.
    tracing::debug!(events = scan.len(), ms = started.elapsed().as_secs_f64() * 1e3, "scanned");
    let mut frame = Frame::new(scan);
    frame.leave_out_persons(&ctx.synthetic);
    Ok(frame)
}

/// A question naming a group type the project does not have is refused, saying which it has.
async fn check_group_types<'a>(
    ctx: &Ctx<'_>,
    group_types: impl IntoIterator<Item = &'a String>,
) -> Result<(), QueryError> {
    let mut group_types = group_types.into_iter().peekable();
    if group_types.peek().is_none() {
        return Ok(());
    }
    let known = ctx.group_types.get_or_try_init(|| ctx.store.group_type_names(ctx.project)).await?;
    if let Some(unknown) = group_types.find(|t| !known.contains(t)) {
        return Err(QueryError::invalid(format!(
            "unknown group type {unknown:?} (this project has: {})",
            if known.is_empty() { "none yet".to_string() } else { known.join(", ") }
        )));
    }
    Ok(())
}
