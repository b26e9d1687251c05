//! The schema and its numbered migrations.
//!
//! Tables are described once and their DDL generated for the deployment: on one server each is a
//! plain (Replacing)MergeTree table; on a cluster each is a `<name>_local` table created on every
//! listed node plus a Distributed table `<name>` over them, so troupe's SQL is the same in both.
//!
//! Versioned entities (projects, persons, distinct ids, groups, group types, charges, documents)
//! are ReplacingMergeTree rows with a `version` and a `deleted` flag; reads take the latest row per
//! key with `argMax` (see [`latest`]), which is right whether or not ClickHouse has merged yet.

use crate::http::{quote, Http};
use crate::ClickHouseError;

/// The schema version this build expects.
pub const SCHEMA_VERSION: u32 = 12;

/// Group type slots the events table has columns for (the default group type limit).
pub const DEFAULT_GROUP_COLUMNS: usize = 10;

struct Table {
    name: &'static str,
    columns: &'static str,
    /// `None`: MergeTree; `Some(column)`: ReplacingMergeTree on that version column.
    version: Option<&'static str>,
    partition_by: Option<&'static str>,
    order_by: &'static str,
    /// Rows with one sharding key live on one shard: every version of an entity, every event of
    /// a person as resolved at ingest.
    shard_by: &'static str,
    /// `SETTINGS …` of the table, if any.
    settings: Option<&'static str>,
}

const TABLES_V1: &[Table] = &[
    Table {
        name: "projects",
        columns: "id UInt32, name String, ingestion_key String, secret_key_hash String, created_at Int64, version UInt64, deleted UInt8",
        version: Some("version"),
        partition_by: None,
        order_by: "id",
        shard_by: "id",
        settings: None,
    },
    Table {
        name: "group_types",
        columns: "project_id UInt32, slot UInt8, name String, display_name String, version UInt64, deleted UInt8",
        version: Some("version"),
        partition_by: None,
        order_by: "(project_id, slot)",
        shard_by: "cityHash64(project_id, slot)",
        settings: None,
    },
    Table {
        name: "persons",
        columns: "project_id UInt32, id String, distinct_ids Array(String), properties String, identified UInt8, \
                  created_at Int64, updated_at Int64, membership_slots Array(UInt8), \
                  membership_keys Array(Array(String)), version UInt64, deleted UInt8",
        version: Some("version"),
        partition_by: None,
        order_by: "(project_id, id)",
        shard_by: "cityHash64(project_id, id)",
        settings: None,
    },
    Table {
        name: "person_distinct_ids",
        columns: "project_id UInt32, distinct_id String, person_id String, version UInt64, deleted UInt8",
        version: Some("version"),
        partition_by: None,
        order_by: "(project_id, distinct_id)",
        shard_by: "cityHash64(project_id, distinct_id)",
        settings: None,
    },
    Table {
        name: "group_profiles",
        columns: "project_id UInt32, slot UInt8, group_key String, name Nullable(String), properties String, \
                  created_at Int64, updated_at Int64, version UInt64, deleted UInt8",
        version: Some("version"),
        partition_by: None,
        order_by: "(project_id, slot, group_key)",
        shard_by: "cityHash64(project_id, slot, group_key)",
        settings: None,
    },
    Table {
        name: "charges",
        columns: "project_id UInt32, id String, person_id String, amount Float64, properties String, time Int64, \
                  version UInt64, deleted UInt8",
        version: Some("version"),
        partition_by: None,
        order_by: "(project_id, id)",
        shard_by: "cityHash64(project_id, id)",
        settings: None,
    },
    Table {
        name: "documents",
        columns: "project_id UInt32, kind String, id String, body String, created_at Int64, updated_at Int64, \
                  version UInt64, deleted UInt8",
        version: Some("version"),
        partition_by: None,
        order_by: "(project_id, kind, id)",
        shard_by: "cityHash64(project_id, kind, id)",
        settings: None,
    },
    // `ts` is microseconds (18.16 has no DateTime64); `time` is the same in seconds for
    // partitioning, ordering and ClickHouse's date functions. Group ids per type slot are columns
    // `group_<slot>` (added below), so counting by a group type is a column switch.
    Table {
        name: "events",
        columns: "project_id UInt32, uuid String, dedup_key UInt64, event String, distinct_id String, \
                  person_id String, ts Int64, time DateTime, received_at Int64, properties String, \
                  groups_untyped Array(String)",
        version: None,
        partition_by: Some("toYYYYMM(time)"),
        order_by: "(project_id, toDate(time), event, cityHash64(person_id), ts)",
        shard_by: "cityHash64(project_id, person_id)",
        settings: None,
    },
];

