//! Cohorts: sets of users or of groups of one type, static (uploaded ids) or dynamic (criteria
//! evaluated when the insight runs), used as filters.

use rustc_hash::{FxHashMap as HashMap, FxHashSet as HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use troupe_store::{Actor, GroupQuery, GroupRow, Page, PersonQuery, PersonRow, StoreError};

use crate::error::QueryError;
use crate::frame::{Frame, Needs, ValueTest};
use crate::pushdown;
use crate::spec::{
    CohortDefinition, CohortRef, CohortRule, CountBy, Criterion, EventSelector, Filter, Match, GROUP_KEY,
};
use crate::Ctx;

/// Saved cohorts are documents of this kind.
pub const COHORT_KIND: &str = "cohort";

/// Cohorts may name cohorts; deeper than this is taken for a cycle.
const MAX_DEPTH: usize = 5;

#[derive(Debug)]
pub struct ResolvedCohort {
    pub count_by: CountBy,
    members: Members,
}

#[derive(Debug)]
enum Members {
    /// Person ids or distinct ids (users), keys (groups).
    Ids(HashSet<String>),
    Property {
        key: String,
        test: ValueTest,
    },
    All(Vec<Members>),
    Any(Vec<Members>),
}

impl ResolvedCohort {
    pub fn contains(&self, actor: &Actor) -> bool {
        self.members.contains(actor)
    }

    /// Whether an actor no id list names and without a profile belongs (a property rule
    /// reads every property as not set).
    pub fn contains_unlisted(&self) -> bool {
        self.members.unlisted()
    }

    /// Every id the cohort's lists name: the actors besides profiled ones whose membership may
    /// differ from [`Self::contains_unlisted`].
    pub fn listed_ids(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.members.listed(&mut out);
        out
    }
}

impl Members {
    fn unlisted(&self) -> bool {
        match self {
            Members::Ids(_) => false,
            Members::Property { test, .. } => test.test(None),
            Members::All(items) => items.iter().all(Members::unlisted),
            Members::Any(items) => items.iter().any(Members::unlisted),
        }
    }

    fn listed<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Members::Ids(ids) => out.extend(ids.iter().map(String::as_str)),
            Members::Property { .. } => {}
            Members::All(items) | Members::Any(items) => items.iter().for_each(|m| m.listed(out)),
        }
    }

    fn contains(&self, actor: &Actor) -> bool {
        match self {
            Members::Ids(ids) => ids.contains(&actor.key) || actor.distinct_ids.iter().any(|d| ids.contains(d)),
            Members::Property { key, test } => test.test(actor.properties.get(key)),
            Members::All(items) => items.iter().all(|m| m.contains(actor)),
            Members::Any(items) => items.iter().any(|m| m.contains(actor)),
        }
    }
}

/// How a cohort reference is looked up once resolved.
pub fn cohort_key(r: &CohortRef) -> String {
    match r {
        CohortRef::Saved(id) => format!("saved:{id}"),
        CohortRef::Inline(d) => format!("inline:{}", serde_json::to_string(d).unwrap_or_default()),
    }
}

/// The cohort references inside some filters.
pub fn cohort_refs<'a>(filters: impl IntoIterator<Item = &'a Filter>) -> Vec<&'a CohortRef> {
    fn walk<'a>(f: &'a Filter, out: &mut Vec<&'a CohortRef>) {
        match f {
            Filter::And { and: items } | Filter::Or { or: items } => items.iter().for_each(|f| walk(f, out)),
            Filter::Not { not } => walk(not, out),
            Filter::Property(_) => {}
            Filter::Cohort { cohort } => out.push(cohort),
        }
    }
    let mut out = Vec::new();
    for f in filters {
        walk(f, &mut out);
    }
    out
}

/// Resolve every cohort the filters name.
pub async fn resolve_all<'a>(
    ctx: &Ctx<'_>,
    filters: impl IntoIterator<Item = &'a Filter>,
) -> Result<HashMap<String, Arc<ResolvedCohort>>, QueryError> {
    resolve_refs(ctx, cohort_refs(filters), 0).await
}

