//! The benchmark's questions, each as a troupe insight and as plain SQL over the embedded
//! store's tables, with one number both must agree on.

use serde_json::json;
use troupe_query::{Insight, InsightResult};

use super::generate::{Shape, FUNNEL, RETURN_EVENT};

pub struct Question {
    pub name: &'static str,
    pub insight: Insight,
    pub sql: String,
    /// The number compared with the SQL's single value.
    pub checksum: fn(&InsightResult) -> f64,
}

/// The first question, whose columns the physical limit is computed for.
pub const TREND: &str = "trend: unique companies per day";

pub fn all(shape: Shape, project: u32, slot: u8) -> serde_json::Result<Vec<Question>> {
    let from = (shape.end - chrono::Duration::days(shape.days)).format("%Y-%m-%d").to_string();
    let to = (shape.end - chrono::Duration::days(1)).format("%Y-%m-%d").to_string();
    let range = json!({"from": from, "to": to});
    let (f, t) = (format!("TIMESTAMP '{from}'"), format!("TIMESTAMP '{}'", shape.end.format("%Y-%m-%d")));
    let in_range = format!("project_id = {project} AND ts >= {f} AND ts < {t}");
    let company = format!("group_{slot}");
    let person = "coalesce((SELECT p.person_id FROM person_distinct_ids p WHERE p.project_id = e.project_id AND p.distinct_id = e.distinct_id), e.distinct_id)";
    let funnel = |count_by: serde_json::Value| {
        insight(
            json!({"kind": "funnel", "count_by": count_by, "date_range": range, "window": {"value": 14, "unit": "day"},
                       "steps": FUNNEL.iter().map(|e| json!({"event": e})).collect::<Vec<_>>()}),
        )
    };
    let funnel_sql = |actor: &str| {
        format!(
            "WITH s AS (SELECT {actor} AS a, ts, event FROM events e WHERE {in_range} AND event IN ('{0}', '{1}', '{2}')),
             e1 AS (SELECT a, ts AS t1 FROM s WHERE event = '{0}'),
             e2 AS (SELECT e1.a, e1.t1, min(s.ts) AS t2 FROM e1 JOIN s ON s.a = e1.a AND s.event = '{1}'
                    AND s.ts >= e1.t1 AND s.ts <= e1.t1 + INTERVAL 14 DAY GROUP BY e1.a, e1.t1),
             e3 AS (SELECT e2.a FROM e2 JOIN s ON s.a = e2.a AND s.event = '{2}'
                    AND s.ts >= e2.t2 AND s.ts <= e2.t1 + INTERVAL 14 DAY)
             SELECT count(DISTINCT a)::DOUBLE FROM e3",
            FUNNEL[0], FUNNEL[1], FUNNEL[2]
        )
    };
    Ok(vec![
        Question {
            name: TREND,
            insight: insight(json!({"kind": "trends", "count_by": {"group_type": "company"}, "date_range": range,
                                    "series": [{"math": "unique"}]}))?,
            sql: format!(
                "SELECT count(*)::DOUBLE FROM (SELECT DISTINCT date_trunc('day', ts) AS d, unnest({company}) AS a
                 FROM events WHERE {in_range})"
            ),
            checksum: |r| match r {
                InsightResult::Trends(t) => t.series[0].data.iter().sum(),
                _ => f64::NAN,
            },
        },
        Question {
            name: "funnel 3 steps 14 d, by companies",
            insight: funnel(json!({"group_type": "company"}))?,
            sql: funnel_sql(&format!("unnest({company})")),
            checksum: last_step,
        },
        Question {
            name: "funnel 3 steps 14 d, by users",
            insight: funnel(json!("users"))?,
            sql: funnel_sql(person),
            checksum: last_step,
        },
        Question {
            name: "retention weekly, by companies",
            insight: insight(json!({"kind": "retention", "count_by": {"group_type": "company"}, "date_range": range,
                                    "interval": "week", "week_start": "monday",
                                    "start": {"event": FUNNEL[0]}, "return": {"event": RETURN_EVENT}}))?,
            sql: format!(
                "WITH first AS (SELECT a, min(ts) AS f FROM (SELECT unnest({company}) AS a, ts FROM events
                                WHERE project_id = {project} AND event = '{0}' AND ts < {t}) GROUP BY a),
                 cohort AS (SELECT a, date_trunc('week', f) AS c FROM first WHERE f >= {f}),
                 ret AS (SELECT DISTINCT a, w FROM (SELECT unnest({company}) AS a, date_trunc('week', ts) AS w FROM events
                         WHERE {in_range} AND event = '{RETURN_EVENT}'))
                 SELECT count(*)::DOUBLE FROM cohort JOIN ret ON ret.a = cohort.a AND ret.w > cohort.c",
                FUNNEL[0]
            ),
            checksum: |r| match r {
                InsightResult::Retention(t) => {
                    t.rows.iter().flat_map(|row| row.values.iter().skip(1)).map(|c| c.count as f64).sum()
                }
                _ => f64::NAN,
            },
        },
        Question {
            name: "stickiness daily, by companies",
            insight: insight(json!({"kind": "stickiness", "count_by": {"group_type": "company"}, "date_range": range,
                                    "series": [{"event": RETURN_EVENT}]}))?,
            sql: format!(
                "SELECT count(*)::DOUBLE FROM (SELECT DISTINCT unnest({company}) AS a, date_trunc('day', ts) AS d
                 FROM events WHERE {in_range} AND event = '{RETURN_EVENT}')"
            ),
            checksum: |r| match r {
                InsightResult::Stickiness(s) => {
                    s.series[0].data.iter().enumerate().map(|(i, n)| ((i + 1) as u64 * n) as f64).sum()
                }
                _ => f64::NAN,
            },
        },
        Question {
            name: "trend by company plan (breakdown)",
            insight: insight(json!({"kind": "trends", "date_range": range,
                                    "breakdown": {"type": "group", "group_type": "company", "key": "plan"},
                                    "series": [{"event": "Dashboard Viewed"}]}))?,
            sql: format!(
                "SELECT count(*)::DOUBLE FROM (SELECT unnest({company}) AS a FROM events
                 WHERE {in_range} AND event = 'Dashboard Viewed') x
                 JOIN group_profiles g ON g.project_id = {project} AND g.slot = {slot} AND g.group_key = x.a
                 WHERE json_extract_string(g.properties, '$.plan') = 'enterprise'"
            ),
            checksum: |r| match r {
                InsightResult::Trends(t) => t
                    .series
                    .iter()
                    .find(|l| l.breakdown_value.as_deref() == Some("enterprise"))
                    .map_or(0.0, |l| l.aggregated_value),
                _ => f64::NAN,
            },
        },
        Question {
            name: "funnel over time daily, by companies",
            insight: {
                let mut q = serde_json::to_value(funnel(json!({"group_type": "company"}))?)?;
                q["conversion_over_time"] = json!(true);
                serde_json::from_value(q)?
            },
            // Per company and day of entry: whether a path entering that day completes.
            sql: format!(
                "WITH s AS (SELECT unnest({company}) AS a, ts, event FROM events e WHERE {in_range} AND event IN ('{0}', '{1}', '{2}')),
                 e1 AS (SELECT a, ts AS t1 FROM s WHERE event = '{0}'),
                 e2 AS (SELECT e1.a, e1.t1, min(s.ts) AS t2 FROM e1 JOIN s ON s.a = e1.a AND s.event = '{1}'
                        AND s.ts >= e1.t1 AND s.ts <= e1.t1 + INTERVAL 14 DAY GROUP BY e1.a, e1.t1),
                 e3 AS (SELECT DISTINCT e2.a, date_trunc('day', e2.t1) AS d FROM e2 JOIN s ON s.a = e2.a AND s.event = '{2}'
                        AND s.ts >= e2.t2 AND s.ts <= e2.t1 + INTERVAL 14 DAY)
                 SELECT count(*)::DOUBLE FROM e3",
                FUNNEL[0], FUNNEL[1], FUNNEL[2]
            ),
            checksum: |r| match r {
                InsightResult::Funnel(f) => f
                    .conversion_over_time
                    .as_ref()
                    .map_or(f64::NAN, |o| o.lines.iter().flat_map(|l| &l.converted).sum::<u64>() as f64),
                _ => f64::NAN,
            },
        },
        Question {
            name: "paths from sign-in 4 steps, by companies",
            insight: insight(json!({"kind": "paths", "count_by": {"group_type": "company"}, "date_range": range,
                                    "start": {"event": FUNNEL[0]}, "step_limit": 4, "edge_limit": 1000}))?,
            // Each company's events from its first sign-in, in (time, name) order, repeats in a
            // row merged, 4 steps at most: the transitions, summed.
            sql: format!(
                "WITH s AS (SELECT unnest({company}) AS a, ts, event FROM events WHERE {in_range}),
                 f AS (SELECT a, min(ts) AS t0 FROM s WHERE event = '{0}' GROUP BY a),
                 o AS (SELECT s.a, s.ts, s.event, lag(s.event) OVER (PARTITION BY s.a ORDER BY s.ts, s.event) AS prev
                       FROM s JOIN f ON s.a = f.a AND (s.ts > f.t0 OR (s.ts = f.t0 AND s.event >= '{0}')))
                 SELECT sum(least(n, 4) - 1)::DOUBLE FROM
                 (SELECT a, count(*) AS n FROM o WHERE prev IS NULL OR prev <> event GROUP BY a)",
                FUNNEL[0]
            ),
            // Transitions = each path's nodes less one: from the nodes, which (unlike the edges,
            // cut at edge_limit: at 10M there are more than 1,000) are all listed.
            checksum: |r| match r {
                InsightResult::Paths(p) => {
                    p.nodes.iter().map(|n| n.actors as f64).sum::<f64>() - p.actors_with_paths as f64
                }
                _ => f64::NAN,
            },
        },
    ])
}

fn insight(v: serde_json::Value) -> serde_json::Result<Insight> {
    serde_json::from_value(v)
}

fn last_step(r: &InsightResult) -> f64 {
    match r {
        InsightResult::Funnel(f) => f.steps.last().map_or(f64::NAN, |s| s.count as f64),
        _ => f64::NAN,
    }
}