/// Version 2: the writer's heartbeats, so a second writer on the same database is refused.
const TABLES_V2: &[Table] = &[Table {
    name: "writers",
    columns: "writer_id String, started_at Int64, heartbeat Int64, stopped UInt8",
    version: Some("heartbeat"),
    partition_by: None,
    order_by: "writer_id",
    shard_by: "cityHash64(writer_id)",
    settings: None,
}];

/// Version 3: each event's set top-level properties read as filters read them
/// ([`troupe_store::value::PropertyIndex`]), so event-property filters run in SQL exactly.
/// Rows written before have `props_indexed = 0`; questions that would need them stay on the
/// scan path.
const EVENT_COLUMNS_V3: &[(&str, &str)] = &[
    ("events", "prop_keys Array(String)"),
    ("events", "prop_texts Array(String)"),
    ("events", "prop_lowers Array(String)"),
    ("events", "prop_numbers Array(Float64)"),
    ("events", "prop_kinds Array(UInt8)"),
    ("events", "props_indexed UInt8 DEFAULT 0"),
];

/// Version 4: retry keys of resent writes, recognised across a restart
/// (`troupe_core::dedupe::RetryRecord`): guarded commands' client ids (forever) and content keys
/// of writes without an id (read back only while inside the retry window).
const TABLES_V4: &[Table] = &[Table {
    name: "retry_keys",
    columns: "project_id UInt32, key UInt64, seen_at Int64, forever UInt8",
    version: None,
    partition_by: None,
    order_by: "(project_id, key)",
    shard_by: "cityHash64(project_id, key)",
    settings: None,
}];

/// Version 5: the hash of every client event id, keyed for lookup, so the writer asks ClickHouse
/// whether a batch's ids were stored before instead of holding every id ever seen. A
/// materialized view fills it from each insert into `events` (the key lands with its event, in
/// the same INSERT statement); the migration copies the ids stored before. A lookup reads one
/// granule per id, so granules are small.
const TABLES_V5: &[Table] = &[Table {
    name: "client_keys",
    columns: "project_id UInt32, key UInt64",
    version: None,
    partition_by: None,
    order_by: "(project_id, key)",
    shard_by: "cityHash64(project_id, key)",
    settings: Some("index_granularity = 256"),
}];

/// Statements run on each node after a migration's tables exist; `{events}`, `{client_keys}`,
/// `{retry_keys}` and `{projects}` stand for the node's local tables, `{events_v7_engine}` for the engine of
/// version 7's copy of events.
const STATEMENTS_V5: &[&str] = &[
    "CREATE MATERIALIZED VIEW IF NOT EXISTS client_keys_of_events TO {client_keys} AS \
     SELECT project_id, dedup_key AS key FROM {events} WHERE dedup_key != 0",
    // Rows the view also wrote (events inserted since it exists) are copied twice: a lookup
    // only asks whether a key is there.
    "INSERT INTO {client_keys} SELECT project_id, dedup_key AS key FROM {events} WHERE dedup_key != 0",
];

/// Version 6: whether a project ever stored an event with untyped group ids (Trodo's `groups`
/// list), sticky (`max`). Questions by a group type name untyped ids only then, so the SQL of a
/// project without any reads the type's column as it is. Projects with such events are marked.
const PROJECT_COLUMNS_V6: &[(&str, &str)] = &[("projects", "has_untyped UInt8 DEFAULT 0")];

const STATEMENTS_V6: &[&str] = &[
    // `events` is the whole table on a cluster (a project's events live on every shard).
    "INSERT INTO {projects} (id, name, ingestion_key, secret_key_hash, created_at, version, deleted, has_untyped) \
     SELECT id, argMax(name, version), argMax(ingestion_key, version), argMax(secret_key_hash, version), \
     argMax(created_at, version), max(version), argMax(deleted, version), 1 FROM {projects} \
     WHERE id IN (SELECT DISTINCT project_id FROM events WHERE notEmpty(groups_untyped)) GROUP BY id",
];

