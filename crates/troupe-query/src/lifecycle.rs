//! Lifecycle: per interval, the actors who are new, returning, resurrecting or dormant.
//!
//! An actor is *new* in the interval holding its first event of any kind, ever (for a person
//! that is its creation time, which troupe moves back to its earliest event; for a group, its
//! first attributed event), or with `new_by: created_at` its profile's creation time (PostHog's
//! rule). Active = did the chosen event in the interval.

use rustc_hash::FxHashMap as HashMap;

use std::sync::Arc;

use troupe_store::aggregate::EventTest;
use troupe_store::Actor;

use crate::cohorts::{resolve_all, ResolvedCohort};
use crate::error::QueryError;
use crate::frame::Needs;
use crate::pushdown::{self, KeyMap};
use crate::result::LifecycleResult;
use crate::spec::{LifecycleQuery, LifecycleStatus, NewBy};
use crate::time::Buckets;
use crate::{scan, Ctx, Setup};

struct Activity {
    /// The interval of the range holding the actor's first event ever, if it is in the range.
    first_seen: Option<usize>,
    /// Index 0 is the interval before the range, k + 1 the range's interval k.
    active: Vec<bool>,
    /// Who, when the question lists actors.
    actor: Option<Actor>,
}

pub async fn run(ctx: &Ctx<'_>, q: &LifecycleQuery) -> Result<LifecycleResult, QueryError> {
    if q.common.breakdown.is_some() {
        return Err(QueryError::invalid("lifecycle takes no breakdown (its four statuses are the breakdown)"));
    }
    let setup = Setup::new(&q.common, ctx.now)?;
    let filters = q.common.filters.iter().chain(q.event.filters.as_ref());
    let cohorts = resolve_all(ctx, filters).await?;
    let buckets = &setup.buckets;
    let n = buckets.len();
    let mut bounds = vec![setup.calendar.previous(crate::time::from_micros(buckets.start())).timestamp_micros()];
    bounds.extend(&buckets.bounds);
    let extended = crate::time::Buckets { bounds, labels: vec![String::new(); n + 1] };
    if let Some(request) = &q.actors {
        if request.bucket >= n {
            return Err(QueryError::invalid(format!("actors.bucket {} is past the last bucket", request.bucket)));
        }
    }
    // Creation times are in profiles, which the backend's patterns do not carry; nor do they
    // say who.
    let pushed = match (q.new_by, &q.actors) {
        (NewBy::FirstEvent, None) => pushed_activity(ctx, q, &setup, &extended, &cohorts).await?,
        _ => None,
    };
    let actors = match pushed {
        Some(actors) => actors,
        None => scanned_activity(ctx, q, &setup, &extended, &cohorts).await?,
    };
    let mut result = LifecycleResult {
        buckets: buckets.labels.clone(),
        new: vec![0; n],
        returning: vec![0; n],
        resurrecting: vec![0; n],
        dormant: vec![0; n],
        actors: None,
    };
    let mut listed = Vec::new();
    for (activity, weight) in &actors {
        let weight = *weight;
        for k in 0..n {
            let (before, now) = (activity.active[k], activity.active[k + 1]);
            let first_here = activity.first_seen == Some(k);
            let status = match (before, now) {
                (_, true) if first_here => LifecycleStatus::New,
                (true, true) => LifecycleStatus::Returning,
                (false, true) => LifecycleStatus::Resurrecting,
                (true, false) => LifecycleStatus::Dormant,
                (false, false) => continue,
            };
            match status {
                LifecycleStatus::New => result.new[k] += weight,
                LifecycleStatus::Returning => result.returning[k] += weight,
                LifecycleStatus::Resurrecting => result.resurrecting[k] += weight,
                LifecycleStatus::Dormant => result.dormant[k] -= weight as i64,
            }
            if let (Some(request), Some(actor)) = (&q.actors, &activity.actor) {
                if request.bucket == k && request.status == status {
                    listed.push(actor.clone());
                }
            }
        }
    }
    if let Some(request) = &q.actors {
        listed.sort_by(|a, b| a.key.cmp(&b.key));
        listed.truncate(request.limit.unwrap_or(100));
        result.actors = Some(listed);
    }
    Ok(result)
}

