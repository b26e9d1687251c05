//! Insight aggregates computed by ClickHouse (push-down): trends' events and `uniqExact` actors per
//! period (and statistics of property values or per-actor counts), actors' activity patterns
//! (`groupUniqArray` of periods, grouped so that actors alike travel as one row) for retention,
//! stickiness and lifecycle, per-actor step streams for funnels (and broken-down retention),
//! actors with enough events, a property's values and texts, and profiles. The events themselves
//! never leave ClickHouse.
//!
//! Conditions and splits arrive decided by the query layer as sets of ids (persons travel as
//! external tables, `GLOBAL IN ids_<n>`) or as tests of the event's property index (schema 3).
//!
//! Every query reads the same inner select: the project's events of the range with each event's
//! actors as an array — the person its distinct id resolves to now (GLOBAL join on the latest
//! distinct-id rows), or the group ids of one type (its column plus untyped ids naming a group of
//! the type with a profile, as a scan resolves them). Periods are
//! [`troupe_store::aggregate::period_key`] written in ClickHouse's date functions, in the
//! question's timezone.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;

use serde::Deserialize;
use troupe_core::ProjectId;
use troupe_store::aggregate::{
    ActorKind, ActorPattern, ActorStream, ActorsRequest, Aggregates, Condition, EventTest, IdSet, Measure, NumberOp,
    PatternsRequest, PeriodCount, PeriodCounts, PeriodCountsRequest, PeriodStat, PeriodStats, PeriodStatsRequest,
    PeriodUnit, Periods, RangeCount, RangeStat, Split, SplitBy, Stat, StreamsRequest, ValueCondition, ValueCount,
    ValuesRequest,
};
use troupe_store::value::{number_of, text_of, KIND_NUMBER};
use troupe_store::{Actor, StoreError};

use crate::http::{float_literal, quote, quote_list, ExternalTable, Http};
use crate::read::{slot_names, slot_of, SlotNames};
use crate::row_binary::RowBinary;
use crate::scan::{group_profiles, person_join, person_profiles};
use crate::schema::latest;
use crate::ClickHouseError;

type Result<T> = std::result::Result<T, ClickHouseError>;

/// ClickHouse answers every kind of aggregate; `None` when a request needs event properties
/// that older rows of the project do not have indexed (the question takes the scan path).
#[async_trait::async_trait]
impl Aggregates for crate::ClickHouseStore {
    async fn period_counts(
        &self,
        project: ProjectId,
        request: &PeriodCountsRequest,
    ) -> std::result::Result<Option<PeriodCounts>, StoreError> {
        let http = self.http();
        indexed(http, project, request.reads_properties(), period_counts(http, project, request)).await
    }

    async fn patterns(
        &self,
        project: ProjectId,
        request: &PatternsRequest,
    ) -> std::result::Result<Option<Vec<ActorPattern>>, StoreError> {
        let http = self.http();
        indexed(http, project, request.reads_properties(), patterns(http, project, request)).await
    }

    async fn streams(
        &self,
        project: ProjectId,
        request: &StreamsRequest,
    ) -> std::result::Result<Option<Vec<ActorStream>>, StoreError> {
        let http = self.http();
        indexed(http, project, request.reads_properties(), streams(http, project, request)).await
    }

    async fn actors(
        &self,
        project: ProjectId,
        request: &ActorsRequest,
    ) -> std::result::Result<Option<Vec<(String, u64)>>, StoreError> {
        let http = self.http();
        indexed(http, project, request.reads_properties(), actors(http, project, request)).await
    }

    async fn period_stats(
        &self,
        project: ProjectId,
        request: &PeriodStatsRequest,
    ) -> std::result::Result<Option<PeriodStats>, StoreError> {
        let http = self.http();
        indexed(http, project, request.reads_properties(), period_stats(http, project, request)).await
    }

    async fn values(
        &self,
        project: ProjectId,
        request: &ValuesRequest,
    ) -> std::result::Result<Option<Vec<ValueCount>>, StoreError> {
        let http = self.http();
        indexed(http, project, true, values(http, project, request)).await
    }

    async fn texts(&self, project: ProjectId, key: &str) -> std::result::Result<Option<Vec<String>>, StoreError> {
        let http = self.http();
        indexed(http, project, true, texts(http, project, key)).await
    }

    async fn profiles(&self, project: ProjectId, actor: &ActorKind) -> std::result::Result<Vec<Actor>, StoreError> {
        Ok(profiles(self.http(), project, actor).await?)
    }
}

/// The `answer`, or `None` when it reads the property index (`reads_properties`) and the project
/// has events stored without one. (`answer` does nothing until awaited.)
async fn indexed<T>(
    http: &Http,
    project: u32,
    reads_properties: bool,
    answer: impl Future<Output = Result<T>>,
) -> std::result::Result<Option<T>, StoreError> {
    if reads_properties && has_unindexed_events(http, project).await? {
        return Ok(None);
    }
    Ok(Some(answer.await?))
}

/// What an inner select carries besides `ts`, `time` and `event`.
#[derive(Default)]
struct Select<'a> {
    /// `actors`: whose events (none: an empty array).
    actor: Option<&'a ActorKind>,
    /// `lines`: the lines of a split.
    split: Option<&'a Split>,
    /// `pass_<i>`: each test's condition.
    tests: &'a [&'a EventTest],
    /// Further `(alias, expression)` columns of the event row.
    extra: Vec<(&'static str, String)>,
    /// `label_keys`: what an event is labelled by (a property's text, its groups, its person).
    keys: Option<&'a SplitBy>,
}

/// An inner select and the external tables its conditions read.
struct Inner {
    sql: String,
    tables: Vec<ExternalTable>,
}