/// Version 7: events sorted by event name before the date, `(project_id, event, toDate(time),
/// cityHash64(person_id), ts)`. Nearly every question names its events: their rows are then one
/// run per name and month instead of one per day, name and part (at 1M events, counting one
/// event's rows of 90 days 20 → 7 ms; the stickiness question's SQL 34 → 14 ms; a question over
/// all events the same). Within a day and an event a person's events stay adjacent and in time
/// order. ClickHouse cannot change a sort key in place: the table is copied into the new layout
/// (each node its own rows) and swapped in, and the view filling `client_keys` moves with it.
/// Every step may run again if a migration is interrupted (the copy starts over).
const STATEMENTS_V7: &[&str] = &[
    "DROP TABLE IF EXISTS {events}_v6",
    "CREATE TABLE IF NOT EXISTS {events}_v7 AS {events} ENGINE = {events_v7_engine} PARTITION BY toYYYYMM(time) \
     ORDER BY (project_id, event, toDate(time), cityHash64(person_id), ts)",
    "TRUNCATE TABLE {events}_v7",
    "INSERT INTO {events}_v7 SELECT * FROM {events}",
    "DROP TABLE IF EXISTS client_keys_of_events",
    "RENAME TABLE {events} TO {events}_v6, {events}_v7 TO {events}",
    "CREATE MATERIALIZED VIEW IF NOT EXISTS client_keys_of_events TO {client_keys} AS \
     SELECT project_id, dedup_key AS key FROM {events} WHERE dedup_key != 0",
    "DROP TABLE {events}_v6",
];

/// Version 8: guarded writes' client ids live in `client_keys` beside the events' instead of in
/// `retry_keys` (`forever = 1`), whose sort key mixes them with every id-less write's content key
/// of the retry window: a batch's lookup of 500 ids read all of those (1M rows after a 1M-event
/// load), now only the granules of `client_keys` its ids fall in. The ids kept so far are copied.
const STATEMENTS_V8: &[&str] =
    &["INSERT INTO {client_keys} SELECT project_id, key FROM {retry_keys} WHERE forever = 1"];

/// Version 9: erasures in flight (`crate::erasing`): while an erasure's mutations run, reads
/// leave out the events of the erased ids' hashes received before it. Rows live only that long.
const TABLES_V9: &[Table] = &[Table {
    name: "erasing",
    columns: "project_id UInt32, key UInt64, before Int64",
    version: None,
    partition_by: None,
    order_by: "(project_id, key)",
    shard_by: "cityHash64(project_id, key)",
    settings: None,
}];

/// Version 10: hashes of the ids of persons erased for good (`troupe_core::state::kept_out_key`):
/// the writer reads them at start (there are few) and drops writes naming one.
const TABLES_V10: &[Table] = &[Table {
    name: "kept_out",
    columns: "project_id UInt32, key UInt64",
    version: None,
    partition_by: None,
    order_by: "(project_id, key)",
    shard_by: "cityHash64(project_id, key)",
    settings: None,
}];

/// Version 11: per membership slot, when a `set_group` last replaced the person's set of the type
/// (µs, 0: built by `add_group` only), parallel to `membership_slots`. An identify merge keeps
/// the most recent `set_group` of a type whole and unions sets built by adds. Rows written
/// before read as add-built.
const PERSON_COLUMNS_V11: &[(&str, &str)] = &[("persons", "membership_replaced_at Array(Int64) DEFAULT []")];

/// Version 12: the audit log (keys, members, settings, group types, erasures), appended and read
/// newest first a page at a time. Entry ids sort in time order.
const TABLES_V12: &[Table] = &[Table {
    name: "audit_log",
    columns: "project_id UInt32, id String, at Int64, actor String, action String, target String, details String",
    version: None,
    partition_by: None,
    order_by: "(project_id, id)",
    shard_by: "cityHash64(project_id)",
    settings: None,
}];

