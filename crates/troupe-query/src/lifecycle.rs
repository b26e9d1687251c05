//! Lifecycle: per interval, the actors who are new, returning, resurrecting or dormant.
//!
//! An actor is *new* in the interval holding its first event of any kind, ever (for a person
//! that is its creation time, which troupe moves back to its earliest event; for a group, its
//! first attributed event). Active = did the chosen event in the interval.

use rustc_hash::FxHashMap as HashMap;

use crate::cohorts::resolve_all;
use crate::error::QueryError;
use crate::frame::Needs;
use crate::result::LifecycleResult;
use crate::spec::LifecycleQuery;
use crate::{scan, Ctx, Setup};

#[derive(Default)]
struct Activity {
    first_seen: Option<i64>,
    /// Index 0 is the interval before the range, k + 1 the range's interval k.
    active: Vec<bool>,
}

pub async fn run(ctx: &Ctx<'_>, q: &LifecycleQuery) -> Result<LifecycleResult, QueryError> {
    if q.common.breakdown.is_some() {
        return Err(QueryError::invalid("lifecycle takes no breakdown (its four statuses are the breakdown)"));
    }
    let setup = Setup::new(&q.common, ctx.now)?;
    let filters = q.common.filters.iter().chain(q.event.filters.as_ref());
    let cohorts = resolve_all(ctx, filters).await?;
    let mut needs = Needs::new();
    needs.count_by(&q.common.count_by);
    needs.selector(&q.event, &cohorts);
    if let Some(f) = &q.common.filters {
        needs.filter(f, &cohorts);
    }
    // Every event ever, for each actor's first appearance.
    needs.all_events();
    let frame = scan(ctx, &needs, None, Some(setup.range.to.timestamp_micros())).await?;
    let column = frame.column(&q.common.count_by);
    let matcher = frame.matcher(&q.event, q.common.filters.as_ref(), &cohorts)?;

    let buckets = &setup.buckets;
    let n = buckets.len();
    let mut bounds = vec![setup.calendar.previous(crate::time::from_micros(buckets.start())).timestamp_micros()];
    bounds.extend(&buckets.bounds);
    let extended = crate::time::Buckets { bounds, labels: vec![String::new(); n + 1] };

    let mut actors: HashMap<u32, Activity> = HashMap::default();
    for i in 0..frame.len() {
        let ts = frame.scan.ts[i];
        let bucket = extended.index(ts).filter(|_| matcher.matches(&frame, i));
        for &a in frame.actors(i, column) {
            let activity = actors.entry(a).or_insert_with(|| Activity { first_seen: None, active: vec![false; n + 1] });
            // The scan is unordered: keep the earliest.
            activity.first_seen = Some(activity.first_seen.map_or(ts, |t| t.min(ts)));
            if let Some(b) = bucket {
                activity.active[b] = true;
            }
        }
    }
    let mut result = LifecycleResult {
        buckets: buckets.labels.clone(),
        new: vec![0; n],
        returning: vec![0; n],
        resurrecting: vec![0; n],
        dormant: vec![0; n],
    };
    for activity in actors.values() {
        for k in 0..n {
            let (before, now) = (activity.active[k], activity.active[k + 1]);
            let first_here = activity.first_seen.is_some_and(|t| buckets.index(t) == Some(k));
            match (before, now) {
                (_, true) if first_here => result.new[k] += 1,
                (true, true) => result.returning[k] += 1,
                (false, true) => result.resurrecting[k] += 1,
                (true, false) => result.dormant[k] -= 1,
                (false, false) => {}
            }
        }
    }
    Ok(result)
}