/// The inner select: `ts`, `time`, `event` of the events passing `filter`, and what `select`
/// asks for (`actors`, `lines`, `pass_<i>`, further columns).
///
/// Two levels: the lower one maps ids and evaluates conditions (its lambdas and sets hold
/// constant lists), the upper one removes repeats from the resulting columns; removing them in
/// one level would copy the constant lists into the outer lambda once per array element.
async fn events_with_lines(http: &Http, project: u32, select: Select<'_>, filter: &str) -> Result<Inner> {
    let Select { actor, split, tests, mut extra, keys } = select;
    let mut ids = Ids::new(http, project);
    // Erasures in flight: their events are left out already (see `erasing`).
    let erasing = http.erasing().filter(http, project).await?;
    let (person, join) = person_join(project);
    let mut needs_person = matches!(actor, Some(ActorKind::Persons));
    // Events without untyped ids (nearly all) take a group type's column as it is, and only the
    // others go through naming untyped ids and removing repeats: the two read as one (UNION ALL).
    let (raw_actors, actors, typed_only) = match actor {
        None => ("emptyArrayString()".to_string(), "raw_actors".to_string(), None),
        Some(ActorKind::Persons) => (format!("[{person}]"), "raw_actors".to_string(), None),
        Some(ActorKind::Group(group_type)) => {
            let typed = ids.typed_group(group_type).await?;
            let all = ids.of_group(group_type).await?;
            if all == typed {
                (typed, "raw_actors".to_string(), None)
            } else {
                (all, distinct("raw_actors"), Some(typed))
            }
        }
    };
    needs_person |= split.is_some_and(|s| s.by == SplitBy::Person);
    let (raw_lines, lines) = match split {
        None => (String::new(), String::new()),
        Some(split) => split_sql(split, person, &mut ids).await?,
    };
    if let Some(by) = keys {
        needs_person |= *by == SplitBy::Person;
        let label_keys = match by {
            SplitBy::EventProperty(key) => {
                let at = format!("indexOf(prop_keys, {})", quote(key));
                format!("if({at} > 0, [prop_texts[{at}]], emptyArrayString())")
            }
            SplitBy::Group(group_type) => ids.of_group(group_type).await?,
            SplitBy::Person => format!("[{person}]"),
            SplitBy::EventName => "[event]".to_string(),
        };
        extra.push(("label_keys", label_keys));
    }
    let (mut raw_passes, mut passes) = (String::new(), String::new());
    for (i, test) in tests.iter().enumerate() {
        if let Some(condition) = &test.condition {
            needs_person |= uses_person(condition);
            // `materialize`: a condition may fold to a constant, which 18.16 refuses in one branch
            // of a UNION ALL when the other's is not (code 171).
            let sql = condition_sql(condition, person, &mut ids).await?;
            raw_passes.push_str(&format!(", materialize({sql}) AS pass_{i}"));
            passes.push_str(&format!(", pass_{i}"));
        }
    }
    for (alias, expression) in &extra {
        raw_passes.push_str(&format!(", materialize({expression}) AS {alias}"));
        passes.push_str(&format!(", {alias}"));
    }
    let join = if needs_person { join } else { String::new() };
    let select = |raw_actors: &str, actors: &str, only: &str| {
        if actors == "raw_actors" && raw_lines.is_empty() {
            // Nothing to remove repeats from: one level (a level that only passes columns on
            // costs ClickHouse a copy of them).
            format!(
                "SELECT ts, time, event, {raw_actors} AS actors{raw_passes} FROM events {join} \
                 WHERE project_id = {project}{erasing} AND ({filter}){only}"
            )
        } else {
            format!(
                "SELECT ts, time, event, {actors} AS actors{lines}{passes} FROM \
                 (SELECT ts, time, event, {raw_actors} AS raw_actors{raw_lines}{raw_passes} FROM events {join} \
                  WHERE project_id = {project}{erasing} AND ({filter}){only})"
            )
        }
    };
    let sql = match typed_only {
        None => select(&raw_actors, &actors, ""),
        Some(typed) => format!(
            "{} UNION ALL {}",
            select(&typed, "raw_actors", " AND empty(groups_untyped)"),
            select(&raw_actors, &actors, " AND notEmpty(groups_untyped)")
        ),
    };
    Ok(Inner { sql, tables: ids.tables })
}

/// The elements of an array column, each once, in order.
fn distinct(column: &str) -> String {
    format!("arrayFilter((x, i) -> indexOf({column}, x) = i, {column}, arrayEnumerate({column}))")
}

/// A split's `raw_lines` (lower select) and `lines` (upper select, each line once).
async fn split_sql(split: &Split, person: &str, ids: &mut Ids<'_>) -> Result<(String, String)> {
    let (default, unset) = (split.default_line, split.unset_line);
    let line_of = |key: &str| line_of_key(split, key);
    Ok(match &split.by {
        SplitBy::Group(group_type) => {
            let groups = ids.of_group(group_type).await?;
            (
                format!(", materialize(arrayMap(k -> {}, {groups})) AS raw_lines", line_of("k")),
                format!(", if(empty(raw_lines), [toUInt32({unset})], {}) AS lines", distinct("raw_lines")),
            )
        }
        SplitBy::EventProperty(key) => {
            let at = format!("indexOf(prop_keys, {})", quote(key));
            let line = format!("if({at} > 0, {}, toUInt32({unset}))", line_of(&format!("prop_texts[{at}]")));
            (format!(", materialize([{line}]) AS raw_lines"), ", raw_lines AS lines".to_string())
        }
        SplitBy::EventName => {
            (format!(", materialize([{}]) AS raw_lines", line_of("event")), ", raw_lines AS lines".to_string())
        }
        SplitBy::Person => {
            // Persons may be many: each line's persons travel as a table beside the query.
            let mut by_line: BTreeMap<u32, Vec<String>> = BTreeMap::new();
            for (id, line) in split.lines.iter().filter(|(_, l)| *l != default) {
                by_line.entry(*line).or_default().push(id.clone());
            }
            let mut cases: Vec<String> = Vec::new();
            for (line, persons) in by_line {
                cases.push(format!("{person} GLOBAL IN {}, toUInt32({line})", ids.table(&persons)));
            }
            let line = if cases.is_empty() {
                format!("toUInt32({default})")
            } else {
                format!("multiIf({}, toUInt32({default}))", cases.join(", "))
            };
            (format!(", materialize([{line}]) AS raw_lines"), ", raw_lines AS lines".to_string())
        }
    })
}

/// The line of the key `key` evaluates to, by the split's `(key, line)` list; its default line
/// for keys not listed.
fn line_of_key(split: &Split, key: &str) -> String {
    let default = split.default_line;
    if split.lines.is_empty() {
        return format!("toUInt32({default})");
    }
    let keys: Vec<String> = split.lines.iter().map(|(k, _)| quote(k)).collect();
    let lines: Vec<String> = split.lines.iter().map(|(_, l)| format!("toUInt32({l})")).collect();
    format!("transform({key}, [{}], [{}], toUInt32({default}))", keys.join(", "), lines.join(", "))
}

/// Each group type's id expression on an event, resolved once per query.
struct Ids<'a> {
    http: &'a Http,
    project: u32,
    /// The project's slots, and whether it ever stored untyped ids (read together, once).
    slots: Option<(SlotNames, bool)>,
    groups: HashMap<String, String>,
    /// Sets of persons, sent beside the query (they may hold every person of the project).
    tables: Vec<ExternalTable>,
}