struct Migration {
    version: u32,
    tables: &'static [Table],
    /// `(table, column definition)` added to existing tables.
    columns: &'static [(&'static str, &'static str)],
    statements: &'static [&'static str],
}

/// The migrations, in order.
const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, tables: TABLES_V1, columns: &[], statements: &[] },
    Migration { version: 2, tables: TABLES_V2, columns: &[], statements: &[] },
    Migration { version: 3, tables: &[], columns: EVENT_COLUMNS_V3, statements: &[] },
    Migration { version: 4, tables: TABLES_V4, columns: &[], statements: &[] },
    Migration { version: 5, tables: TABLES_V5, columns: &[], statements: STATEMENTS_V5 },
    Migration { version: 6, tables: &[], columns: PROJECT_COLUMNS_V6, statements: STATEMENTS_V6 },
    Migration { version: 7, tables: &[], columns: &[], statements: STATEMENTS_V7 },
    Migration { version: 8, tables: &[], columns: &[], statements: STATEMENTS_V8 },
    Migration { version: 9, tables: TABLES_V9, columns: &[], statements: &[] },
    Migration { version: 10, tables: TABLES_V10, columns: &[], statements: &[] },
    Migration { version: 11, tables: &[], columns: PERSON_COLUMNS_V11, statements: &[] },
    Migration { version: 12, tables: TABLES_V12, columns: &[], statements: &[] },
];

/// Whether the database has this table on `node`.
pub async fn has_table(http: &Http, node: &str, name: &str) -> Result<bool, ClickHouseError> {
    let sql = format!(
        "SELECT name FROM system.tables WHERE database = {} AND name = {}",
        quote(&http.config().database),
        quote(name)
    );
    Ok(!http.system_rows::<serde_json::Value>(node, &sql).await?.is_empty())
}

/// The engine of a local table: (Replacing)MergeTree, replicated when the deployment is (its
/// ZooKeeper path named after `local`).
fn engine(http: &Http, local: &str, version: Option<&str>) -> String {
    let config = http.config();
    let family = if version.is_some() { "ReplacingMergeTree" } else { "MergeTree" };
    match (config.replicated, version) {
        (false, None) => format!("{family}()"),
        (false, Some(v)) => format!("{family}({v})"),
        (true, version) => {
            let path = format!("'/clickhouse/tables/{{shard}}/{}/{local}', '{{replica}}'", config.database);
            match version {
                Some(v) => format!("Replicated{family}({path}, {v})"),
                None => format!("Replicated{family}({path})"),
            }
        }
    }
}

/// The DDL that creates one table for this deployment.
fn create_table(http: &Http, table: &Table) -> Vec<String> {
    let config = http.config();
    let local = if config.cluster.is_some() { format!("{}_local", table.name) } else { table.name.to_string() };
    let engine = engine(http, &local, table.version);
    let partition = table.partition_by.map(|p| format!(" PARTITION BY {p}")).unwrap_or_default();
    let settings = table.settings.map(|s| format!(" SETTINGS {s}")).unwrap_or_default();
    let mut ddl = vec![format!(
        "CREATE TABLE IF NOT EXISTS {local} ({}) ENGINE = {engine}{partition} ORDER BY {}{settings}",
        table.columns, table.order_by
    )];
    if let Some(cluster) = &config.cluster {
        ddl.push(format!(
            "CREATE TABLE IF NOT EXISTS {name} AS {local} ENGINE = Distributed({cluster}, {db}, {local}, {shard})",
            name = table.name,
            db = config.database,
            shard = table.shard_by
        ));
    }
    ddl
}

/// The tables a name stands for on this deployment (the local one first).
pub fn physical_tables(http: &Http, name: &str) -> Vec<String> {
    match http.config().cluster {
        Some(_) => vec![format!("{name}_local"), name.to_string()],
        None => vec![name.to_string()],
    }
}