async fn resolve_refs(
    ctx: &Ctx<'_>,
    refs: Vec<&CohortRef>,
    depth: usize,
) -> Result<HashMap<String, Arc<ResolvedCohort>>, QueryError> {
    let mut out = HashMap::default();
    for r in refs {
        let key = cohort_key(r);
        if out.contains_key(&key) {
            continue;
        }
        let definition = match r {
            CohortRef::Saved(id) => load(ctx, id).await?,
            CohortRef::Inline(d) => (**d).clone(),
        };
        let resolved = resolve(ctx, definition, depth).await?;
        out.insert(key, Arc::new(resolved));
    }
    Ok(out)
}

async fn load(ctx: &Ctx<'_>, id: &str) -> Result<CohortDefinition, QueryError> {
    let docs = ctx.store.documents(ctx.project, COHORT_KIND).await?;
    let doc = docs.into_iter().find(|d| d.id == id).ok_or_else(|| QueryError::UnknownCohort(id.to_string()))?;
    serde_json::from_value(doc.body).map_err(|e| QueryError::invalid(format!("saved cohort {id:?} is unreadable: {e}")))
}

fn resolve<'a>(
    ctx: &'a Ctx<'a>,
    definition: CohortDefinition,
    depth: usize,
) -> Pin<Box<dyn Future<Output = Result<ResolvedCohort, QueryError>> + Send + 'a>> {
    Box::pin(async move {
        if depth >= MAX_DEPTH {
            return Err(QueryError::invalid("cohorts refer to each other too deeply (a cycle?)"));
        }
        let members = match &definition.rule {
            CohortRule::Static { ids } => Members::Ids(ids.iter().cloned().collect()),
            CohortRule::Dynamic { match_mode, criteria } => {
                if criteria.is_empty() {
                    return Err(QueryError::invalid("a dynamic cohort needs at least one criterion"));
                }
                let mut items = Vec::new();
                for c in criteria {
                    items.push(criterion(ctx, &definition.count_by, c, depth).await?);
                }
                match match_mode {
                    Match::All => Members::All(items),
                    Match::Any => Members::Any(items),
                }
            }
        };
        Ok(ResolvedCohort { count_by: definition.count_by, members })
    })
}

async fn criterion(ctx: &Ctx<'_>, by: &CountBy, c: &Criterion, depth: usize) -> Result<Members, QueryError> {
    match c {
        Criterion::GroupProperty { group_type, key, operator, value } => {
            if *by != CountBy::Users {
                return Err(QueryError::invalid(
                    "a group_property criterion is for cohorts of users (their current groups); \
                     a cohort of groups tests its groups' own properties with a property criterion",
                ));
            }
            crate::check_group_types(ctx, std::iter::once(group_type)).await?;
            let test = ValueTest::new(*operator, value)?;
            Ok(Members::Ids(members_of_matching_groups(ctx, group_type, key, &test).await?))
        }
        Criterion::Property { key, operator, value } => {
            Ok(Members::Property { key: key.clone(), test: ValueTest::new(*operator, value)? })
        }
        Criterion::PerformedEvent { event, filters, at_least, days } => {
            let selector = EventSelector { event: event.clone(), filters: filters.clone() };
            let nested = Box::pin(resolve_refs(ctx, cohort_refs(filters.iter()), depth + 1)).await?;
            let mut needs = Needs::new();
            needs.count_by(by);
            needs.selector(&selector, &nested);
            // Any u32 of days is a valid question ("ever"): clamped, not overflowed.
            let from = ctx.now.checked_sub_signed(Duration::days(i64::from(*days))).unwrap_or(DateTime::<Utc>::MIN_UTC);
            let to = ctx.now + Duration::microseconds(1);
            // Counted by the backend when it can.
            if let Some(test) = pushdown::Conditions::new(ctx, &nested).test(&selector, None).await? {
                let range = (from.timestamp_micros(), to.timestamp_micros());
                let actor = pushdown::actor_kind(ctx, by).await?;
                if let Some(keys) = pushdown::actors(ctx, actor, test, *at_least, range, None).await? {
                    return Ok(Members::Ids(keys.into_iter().map(|(key, _)| key).collect()));
                }
            }
            let scan = ctx
                .store
                .scan(ctx.project, needs.request(Some(from.timestamp_micros()), Some(to.timestamp_micros())))
                .await?;
            let frame = Frame::new(scan);
            let matcher = frame.matcher(&selector, None, &nested)?;
            let column = frame.column(by);
            let mut counts: HashMap<u32, u64> = HashMap::default();
            for i in 0..frame.len() {
                if matcher.matches(&frame, i) {
                    for &a in frame.actors(i, column) {
                        *counts.entry(a).or_default() += 1;
                    }
                }
            }
            let keys = counts
                .into_iter()
                .filter(|(_, n)| n >= at_least)
                .filter_map(|(a, _)| frame.actor(column, a).map(|a| a.key.clone()))
                .collect();
            Ok(Members::Ids(keys))
        }
    }
}