impl<'a> Ids<'a> {
    fn new(http: &'a Http, project: u32) -> Self {
        Ids { http, project, slots: None, groups: HashMap::new(), tables: Vec::new() }
    }

    /// Whether `expression` is in `set`, the set sent beside the query as a table.
    fn member(&mut self, expression: &str, set: &IdSet) -> String {
        let listed = if set.ids.is_empty() {
            "0".to_string()
        } else {
            format!("({expression} GLOBAL IN {})", self.table(&set.ids))
        };
        if set.negated {
            format!("(NOT {listed})")
        } else {
            listed
        }
    }

    /// A name the query can read `ids` by.
    fn table(&mut self, ids: &[String]) -> String {
        let name = format!("ids_{}", self.tables.len());
        self.tables.push(ExternalTable { name: name.clone(), ids: ids.to_vec() });
        name
    }

    /// The ids stamped in a group type's column (each once), as an array expression.
    async fn typed_group(&mut self, group_type: &str) -> Result<String> {
        let (slots, _) = self.slots().await?;
        let slot = slot_of(slots, group_type);
        Ok(slot.map_or_else(|| "emptyArrayString()".to_string(), |slot| format!("group_{slot}")))
    }

    async fn slots(&mut self) -> Result<&(SlotNames, bool)> {
        if self.slots.is_none() {
            self.slots = Some(slots_and_mark(self.http, self.project).await?);
        }
        Ok(self.slots.get_or_insert_default())
    }

    /// The ids of one group type on an event, as an array expression (repeats possible).
    async fn of_group(&mut self, group_type: &str) -> Result<String> {
        if let Some(sql) = self.groups.get(group_type) {
            return Ok(sql.clone());
        }
        let (http, project) = (self.http, self.project);
        let (slots, marked) = self.slots().await?;
        let sql = match slot_of(slots, group_type) {
            None => "emptyArrayString()".to_string(),
            Some(slot) => group_ids(http, project, slot, *marked).await?,
        };
        self.groups.insert(group_type.to_string(), sql.clone());
        Ok(sql)
    }
}

/// Typed ids of a slot, then untyped ids that name a known group of it — only in a project that
/// ever stored untyped ids (schema 6's mark, `marked`; most never do, and read the column as it is).
async fn group_ids(http: &Http, project: u32, slot: u8, marked: bool) -> Result<String> {
    #[derive(Deserialize)]
    struct Key {
        group_key: String,
    }
    if !marked {
        return Ok(format!("group_{slot}"));
    }
    let profiles =
        latest("group_profiles", project, &["slot", "group_key"], &["updated_at"], &format!("slot = {slot}"));
    let known: Vec<Key> = http.rows(&format!("SELECT group_key FROM {profiles}")).await?;
    if known.is_empty() {
        return Ok(format!("group_{slot}"));
    }
    let known: Vec<String> = known.iter().map(|k| quote(&k.group_key)).collect();
    Ok(format!("arrayConcat(group_{slot}, arrayFilter(x -> has([{}], x), groups_untyped))", known.join(", ")))
}

/// A project's group type slots and schema 6's mark (it stored untyped ids), read at once.
async fn slots_and_mark(http: &Http, project: u32) -> Result<(SlotNames, bool)> {
    #[derive(Deserialize)]
    struct Mark {
        marked: u8,
    }
    let mark = format!("SELECT toUInt8(max(has_untyped) = 1) AS marked FROM projects WHERE id = {project}");
    let (slots, marks) = tokio::try_join!(slot_names(http, project), http.rows::<Mark>(&mark))?;
    Ok((slots, marks.first().is_some_and(|m| m.marked == 1)))
}

fn uses_person(condition: &Condition) -> bool {
    match condition {
        Condition::All(items) | Condition::Any(items) => items.iter().any(uses_person),
        Condition::Not(inner) => uses_person(inner),
        Condition::Person(_) => true,
        Condition::Events(_) | Condition::EventProperty { .. } | Condition::Groups { .. } => false,
    }
}

/// A condition as a boolean expression over the lower select's columns (`person`: the event's
/// resolved person).
fn condition_sql<'a>(
    condition: &'a Condition,
    person: &'a str,
    ids: &'a mut Ids<'_>,
) -> Pin<Box<dyn Future<Output = Result<String>> + Send + 'a>> {
    Box::pin(async move {
        Ok(match condition {
            Condition::All(items) | Condition::Any(items) => {
                let (joiner, empty) =
                    if matches!(condition, Condition::All(_)) { (" AND ", "1") } else { (" OR ", "0") };
                let mut parts = Vec::new();
                for item in items {
                    parts.push(condition_sql(item, person, ids).await?);
                }
                if parts.is_empty() {
                    empty.to_string()
                } else {
                    format!("({})", parts.join(joiner))
                }
            }
            Condition::Not(inner) => format!("(NOT {})", condition_sql(inner, person, ids).await?),
            Condition::Events(names) => format!("(event IN ({}))", quote_list(names)),
            Condition::EventProperty { key, test } => property_sql(key, test, ids),
            Condition::Person(set) => ids.member(person, set),
            Condition::Groups { group_type, keys, none } => {
                let groups = ids.of_group(group_type).await?;
                let list = if keys.ids.is_empty() {
                    "emptyArrayString()".to_string()
                } else {
                    format!("[{}]", quote_list(&keys.ids))
                };
                // Negated: some group is outside the listed ones.
                let some = if keys.negated {
                    format!("NOT hasAll({list}, {groups})")
                } else {
                    format!("hasAny({groups}, {list})")
                };
                format!("if(empty({groups}), {}, {some})", u8::from(*none))
            }
        })
    })
}