/// Apply every migration newer than each node's version, on every node, and make sure the events
/// table has `group_slots` group columns. Idempotent.
pub async fn migrate(http: &Http, group_slots: usize) -> Result<u32, ClickHouseError> {
    let db = http.config().database.clone();
    let nodes = http.config().nodes.clone();
    // Every node gets its tables and columns first: a migration's statements may read the whole
    // cluster through a Distributed table. A run stopped part-way does it all again (each step
    // is safe to repeat).
    let mut pending: Vec<(String, Vec<&Migration>)> = Vec::new();
    for node in &nodes {
        http.execute_on(node, &format!("CREATE DATABASE IF NOT EXISTS {db}"), false).await?;
        http.execute_on(
            node,
            "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, applied_at DateTime DEFAULT now()) \
             ENGINE = MergeTree() ORDER BY version",
            true,
        )
        .await?;
        let current = node_version(http, node).await?;
        let migrations: Vec<&Migration> = MIGRATIONS.iter().filter(|m| m.version > current).collect();
        for migration in &migrations {
            for table in migration.tables {
                for ddl in create_table(http, table) {
                    http.execute_on(node, &ddl, true).await?;
                }
            }
            for (table, column) in migration.columns {
                add_column(http, node, table, column).await?;
            }
        }
        ensure_group_columns(http, node, group_slots.max(DEFAULT_GROUP_COLUMNS)).await?;
        pending.push((node.clone(), migrations));
    }
    let local = |name: &str| physical_tables(http, name).remove(0);
    for (node, migrations) in &pending {
        for migration in migrations {
            for statement in migration.statements {
                let v7 = format!("{}_v7", local("events"));
                let sql = statement
                    .replace("{events_v7_engine}", &engine(http, &v7, None))
                    .replace("{events}", &local("events"))
                    .replace("{client_keys}", &local("client_keys"))
                    .replace("{retry_keys}", &local("retry_keys"))
                    .replace("{projects}", &local("projects"));
                http.execute_on(node, &sql, true).await?;
            }
            let version = migration.version;
            http.execute_on(node, &format!("INSERT INTO schema_migrations (version) VALUES ({version})"), true).await?;
        }
        tune_for_current_release(http, node).await?;
    }
    Ok(SCHEMA_VERSION)
}

/// What a current release (22.2 and later) takes beyond the SQL both releases share; nothing on
/// 18.16.
///
/// - Inserts of events carrying the same deduplication token are stored once (see
///   `persist::events_token`). A plain MergeTree table remembers no insert by default: give it
///   a window of its latest inserts (replicated tables have one already).
/// - The property columns (the JSON and the index's texts) compress with ZSTD: 108.5 -> 84.2
///   bytes per event on the bench's events in 26.9. 18.16 has no column codecs.
async fn tune_for_current_release(http: &Http, node: &str) -> Result<(), ClickHouseError> {
    if !http.takes_insert_tokens(node).await? {
        return Ok(());
    }
    let local = physical_tables(http, "events").remove(0);
    if !http.config().replicated {
        let sql = format!("ALTER TABLE {local} MODIFY SETTING non_replicated_deduplication_window = {INSERT_WINDOW}");
        http.execute_on(node, &sql, true).await?;
    }
    // The local table holds the data (a Distributed table has none to compress).
    let sql = format!(
        "ALTER TABLE {local} MODIFY COLUMN properties String CODEC(ZSTD(3)), \
         MODIFY COLUMN prop_texts Array(String) CODEC(ZSTD(3)), \
         MODIFY COLUMN prop_lowers Array(String) CODEC(ZSTD(3))"
    );
    http.execute_on(node, &sql, true).await
}

/// How many of the events table's latest inserts ClickHouse remembers by token.
const INSERT_WINDOW: u32 = 1000;

/// Add a column to a table (and its local table on a cluster) unless a previous, interrupted run
/// added it already.
async fn add_column(http: &Http, node: &str, table: &str, column: &str) -> Result<(), ClickHouseError> {
    #[derive(serde::Deserialize)]
    struct Row {
        n: u64,
    }
    let name = column.split_whitespace().next().unwrap_or(column);
    for physical in physical_tables(http, table) {
        let sql = format!(
            "SELECT count() AS n FROM system.columns WHERE database = {} AND table = {} AND name = {}",
            quote(&http.config().database),
            quote(&physical),
            quote(name)
        );
        let rows: Vec<Row> = http.rows_on(node, &sql).await?;
        if rows.first().is_none_or(|r| r.n == 0) {
            http.execute_on(node, &format!("ALTER TABLE {physical} ADD COLUMN {column}"), true).await?;
        }
    }
    Ok(())
}