/// Activities with how many actors share each, from the backend's activity patterns.
async fn pushed_activity(
    ctx: &Ctx<'_>,
    q: &LifecycleQuery,
    setup: &Setup,
    extended: &Buckets,
    cohorts: &HashMap<String, Arc<ResolvedCohort>>,
) -> Result<Option<Vec<(Activity, u64)>>, QueryError> {
    let periods = pushdown::periods(&setup.calendar);
    let Some(tests) = pushdown::tests(ctx, cohorts, &q.common, &[&q.event]).await? else { return Ok(None) };
    let first = Some(EventTest::any());
    let range = (extended.start(), setup.to_us);
    let Some(patterns) = pushdown::patterns(ctx, &q.common.count_by, periods, tests, first, range, None).await? else {
        return Ok(None);
    };
    let (keys, range_keys) = (KeyMap::new(&periods, extended), KeyMap::new(&periods, &setup.buckets));
    let mut out = Vec::new();
    for p in patterns {
        let mut active = vec![false; extended.len()];
        for b in p.periods.first().into_iter().flatten().filter_map(|&k| keys.index(k)) {
            active[b] = true;
        }
        let first_seen = p.first.and_then(|(k, _)| range_keys.index(k));
        out.push((Activity { first_seen, active, actor: None }, p.actors));
    }
    Ok(Some(out))
}

async fn scanned_activity(
    ctx: &Ctx<'_>,
    q: &LifecycleQuery,
    setup: &Setup,
    extended: &Buckets,
    cohorts: &HashMap<String, Arc<ResolvedCohort>>,
) -> Result<Vec<(Activity, u64)>, QueryError> {
    let mut needs = Needs::new();
    needs.count_by(&q.common.count_by);
    needs.selector(&q.event, cohorts);
    if let Some(f) = &q.common.filters {
        needs.filter(f, cohorts);
    }
    // Every event ever, for each actor's first appearance.
    needs.all_events();
    if q.new_by == NewBy::CreatedAt || q.actors.is_some() {
        needs.actors_listed();
    }
    let frame = scan(ctx, &needs, None, Some(setup.to_us)).await?;
    let column = frame.column(&q.common.count_by);
    let matcher = frame.matcher(&q.event, q.common.filters.as_ref(), cohorts)?;
    // Actor → (first event ever, active intervals).
    let mut actors: HashMap<u32, (i64, Vec<bool>)> = HashMap::default();
    for i in 0..frame.len() {
        let ts = frame.scan.ts[i];
        let bucket = extended.index(ts).filter(|_| matcher.matches(&frame, i));
        for &a in frame.actors(i, column) {
            let (first, active) = actors.entry(a).or_insert_with(|| (ts, vec![false; extended.len()]));
            // The scan is unordered: keep the earliest.
            *first = (*first).min(ts);
            if let Some(b) = bucket {
                active[b] = true;
            }
        }
    }
    // Created: the profile's creation time; an actor without one (a group never given a
    // profile row) falls back to its first event.
    let created = |a: u32, first: i64| match q.new_by {
        NewBy::FirstEvent => first,
        NewBy::CreatedAt => frame.actor(column, a).and_then(|x| x.created_at).map_or(first, |t| t.timestamp_micros()),
    };
    Ok(actors
        .into_iter()
        .map(|(a, (first, active))| {
            let actor = q.actors.as_ref().and_then(|_| frame.actor(column, a).cloned());
            (Activity { first_seen: setup.buckets.index(created(a, first)), active, actor }, 1)
        })
        .collect())
}