/// A property test over the event's property index (schema 3): the value at the key's position,
/// read as [`troupe_store::value`] reads it.
fn property_sql(key: &str, test: &ValueCondition, ids: &mut Ids<'_>) -> String {
    let at = format!("indexOf(prop_keys, {})", quote(key));
    let (text, number, kind) =
        (format!("prop_texts[{at}]"), format!("prop_numbers[{at}]"), format!("prop_kinds[{at}]"));
    let passes = match test {
        ValueCondition::IsSet => return format!("({at} > 0)"),
        ValueCondition::EqualsAny(values) => {
            let each: Vec<String> = values
                .iter()
                .map(|x| {
                    let x_text = quote(&text_of(x));
                    match number_of(x) {
                        // A JSON number compares as a number with any value that reads as one.
                        Some(n) if x.is_number() => {
                            format!("if(isNaN({number}), {text} = {x_text}, {number} = {})", float_literal(n))
                        }
                        // Text that reads as a number does so only against JSON numbers.
                        Some(n) => {
                            format!("if({kind} = {KIND_NUMBER}, {number} = {}, {text} = {x_text})", float_literal(n))
                        }
                        None => format!("{text} = {x_text}"),
                    }
                })
                .collect();
            if each.is_empty() {
                "0".to_string()
            } else {
                each.join(" OR ")
            }
        }
        ValueCondition::TextIn(set) => ids.member(&text, set),
        // Byte-wise, as Rust's `str::contains`.
        ValueCondition::Contains(needle) => format!("position(prop_lowers[{at}], {}) > 0", quote(needle)),
        ValueCondition::Compare { op, number: n } => {
            let op = match op {
                NumberOp::Gt => ">",
                NumberOp::Gte => ">=",
                NumberOp::Lt => "<",
                NumberOp::Lte => "<=",
            };
            // NaN (no number) compares false.
            format!("{number} {op} {}", float_literal(*n))
        }
    };
    format!("({at} > 0 AND ({passes}))")
}

/// Whether a request reads the event property index (directly or through a test).
trait ReadsProperties {
    fn reads_properties(&self) -> bool;
}

fn tests_read_properties<'a>(tests: impl IntoIterator<Item = &'a EventTest>) -> bool {
    fn in_condition(c: &Condition) -> bool {
        match c {
            Condition::All(items) | Condition::Any(items) => items.iter().any(in_condition),
            Condition::Not(inner) => in_condition(inner),
            Condition::EventProperty { .. } => true,
            Condition::Events(_) | Condition::Person(_) | Condition::Groups { .. } => false,
        }
    }
    tests.into_iter().filter_map(|t| t.condition.as_ref()).any(in_condition)
}

fn splits_by_property(split: Option<&Split>) -> bool {
    matches!(split, Some(Split { by: SplitBy::EventProperty(_), .. }))
}

impl ReadsProperties for PeriodCountsRequest {
    fn reads_properties(&self) -> bool {
        splits_by_property(self.split.as_ref()) || tests_read_properties(&self.tests)
    }
}

impl ReadsProperties for PatternsRequest {
    fn reads_properties(&self) -> bool {
        splits_by_property(self.split.as_ref()) || tests_read_properties(self.tests.iter().chain(&self.first))
    }
}

impl ReadsProperties for StreamsRequest {
    fn reads_properties(&self) -> bool {
        matches!(self.keys, Some(SplitBy::EventProperty(_))) || tests_read_properties(&self.tests)
    }
}

impl ReadsProperties for ActorsRequest {
    fn reads_properties(&self) -> bool {
        splits_by_property(self.on.as_ref().map(|(split, _)| split)) || tests_read_properties([&self.test])
    }
}

impl ReadsProperties for PeriodStatsRequest {
    fn reads_properties(&self) -> bool {
        splits_by_property(self.split.as_ref())
            || matches!(self.measure, Measure::Property { .. })
            || tests_read_properties([&self.test])
    }
}

/// Whether the project has events written before their properties were indexed (schema 3).
async fn has_unindexed_events(http: &Http, project: u32) -> Result<bool> {
    let rows: Vec<serde_json::Value> = http
        .rows(&format!("SELECT 1 AS unindexed FROM events WHERE project_id = {project} AND props_indexed = 0 LIMIT 1"))
        .await?;
    Ok(!rows.is_empty())
}

/// A test over the inner select's columns; `index` is its place in the inner select's tests.
fn test_sql(index: usize, test: &EventTest) -> String {
    let names = match &test.events {
        Some(names) => format!("event IN ({})", quote_list(names)),
        None => "1".into(),
    };
    match &test.condition {
        Some(_) => format!("({names} AND pass_{index})"),
        None => format!("({names})"),
    }
}

/// `event IN (…)` when every test names its events, else nothing to narrow by.
fn event_filter<'a>(tests: impl IntoIterator<Item = &'a EventTest>) -> String {
    match EventTest::names_of(tests) {
        Some(names) => format!(" AND event IN ({})", quote_list(&names)),
        None => String::new(),
    }
}

/// [`troupe_store::aggregate::period_key`] of a DateTime expression.
fn period_sql(periods: &Periods, at: &str) -> String {
    let tz = quote(periods.tz.name());
    match periods.unit {
        PeriodUnit::Hour => format!("(toInt64(toUInt32({at})) - toMinute({at}, {tz}) * 60 - toSecond({at}, {tz}))"),
        PeriodUnit::Day => format!("toInt64(toUInt16(toDate({at}, {tz})))"),
        PeriodUnit::Week { monday: true } => format!("intDiv(toInt64(toUInt16(toMonday(toDate({at}, {tz})))), 7)"),
        // The Sunday before (or on) a date is the day before the Monday after it.
        PeriodUnit::Week { monday: false } => {
            format!("intDiv(toInt64(toUInt16(toMonday(toDate({at}, {tz}) + 1))) - 1, 7)")
        }
        PeriodUnit::Month => format!("(toInt64(toYear({at}, {tz})) * 12 + toMonth({at}, {tz}) - 1)"),
    }
}

fn in_range((from, to): (i64, i64)) -> String {
    format!("(ts >= {from} AND ts < {to})")
}

/// [`in_range`] for the WHERE clause on the events table, where `time` is there too: its
/// bounds let ClickHouse skip partitions and granules outside the range.
fn where_in_range((from, to): (i64, i64)) -> String {
    format!("(ts >= {from} AND ts < {to} AND {})", crate::scan::time_bounds(Some(from), Some(to)))
}

/// Several ranges in SQL: `filter` passes an event of any of them, `index` is the index of the
/// event's range (-1: none).
struct Ranges {
    filter: String,
    index: String,
}

fn ranges_sql(ranges: &[(i64, i64)]) -> Ranges {
    let each: Vec<String> = ranges.iter().map(|r| in_range(*r)).collect();
    let index: Vec<String> = each.iter().enumerate().map(|(i, r)| format!("{r}, {i}")).collect();
    let filter: Vec<String> = ranges.iter().map(|r| where_in_range(*r)).collect();
    Ranges { filter: format!("({})", filter.join(" OR ")), index: format!("multiIf({}, -1)", index.join(", ")) }
}