async fn node_version(http: &Http, node: &str) -> Result<u32, ClickHouseError> {
    #[derive(serde::Deserialize)]
    struct Row {
        v: u32,
    }
    let rows: Vec<Row> = http.rows_on(node, "SELECT toUInt32(max(version)) AS v FROM schema_migrations").await?;
    Ok(rows.first().map(|r| r.v).unwrap_or(0))
}

async fn ensure_group_columns(http: &Http, node: &str, slots: usize) -> Result<(), ClickHouseError> {
    let have = group_columns_on(http, node).await?;
    for slot in have..slots {
        for table in physical_tables(http, "events") {
            http.execute_on(node, &format!("ALTER TABLE {table} ADD COLUMN group_{slot} Array(String)"), true).await?;
        }
    }
    Ok(())
}

/// How many `group_<slot>` columns the events table has on a node.
async fn group_columns_on(http: &Http, node: &str) -> Result<usize, ClickHouseError> {
    #[derive(serde::Deserialize)]
    struct Row {
        n: u64,
    }
    let sql = format!(
        "SELECT count() AS n FROM system.columns WHERE database = '{}' AND table = 'events' AND match(name, '^group_[0-9]+$')",
        http.config().database
    );
    let rows: Vec<Row> = http.rows_on(node, &sql).await?;
    Ok(rows.first().map(|r| r.n as usize).unwrap_or(0))
}

/// Check, on every node, that the schema is the one this build expects and has the group
/// columns asked for; say what to do when it is not. Returns the number of group columns.
pub async fn check(http: &Http, group_slots: usize) -> Result<usize, ClickHouseError> {
    let mut columns = usize::MAX;
    for node in http.config().nodes.clone() {
        let exists = has_table(http, &node, "schema_migrations").await?;
        let version = if exists { node_version(http, &node).await? } else { 0 };
        if version < SCHEMA_VERSION {
            return Err(ClickHouseError::Schema(format!(
                "the ClickHouse database '{}' on {node} is at schema version {version}, this troupe needs {SCHEMA_VERSION}: \
                 run `troupe migrate --store <the same clickhouse:// URL>` first",
                http.config().database
            )));
        }
        if version > SCHEMA_VERSION {
            return Err(ClickHouseError::Schema(format!(
                "the ClickHouse database on {node} is at schema version {version}, newer than this troupe \
                 ({SCHEMA_VERSION}): upgrade troupe"
            )));
        }
        columns = columns.min(group_columns_on(http, &node).await?);
    }
    if columns < group_slots {
        return Err(ClickHouseError::Schema(format!(
            "the events table has {columns} group type columns but the group type limit is {group_slots}: \
             run `troupe migrate` with the same --max-group-types"
        )));
    }
    Ok(columns)
}

/// A subquery with the latest row of every key of a versioned table in one project (deleted keys
/// left out), exposing `keys` and `values` under their own names. `key_filter` narrows the keys
/// read and may name key columns only: a condition on a value must see the latest row, so it
/// belongs in the outer query (filtering versions first would resurrect an older row).
///
/// Each value has its own `argMax` under a suffixed alias: an alias equal to a column name would
/// shadow the column inside the aggregate on older ClickHouse, and 18.16 crashes on `argMax` of a
/// tuple holding a Nullable in distributed queries.
pub fn latest(table: &str, project: u32, keys: &[&str], values: &[&str], key_filter: &str) -> String {
    let key_list = keys.join(", ");
    let inner: Vec<String> =
        values.iter().chain(std::iter::once(&"deleted")).map(|v| format!("argMax({v}, version) AS {v}__")).collect();
    let outer: Vec<String> = values.iter().map(|v| format!("{v}__ AS {v}")).collect();
    let filter = if key_filter.is_empty() { String::new() } else { format!(" AND ({key_filter})") };
    format!(
        "(SELECT {key_list}, {outer} FROM (SELECT {key_list}, {inner} FROM {table} \
         WHERE project_id = {project}{filter} GROUP BY {key_list}) WHERE deleted__ = 0)",
        outer = outer.join(", "),
        inner = inner.join(", ")
    )
}