/// Listing pages read at once.
const PAGE: usize = 10_000;

/// Every row of a paginated listing, each handed to `visit`: `fetch` reads the page at an offset.
async fn each_row<T, Fut>(mut fetch: impl FnMut(usize) -> Fut, mut visit: impl FnMut(T)) -> Result<(), QueryError>
where
    Fut: Future<Output = Result<Page<T>, StoreError>>,
{
    let mut offset = 0;
    loop {
        let page = fetch(offset).await?;
        let (read, total) = (page.results.len(), page.total);
        page.results.into_iter().for_each(&mut visit);
        offset += read;
        if read == 0 || offset as u64 >= total {
            return Ok(());
        }
    }
}

/// Every person of the project, a page at a time.
async fn each_person(ctx: &Ctx<'_>, visit: impl FnMut(PersonRow)) -> Result<(), QueryError> {
    each_row(|offset| ctx.store.persons(ctx.project, PersonQuery { search: None, limit: PAGE, offset }), visit).await
}

/// Every group of a type, a page at a time.
async fn each_group(ctx: &Ctx<'_>, group_type: &str, visit: impl FnMut(GroupRow)) -> Result<(), QueryError> {
    let query =
        |offset| GroupQuery { group_type: group_type.to_string(), limit: PAGE, offset, ..GroupQuery::default() };
    each_row(|offset| ctx.store.groups(ctx.project, query(offset)), visit).await
}

/// The person ids of the current members of the groups of `group_type` whose property `key`
/// passes `test` ([`GROUP_KEY`]: their key). A group without a profile reads every property as
/// not set.
async fn members_of_matching_groups(
    ctx: &Ctx<'_>,
    group_type: &str,
    key: &str,
    test: &ValueTest,
) -> Result<HashSet<String>, QueryError> {
    let mut truths: HashMap<String, bool> = HashMap::default();
    if key != GROUP_KEY {
        each_group(ctx, group_type, |g| {
            let truth = test.test(g.properties.get(key));
            truths.insert(g.key, truth);
        })
        .await?;
    }
    let passes = |group: &str| match key == GROUP_KEY {
        true => test.test(Some(&serde_json::Value::String(group.to_string()))),
        false => truths.get(group).copied().unwrap_or_else(|| test.test(None)),
    };
    let mut members = HashSet::default();
    each_person(ctx, |person| {
        if person.group_memberships.get(group_type).is_some_and(|keys| keys.iter().any(|k| passes(k))) {
            members.insert(person.id);
        }
    })
    .await?;
    Ok(members)
}

/// Every member of a cohort, by key, with its profile: the kind's actors (every person, or every
/// group of the type: troupe keeps a row for each it has heard of) that the cohort contains.
pub async fn members(ctx: &Ctx<'_>, cohort: &CohortRef) -> Result<(CountBy, Vec<Actor>), QueryError> {
    let mut resolved = resolve_refs(ctx, vec![cohort], 0).await?;
    let cohort =
        resolved.remove(&cohort_key(cohort)).ok_or_else(|| QueryError::invalid("the cohort was not resolved"))?;
    let mut members = Vec::new();
    let mut keep = |a: Actor| {
        if cohort.contains(&a) {
            members.push(a);
        }
    };
    match &cohort.count_by {
        CountBy::Users => {
            each_person(ctx, |p| {
                keep(Actor {
                    key: p.id,
                    distinct_ids: p.distinct_ids,
                    name: None,
                    properties: p.properties,
                    created_at: Some(p.created_at),
                })
            })
            .await?
        }
        CountBy::Group { group_type } => {
            crate::check_group_types(ctx, std::iter::once(group_type)).await?;
            each_group(ctx, group_type, |g| {
                keep(Actor {
                    key: g.key,
                    distinct_ids: Vec::new(),
                    name: g.name,
                    properties: g.properties,
                    created_at: Some(g.created_at),
                })
            })
            .await?
        }
    }
    members.sort_by(|a, b| a.key.cmp(&b.key));
    Ok((cohort.count_by.clone(), members))
}