/// The rows to aggregate and each row's line: split, one row per distinct line of an event
/// (`carried`: the inner select's further columns to keep), else the inner select on line 0.
fn by_line(inner: &str, carried: &str, split: bool) -> (String, &'static str) {
    if split {
        (format!("(SELECT ts, time, event, actors{carried}, arrayJoin(lines) AS line FROM ({inner}))"), "line")
    } else {
        (format!("({inner})"), "toUInt32(0)")
    }
}

async fn period_counts(http: &Http, project: u32, request: &PeriodCountsRequest) -> Result<PeriodCounts> {
    let PeriodCountsRequest { actor, periods, tests, ranges, split } = request;
    let (actor, split) = (actor.as_ref(), split.as_ref());
    if tests.is_empty() || ranges.is_empty() {
        return Ok(PeriodCounts::default());
    }
    let Ranges { filter, index: range_index } = ranges_sql(ranges);
    let filter = format!("{filter}{}", event_filter(tests));
    let tests_ref: Vec<&EventTest> = tests.iter().collect();
    let events: Vec<String> = tests.iter().enumerate().map(|(i, t)| format!("countIf({})", test_sql(i, t))).collect();
    let events = events.join(", ");
    let period = period_sql(periods, "time");
    // Events split by a group property, in a project that reads the type's column as it is.
    if let (None, Some(split @ Split { by: SplitBy::Group(group_type), .. })) = (actor, split) {
        if let Some(column) = typed_column(http, project, group_type).await? {
            let counts = EventCounts { range_index, period, events, filter };
            let rows = by_group_key(http, project, &tests_ref, split, &column, counts).await?;
            return Ok(event_counts(rows, tests.len()));
        }
    }
    let Inner { sql: inner, tables } =
        events_with_lines(http, project, Select { actor, split, tests: &tests_ref, ..Select::default() }, &filter)
            .await?;
    // An event counts once per line: the lines are spread first, then counted.
    let (from, line) = by_line(&inner, &passes(&tests_ref), split.is_some());
    if actor.is_some() {
        let sql = PeriodSql { range_index, period, line: line.to_string(), from, tables, events };
        return period_and_range_counts(http, request, sql).await;
    }
    let rows = event_counts_by_line(http, &range_index, &period, line, &from, &events, tables).await?;
    Ok(event_counts(rows, tests.len()))
}

/// Cells and range totals from events counted per range, period and line (a row each).
fn event_counts(by_period: Vec<EventCountRow>, tests: usize) -> PeriodCounts {
    let cells: Vec<PeriodCount> = by_period
        .iter()
        .flat_map(|r| {
            (0..tests).map(move |test| PeriodCount {
                test,
                line: r.line_of,
                key: r.bucket,
                events: r.events.get(test).copied().unwrap_or(0),
                actors: 0,
            })
        })
        .collect();
    // Events only: a range's totals are the sums of its periods.
    let mut sums: BTreeMap<(usize, u32, usize), u64> = BTreeMap::new();
    for r in by_period.iter().filter(|r| r.range_of >= 0) {
        for (test, events) in r.events.iter().enumerate() {
            *sums.entry((r.range_of as usize, r.line_of, test)).or_default() += events;
        }
    }
    let totals = sums
        .into_iter()
        .map(|((range, line, test), events)| RangeCount { test, line, range, events, actors: 0 })
        .collect();
    PeriodCounts { cells, totals }
}

/// A row of events counted per range, period and line.
#[derive(Deserialize)]
struct EventCountRow {
    range_of: i64,
    bucket: i64,
    line_of: u32,
    events: Vec<u64>,
}

async fn event_counts_by_line(
    http: &Http,
    range_index: &str,
    period: &str,
    line: &str,
    from: &str,
    events: &str,
    tables: Vec<ExternalTable>,
) -> Result<Vec<EventCountRow>> {
    let sql = format!(
        "SELECT {range_index} AS range_of, {period} AS bucket, {line} AS line_of, [{events}] AS events \
         FROM {from} GROUP BY range_of, bucket, line_of"
    );
    http.rows_with(&sql, tables).await
}

/// The group type's column when the project reads it as it is (no untyped ids to name), as
/// [`events_with_lines`] decides it.
async fn typed_column(http: &Http, project: u32, group_type: &str) -> Result<Option<String>> {
    let mut ids = Ids::new(http, project);
    let typed = ids.typed_group(group_type).await?;
    let all = ids.of_group(group_type).await?;
    Ok((typed.starts_with("group_") && all == typed).then_some(typed))
}

/// The pieces of an events-only count the split by group key reuses.
struct EventCounts {
    range_index: String,
    period: String,
    events: String,
    filter: String,
}

/// Events per range, period and line of a split by a group property. Events are counted per
/// range, period and *set of group keys* first, and each counted set is mapped to its lines
/// afterwards — a lookup per counted set, not per event (mapping every event's keys through a
/// lambda that holds all keys cost twice the count). An event still counts once per distinct
/// line of its groups: the events of one counted row share their keys.
async fn by_group_key(
    http: &Http,
    project: u32,
    tests: &[&EventTest],
    split: &Split,
    column: &str,
    counts: EventCounts,
) -> Result<Vec<EventCountRow>> {
    let EventCounts { range_index, period, events, filter } = counts;
    let unset = split.unset_line;
    let lines_of_keys = format!("arrayDistinct(arrayMap(k -> {}, group_keys))", line_of_key(split, "k"));
    let select = Select { tests, extra: vec![("group_keys", column.to_string())], ..Select::default() };
    let Inner { sql: inner, tables } = events_with_lines(http, project, select, &filter).await?;
    let sql = format!(
        "SELECT range_of, bucket, line_of, sumForEach(key_events) AS events FROM \
         (SELECT range_of, bucket, key_events, \
          arrayJoin(if(empty(group_keys), [toUInt32({unset})], {lines_of_keys})) AS line_of FROM \
          (SELECT {range_index} AS range_of, {period} AS bucket, group_keys, [{events}] AS key_events \
           FROM ({inner}) GROUP BY range_of, bucket, group_keys)) \
         GROUP BY range_of, bucket, line_of"
    );
    http.rows_with(&sql, tables).await
}

/// The pieces of a period count's SQL.
struct PeriodSql {
    range_index: String,
    period: String,
    line: String,
    from: String,
    tables: Vec<ExternalTable>,
    /// `countIf(…)` per test, comma-separated.
    events: String,
}

/// Counts per period and per range in one pass over the events: distinct actors of a range are
/// not the sum of its periods', so each period keeps its set of actors (an aggregate state),
/// finalized for the period and merged for the range.
async fn period_and_range_counts(http: &Http, request: &PeriodCountsRequest, sql: PeriodSql) -> Result<PeriodCounts> {
    let tests = &request.tests;
    let PeriodSql { range_index, period, line, from, tables, events } = sql;
    let states: Vec<String> =
        tests.iter().enumerate().map(|(i, t)| format!("uniqExactArrayIfState(actors, {})", test_sql(i, t))).collect();
    let states = states.join(", ");

    #[derive(Deserialize)]
    struct Row {
        range_of: i64,
        line_of: u32,
        buckets: Vec<i64>,
        bucket_events: Vec<Vec<u64>>,
        bucket_actors: Vec<Vec<u64>>,
        range_events: Vec<u64>,
        range_actors: Vec<u64>,
    }
    let rows: Vec<Row> = http
        .rows_with(
            &format!(
                "SELECT range_of, line_of, groupArray(bucket) AS buckets, groupArray(events) AS bucket_events, \
                 groupArray(arrayMap(s -> finalizeAggregation(s), states)) AS bucket_actors, \
                 sumForEach(events) AS range_events, uniqExactArrayIfMergeForEach(states) AS range_actors FROM \
                 (SELECT {range_index} AS range_of, {period} AS bucket, {line} AS line_of, [{events}] AS events, \
                 [{states}] AS states FROM {from} GROUP BY range_of, bucket, line_of) GROUP BY range_of, line_of"
            ),
            tables,
        )
        .await?;
    let mut counts = PeriodCounts::default();
    for r in &rows {
        for (i, bucket) in r.buckets.iter().enumerate() {
            for test in 0..tests.len() {
                let at = |v: &Vec<Vec<u64>>| v.get(i).and_then(|c| c.get(test)).copied().unwrap_or(0);
                counts.cells.push(PeriodCount {
                    test,
                    line: r.line_of,
                    key: *bucket,
                    events: at(&r.bucket_events),
                    actors: at(&r.bucket_actors),
                });
            }
        }
        if r.range_of >= 0 {
            for test in 0..tests.len() {
                counts.totals.push(RangeCount {
                    test,
                    line: r.line_of,
                    range: r.range_of as usize,
                    events: r.range_events.get(test).copied().unwrap_or(0),
                    actors: r.range_actors.get(test).copied().unwrap_or(0),
                });
            }
        }
    }
    Ok(counts)
}

async fn patterns(http: &Http, project: u32, request: &PatternsRequest) -> Result<Vec<ActorPattern>> {
    let PatternsRequest { actor, periods, tests, first, from, to, split } = request;
    let (first, split, from, to) = (first.as_ref(), split.as_ref(), *from, *to);
    let range = (from, to);
    // The earliest `first` event may lie before the range.
    let lower = if first.is_some() { String::new() } else { format!("ts >= {from} AND ") };
    let bounds = crate::scan::time_bounds(first.is_none().then_some(from), Some(to));
    let filter = format!("{lower}ts < {to} AND {bounds}{}", event_filter(tests.iter().chain(first)));
    let all_tests: Vec<&EventTest> = tests.iter().chain(first).collect();
    let Inner { sql: inner, tables } = events_with_lines(
        http,
        project,
        Select { actor: Some(actor), split, tests: &all_tests, ..Select::default() },
        &filter,
    )
    .await?;
    let line = if split.is_some() { "arrayJoin(lines)" } else { "toUInt32(0)" };
    let period = period_sql(periods, "time");
    // Without `first`, every event read is in the range already: no range test per event, and
    // nothing about a first event is computed (stickiness asks this way).
    let in_range_too = |test: String| match first {
        Some(_) => format!("{test} AND {}", in_range(range)),
        None => test,
    };
    let collected: Vec<String> = tests
        .iter()
        .enumerate()
        .map(|(i, t)| format!("arraySort(groupUniqArrayIf({period}, {}))", in_range_too(test_sql(i, t))))
        .collect();
    let (first_columns, first_keys) = match first {
        None => (
            String::new(),
            "toUInt8(0) AS has_first, toInt64(0) AS first_period, toUInt8(0) AS first_in_range".to_string(),
        ),
        Some(first) => {
            let first_test = test_sql(tests.len(), first);
            let first_period = period_sql(periods, "toDateTime(intDiv(first_ts, 1000000))");
            (
                format!(", countIf({first_test}) > 0 AS has_first, minIf(ts, {first_test}) AS first_ts"),
                format!(
                    "has_first, if(has_first, {first_period}, 0) AS first_period, \
                     has_first AND first_ts >= {from} AND first_ts < {to} AS first_in_range"
                ),
            )
        }
    };
    let sql = format!(
        "SELECT line, periods, {first_keys}, count() AS actors \
         FROM (SELECT arrayJoin(actors) AS actor, {line} AS line, [{collected}] AS periods{first_columns} \
               FROM ({inner}) GROUP BY actor, line) \
         GROUP BY line, periods, has_first, first_period, first_in_range",
        collected = collected.join(", "),
    );
    #[derive(Deserialize)]
    struct Row {
        line: u32,
        periods: Vec<Vec<i64>>,
        has_first: u8,
        first_period: i64,
        first_in_range: u8,
        actors: u64,
    }
    let rows: Vec<Row> = http.rows_with(&sql, tables).await?;
    Ok(rows
        .into_iter()
        .map(|r| ActorPattern {
            periods: r.periods,
            first: (r.has_first == 1).then_some((r.first_period, r.first_in_range == 1)),
            line: r.line,
            actors: r.actors,
        })
        .collect())
}

async fn streams(http: &Http, project: u32, request: &StreamsRequest) -> Result<Vec<ActorStream>> {
    let StreamsRequest { actor, tests, all_events, from, to, keys } = request;
    let (all_events, range, keys) = (*all_events, (*from, *to), keys.as_ref());
    if tests.len() > 32 {
        return Err(ClickHouseError::Config("a stream takes at most 32 tests".into()));
    }
    let names = if all_events { String::new() } else { event_filter(tests) };
    let filter = format!("{}{names}", where_in_range(range));
    let tests_ref: Vec<&EventTest> = tests.iter().collect();
    let select = Select { actor: Some(actor), tests: &tests_ref, keys, ..Select::default() };
    let Inner { sql: inner, tables } = events_with_lines(http, project, select, &filter).await?;
    let mask: Vec<String> =
        tests.iter().enumerate().map(|(k, t)| format!("{} * {}", test_sql(k, t), 1u64 << k)).collect();
    let (key_column, keys_column) = match keys {
        Some(_) => (", label_keys", ", groupArray(label_keys) AS keys"),
        // Always empty: in RowBinary an empty array is its length, 0, whatever its type.
        None => ("", ", [] AS keys"),
    };
    // Read by name only, every event passes a test unless a test has a condition too.
    let having =
        if all_events || tests.iter().any(|t| t.condition.is_some()) { " HAVING countIf(mask != 0) > 0" } else { "" };
    let sql = format!(
        "SELECT actor, groupArray(ts) AS times, groupArray(mask) AS masks{keys_column} \
         FROM (SELECT ts, toUInt32({mask}) AS mask{key_column}, arrayJoin(actors) AS actor FROM ({inner})) \
         GROUP BY actor{having}",
        mask = mask.join(" + "),
    );
    // Streams are mostly numbers: read as RowBinary (at 1M events, 2.9 MB of JSON took
    // ClickHouse longer to write than the query took to run).
    let body = http.binary_rows_with(&sql, tables).await?;
    let mut reader = RowBinary::new(&body);
    let mut streams = Vec::new();
    while !reader.is_done() {
        let actor = reader.string()?;
        let times = reader.array(RowBinary::i64)?;
        let masks = reader.array(RowBinary::u32)?;
        let keys = reader.array(|r| r.array(RowBinary::string))?;
        streams.push(ActorStream { actor, events: times.into_iter().zip(masks).collect(), keys });
    }
    Ok(streams)
}

/// The actors with at least `at_least` events passing the test (each event counts once per
/// actor), only events on `line` when split.
async fn actors(http: &Http, project: u32, request: &ActorsRequest) -> Result<Vec<(String, u64)>> {
    let ActorsRequest { actor, test, at_least, from, to, on } = request;
    let tests = std::slice::from_ref(test);
    let (at_least, range) = (*at_least, (*from, *to));
    let (split, line) = (on.as_ref().map(|(split, _)| split), on.as_ref().map(|(_, line)| *line));
    let filter = format!("{}{}", where_in_range(range), event_filter(tests));
    let tests_ref: Vec<&EventTest> = tests.iter().collect();
    let select = Select { actor: Some(actor), split, tests: &tests_ref, ..Select::default() };
    let Inner { sql: inner, tables } = events_with_lines(http, project, select, &filter).await?;
    let on_line = line.map_or(String::new(), |l| format!(" AND has(lines, toUInt32({l}))"));
    let matching: Vec<String> = tests.iter().enumerate().map(|(i, t)| test_sql(i, t)).collect();
    let sql = format!(
        "SELECT actor, count() AS events FROM (SELECT arrayJoin(actors) AS actor FROM ({inner}) WHERE ({}){on_line}) \
         GROUP BY actor HAVING events >= {at_least} ORDER BY actor",
        matching.join(" OR ")
    );
    #[derive(Deserialize)]
    struct Row {
        actor: String,
        events: u64,
    }
    let rows: Vec<Row> = http.rows_with(&sql, tables).await?;
    Ok(rows.into_iter().map(|r| (r.actor, r.events)).collect())
}

async fn profiles(http: &Http, project: u32, actor: &ActorKind) -> Result<Vec<Actor>> {
    let profiles = match actor {
        ActorKind::Persons => person_profiles(http, project).await?,
        ActorKind::Group(group_type) => match slot_of(&slot_names(http, project).await?, group_type) {
            Some(slot) => group_profiles(http, project, slot).await?,
            None => Vec::new(),
        },
    };
    Ok(profiles)
}

/// The `pass_<i>` columns of the tests with a condition, to carry through a select.
fn passes(tests: &[&EventTest]) -> String {
    tests.iter().enumerate().filter(|(_, t)| t.condition.is_some()).map(|(i, _)| format!(", pass_{i}")).collect()
}

/// Events per text of an event property and range.
async fn values(http: &Http, project: u32, request: &ValuesRequest) -> Result<Vec<ValueCount>> {
    let ValuesRequest { key, test, ranges } = request;
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    let Ranges { filter, index: range_index } = ranges_sql(ranges);
    let filter = format!("{filter}{}", event_filter([test]));
    let at = format!("indexOf(prop_keys, {})", quote(key));
    let extra = vec![("value_at", at), ("value", "if(value_at > 0, prop_texts[value_at], '')".to_string())];
    let select = Select { tests: &[test], extra, ..Select::default() };
    let Inner { sql: inner, tables } = events_with_lines(http, project, select, &filter).await?;
    #[derive(Deserialize)]
    struct Row {
        range_of: i64,
        value_set: u8,
        value: String,
        events: u64,
    }
    let sql = format!(
        "SELECT {range_index} AS range_of, value_at > 0 AS value_set, value, count() AS events FROM ({inner}) \
         WHERE {} GROUP BY range_of, value_set, value",
        test_sql(0, test)
    );
    let rows: Vec<Row> = http.rows_with(&sql, tables).await?;
    Ok(rows
        .into_iter()
        .filter(|r| r.range_of >= 0)
        .map(|r| ValueCount {
            value: (r.value_set == 1).then_some(r.value),
            range: r.range_of as usize,
            events: r.events,
        })
        .collect())
}

/// A statistic per line and period and per line and range: of an event property's numbers (the
/// events with one), or of each actor's event count (the actors with one). Values leave
/// ClickHouse as their bits, so troupe reads exactly the double ClickHouse computed.
async fn period_stats(http: &Http, project: u32, request: &PeriodStatsRequest) -> Result<PeriodStats> {
    let PeriodStatsRequest { periods, test, measure, ranges, split } = request;
    let split = split.as_ref();
    if ranges.is_empty() {
        return Ok(PeriodStats::default());
    }
    let Ranges { filter, index: range_index } = ranges_sql(ranges);
    let filter = format!("{filter}{}", event_filter([test]));
    let (actor, extra, stat) = match measure {
        Measure::Property { key, stat } => {
            let at = format!("indexOf(prop_keys, {})", quote(key));
            (None, vec![("stat_value", format!("if({at} > 0, prop_numbers[{at}], nan)"))], *stat)
        }
        Measure::PerActor { actor, stat } => (Some(actor), Vec::new(), *stat),
    };
    let value_column = if extra.is_empty() { "" } else { ", stat_value" };
    let select = Select { actor, split, tests: &[test], extra, ..Select::default() };
    let Inner { sql: inner, tables } = events_with_lines(http, project, select, &filter).await?;
    let (from, line) = by_line(&inner, &format!("{value_column}{}", passes(&[test])), split.is_some());
    let period = period_sql(periods, "time");
    let matching = test_sql(0, test);
    #[derive(Deserialize)]
    struct Row {
        range_of: i64,
        bucket: i64,
        line_of: u32,
        bits: u64,
    }
    let mut answers = Vec::new();
    for by_period in [true, false] {
        // Over a whole range every event is in bucket 0.
        let (bucket, group) = (if by_period { period.as_str() } else { "0" }, "range_of, bucket, line_of");
        // The values each statistic is taken of, one row per (range, bucket, line).
        let (values_sql, value) = match measure {
            Measure::Property { .. } => (
                format!(
                    "SELECT {range_index} AS range_of, {bucket} AS bucket, {line} AS line_of, stat_value AS v \
                     FROM {from} WHERE {matching} AND NOT isNaN(stat_value)"
                ),
                "v",
            ),
            Measure::PerActor { .. } => (
                format!(
                    "SELECT range_of, bucket, line_of, toFloat64(count()) AS v FROM \
                     (SELECT {range_index} AS range_of, {bucket} AS bucket, {line} AS line_of, \
                      arrayJoin(actors) AS actor FROM {from} WHERE {matching}) GROUP BY {group}, actor"
                ),
                "v",
            ),
        };
        let sql = format!(
            "SELECT range_of, bucket, line_of, reinterpretAsUInt64(reinterpretAsString(toFloat64({}))) AS bits \
             FROM (SELECT range_of, bucket, line_of, {} FROM ({values_sql}) GROUP BY {group}) WHERE range_of >= 0",
            stat_value_sql(stat),
            stat_aggregates_sql(stat, value),
        );
        let rows: Vec<Row> = http.rows_with(&sql, tables.clone()).await?;
        answers.push(rows);
    }
    let totals = answers.pop().unwrap_or_default();
    let cells = answers.pop().unwrap_or_default();
    Ok(PeriodStats {
        cells: cells
            .into_iter()
            .map(|r| PeriodStat { line: r.line_of, key: r.bucket, value: f64::from_bits(r.bits) })
            .collect(),
        totals: totals
            .into_iter()
            .map(|r| RangeStat { line: r.line_of, range: r.range_of as usize, value: f64::from_bits(r.bits) })
            .collect(),
    })
}

/// The aggregates a statistic needs over the values `v`, as select columns.
fn stat_aggregates_sql(stat: Stat, v: &str) -> String {
    match stat {
        Stat::Sum => format!("sum({v}) AS total"),
        Stat::Avg => format!("sum({v}) AS total, count() AS n"),
        Stat::Min => format!("min({v}) AS lowest"),
        Stat::Max => format!("max({v}) AS highest"),
        Stat::Quantile(_) => format!("arraySort(groupArray({v})) AS sorted"),
    }
}

/// The statistic from [`stat_aggregates_sql`]'s columns, computed as troupe's scan path does.
fn stat_value_sql(stat: Stat) -> String {
    match stat {
        Stat::Sum => "total".into(),
        Stat::Avg => "total / n".into(),
        Stat::Min => "lowest".into(),
        Stat::Max => "highest".into(),
        Stat::Quantile(p) => {
            let rank = format!("({} * (length(sorted) - 1))", float_literal(p));
            let (lo, hi) = (format!("floor({rank})"), format!("ceil({rank})"));
            format!(
                "sorted[toUInt64({lo}) + 1] + (sorted[toUInt64({hi}) + 1] - sorted[toUInt64({lo}) + 1]) * ({rank} - {lo})"
            )
        }
    }
}

/// The distinct texts of an event property over the project's events.
async fn texts(http: &Http, project: u32, key: &str) -> Result<Vec<String>> {
    #[derive(Deserialize)]
    struct Row {
        text: String,
    }
    let key = quote(key);
    let erasing = http.erasing().filter(http, project).await?;
    let sql = format!(
        "SELECT DISTINCT prop_texts[indexOf(prop_keys, {key})] AS text FROM events \
         WHERE project_id = {project}{erasing} AND has(prop_keys, {key})"
    );
    let rows: Vec<Row> = http.rows(&sql).await?;
    Ok(rows.into_iter().map(|r| r.text).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every request that reads the property index is recognised, so a project with unindexed
    /// rows leaves it to the scan path instead of answering from empty indexes.
    #[test]
    fn requests_reading_event_properties_are_recognised() {
        let by_property = SplitBy::EventProperty("plan".into());
        let split = Split { by: by_property.clone(), lines: Vec::new(), default_line: 0, unset_line: 0 };
        let on_property = EventTest {
            events: None,
            condition: Some(Condition::Not(Box::new(Condition::EventProperty {
                key: "plan".into(),
                test: ValueCondition::IsSet,
            }))),
        };
        let periods = Periods { tz: chrono_tz::UTC, unit: PeriodUnit::Day };
        let group = ActorKind::Group("company".into());
        let counts = |tests: Vec<EventTest>, split: Option<Split>| PeriodCountsRequest {
            actor: None,
            periods,
            tests,
            ranges: Vec::new(),
            split,
        };
        assert!(counts(vec![on_property.clone()], None).reads_properties());
        assert!(counts(vec![EventTest::any()], Some(split.clone())).reads_properties());
        assert!(!counts(vec![EventTest::any()], None).reads_properties());
        let streams = |keys: Option<SplitBy>| StreamsRequest {
            actor: group.clone(),
            tests: vec![EventTest::named("signup")],
            all_events: false,
            from: 0,
            to: 1,
            keys,
        };
        assert!(streams(Some(by_property)).reads_properties());
        assert!(!streams(Some(SplitBy::Group("company".into()))).reads_properties());
        let actors = ActorsRequest {
            actor: group.clone(),
            test: EventTest::any(),
            at_least: 1,
            from: 0,
            to: 1,
            on: Some((split.clone(), 0)),
        };
        assert!(actors.reads_properties());
        let patterns = PatternsRequest {
            actor: group,
            periods,
            tests: Vec::new(),
            first: Some(on_property),
            from: 0,
            to: 1,
            split: None,
        };
        assert!(patterns.reads_properties());
        let stats = PeriodStatsRequest {
            periods,
            test: EventTest::any(),
            measure: Measure::Property { key: "amount".into(), stat: Stat::Sum },
            ranges: Vec::new(),
            split: None,
        };
        assert!(stats.reads_properties());
    }
}
