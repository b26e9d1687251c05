//! End to end: the insight builder in Debian's headless Chromium against a running troupe with
//! demo data (tests/acceptance/builder.cjs). Every table, change and number the page showed is
//! recomputed here from the JSON API with the question read from the page's URL, so the URL is
//! the whole question and the UI's numbers are the API's. Screenshots of every page at 1440 and
//! 390 px are kept in `<target>/tmp/builder-screenshots/`.

mod common;

use std::collections::BTreeMap;

use common::{browser_flow, fmt_count, get, post_query, Server};
use serde_json::{json, Value};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pm_builds_with_pickers_shares_the_link_saves_and_adds_to_a_chosen_dashboard() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &["--demo"]);
    let (seen, shots) = browser_flow(&server, "builder.cjs", "builder-screenshots").await;

    // Pickers: "sgnd in" found "Signed In"; the breakdown kept its company source; the filter's
    // values were the data's.
    assert_eq!(seen["fuzzy_event"], json!("Signed In"));
    assert_eq!(seen["breakdown_source_kept"], json!("group:company"));
    let trend_question = &seen["trend"]["question"];
    assert_eq!(trend_question["series"][0], json!({"event": "Signed In", "math": "unique"}));
    assert_eq!(trend_question["count_by"], json!({"group_type": "company"}));
    assert_eq!(trend_question["breakdown"], json!({"type": "group", "group_type": "company", "key": "plan"}));
    let filter = &trend_question["filters"]["and"][0];
    assert_eq!((filter["type"].clone(), filter["key"].clone()), (json!("event"), json!("method")));
    let values = get(&server, "/api/projects/default/catalog/values?key=method&event=Signed%20In").await;
    let offered: Vec<Value> = values["results"].as_array().into_iter().flatten().map(|v| v["value"].clone()).collect();
    assert_eq!(seen["offered_values"], json!(offered), "the value picker offers the data's values, most common first");
    assert_eq!(seen["picked_value"], offered[0]);
    assert_eq!(filter["value"], offered[0]);

    // Every number of the table is the API's for the URL's question.
    // The flow ends by setting the project's zone to Tokyo; what it read before was in UTC.
    let trend = post_query(&server, in_utc(trend_question)).await;
    assert_eq!(seen["trend"]["numbers"], trends_table(&trend, trend_question), "{}", seen["trend"]["numbers"]);
    assert!(trend["series"].as_array().map_or(0, Vec::len) > 1, "a line per plan");

    // The link reopens the same question; reload and Back keep it.
    assert_eq!(seen["other_tab_same"], json!(true));
    assert_eq!(seen["other_tab_breakdown"], json!("plan"));
    assert_eq!(seen["reload_same"], json!(true));
    assert_eq!(seen["after_edit_range"], json!("-7d"));
    assert_eq!(seen["after_back_range"], json!("-30d"));
    assert_eq!(seen["after_back_same"], json!(true));

    // Compare: each current line's change from the previous period, as the API's numbers give it.
    let compared_question = &seen["compare"]["question"];
    assert_eq!(compared_question["compare"], json!(true));
    let compared = post_query(&server, in_utc(compared_question)).await;
    assert_eq!(seen["compare"]["changes"], json!(changes(&compared)));
    assert!(!changes(&compared).is_empty(), "the 14 days before have data: a change per line");
    assert_eq!(
        seen["big_numbers"],
        json!(current(&compared)
            .iter()
            .map(|l| fmt(l["aggregated_value"].as_f64().unwrap_or(-1.0)))
            .collect::<Vec<_>>())
    );

    // Each further control, read back from the URL, answers as the API does.
    let formula = &seen["control_formula"];
    assert_eq!(formula["question"]["formula"], json!("B / A"));
    assert_eq!(formula["question"]["series"][1]["event"], json!("Chart Created"));
    let answer = post_query(&server, in_utc(&formula["question"])).await;
    let only_formula = lines_where(&answer, |l| l["series"].is_null());
    assert_eq!(formula["numbers"], trends_table(&only_formula, &formula["question"]), "the formula alone");
    assert_eq!(formula["legend"], json!(1));
    let inputs = &seen["control_formula_inputs"];
    assert_eq!(inputs["view"], json!({"show_inputs": true}));
    assert_eq!(inputs["numbers"], trends_table(&answer, &inputs["question"]), "the formula and its series");
    let cumulative = &seen["control_cumulative"];
    assert_eq!(cumulative["question"]["cumulative"], json!(true));
    let answer = post_query(&server, in_utc(&cumulative["question"])).await;
    assert_eq!(cumulative["numbers"], trends_table(&answer, &cumulative["question"]));
    let funnel = &seen["control_funnel"];
    assert_eq!(
        (funnel["question"]["order"].clone(), funnel["question"]["window"].clone()),
        (json!("unordered"), json!({"value": 2, "unit": "hour"}))
    );
    let answer = post_query(&server, in_utc(&funnel["question"])).await;
    let shown: Vec<Value> = funnel["numbers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|r| r[0] == json!("All"))
        .map(|r| r[2].clone())
        .collect();
    let counts: Vec<Value> = answer["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| json!(fmt(s["count"].as_f64().unwrap_or(-1.0))))
        .collect();
    assert_eq!(shown, counts);
    assert_eq!(seen["control_funnel_time"]["view"], json!({"funnel": "time"}));
    let mut timed = in_utc(&funnel["question"]);
    timed["time_to_convert"] = json!({});
    let bins = post_query(&server, timed).await["time_to_convert"]["bins"].as_array().map_or(0, Vec::len);
    assert_eq!(seen["control_funnel_time"]["bins"], json!(bins));
    let retention = &seen["control_retention"];
    assert_eq!(
        (retention["question"]["cohorting"].clone(), retention["question"]["cumulative"].clone()),
        (json!("recurring"), json!(true))
    );
    let answer = post_query(&server, in_utc(&retention["question"])).await;
    let sizes: Vec<Value> = answer["rows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| json!(fmt(r["size"].as_f64().unwrap_or(-1.0))))
        .collect();
    let shown: Vec<Value> =
        retention["numbers"].as_array().into_iter().flatten().skip(1).map(|r| r[2].clone()).collect();
    assert_eq!(shown, sizes);
    let paths = &seen["control_paths"];
    assert_eq!(
        (paths["question"]["kind"].clone(), paths["question"]["step_limit"].clone()),
        (json!("paths"), json!(3))
    );
    let answer = post_query(&server, in_utc(&paths["question"])).await;
    let mut expected = vec![json!(["Path", "Actors"])];
    for sequence in answer["sequences"].as_array().into_iter().flatten() {
        let steps: Vec<&str> = sequence["steps"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        expected.push(json!([steps.join(" → "), fmt(sequence["actors"].as_f64().unwrap_or(-1.0))]));
    }
    assert!(expected.len() > 1, "the demo has paths");
    assert_eq!(paths["numbers"], json!(expected));

    // A custom range: dates in the URL, numbers from the API.
    let custom_question = &seen["custom"]["question"];
    let range = &custom_question["date_range"];
    assert!(
        range["from"].as_str().is_some_and(|d| d.len() == 10) && range["to"].as_str().is_some_and(|d| d.len() == 10),
        "{range}"
    );
    let custom = post_query(&server, in_utc(custom_question)).await;
    assert_eq!(seen["custom"]["numbers"], trends_table(&custom, custom_question));
    assert_eq!(custom["buckets"].as_array().map(Vec::len), Some(15), "from 20 to 6 days ago, both whole days");

    // Saved, then saved as new with the edit, then the copy renamed; the first stays as saved.
    let insights = get(&server, "/api/projects/default/insights").await;
    let by_id = |id: &Value| insights["results"].as_array().into_iter().flatten().find(|i| &i["id"] == id).cloned();
    let first = by_id(&seen["saved"]["id"]).expect("the saved insight");
    assert_eq!(first["name"], json!("Companies signing in"));
    assert_eq!(first["query"], seen["saved"]["question"]);
    assert_eq!(first["query"]["interval"], json!("day"));
    assert_eq!(seen["unsaved_badge"], json!(1), "an edit after saving is marked");
    let copy = by_id(&seen["copy"]["id"]).expect("the copy");
    assert_ne!(seen["copy"]["id"], seen["saved"]["id"]);
    assert_eq!(copy["name"], json!("Weekly companies"));
    assert_eq!(copy["query"]["interval"], json!("week"));
    assert_eq!(copy["query"], seen["copy"]["question"]);
    assert_eq!(seen["copy"]["unsaved"], json!(0));

    // The chosen dashboard got the chosen insight; the other did not.
    assert_eq!(seen["dashboard_choices"], json!(["Alpha (0)", "Beta (0)", "New dashboard…"]));
    let dashboards = get(&server, "/api/projects/default/dashboards").await;
    let named =
        |n: &str| dashboards["results"].as_array().into_iter().flatten().find(|d| d["name"] == json!(n)).cloned();
    assert_eq!(named("Beta").map(|d| d["insights"].clone()), Some(json!([seen["saved"]["id"]])));
    assert_eq!(named("Alpha").map(|d| d["insights"].clone()), Some(json!([])));
    assert_eq!(seen["beta_tiles"], json!(["Companies signing in"]));

    // Tokyo's days: the API (which now cuts in the project's zone) and the page agree, and the
    // buckets start at Tokyo's midnight.
    let tokyo_question = &seen["tokyo"]["question"];
    assert!(tokyo_question.get("timezone").is_none(), "the page sends no zone: the project's applies");
    let tokyo = post_query(&server, tokyo_question.clone()).await;
    assert!(tokyo["buckets"][0].as_str().is_some_and(|b| b.ends_with("T00:00:00+09:00")), "{}", tokyo["buckets"][0]);
    assert_eq!(seen["tokyo"]["numbers"], trends_table(&tokyo, tokyo_question));

    // Nothing wider than a phone, no script errors.
    for (page, overflow) in seen["phone_overflow"].as_object().into_iter().flatten() {
        assert_eq!(overflow, &json!(0), "{page} is wider than 390 px");
    }
    assert_eq!(seen["dark_background"], json!("rgb(15, 17, 23)"), "dark mode follows the system");
    assert_eq!(seen["nav_on_sign_in"], json!(false), "the sign-in page has no navigation");
    assert_eq!(seen["sign_in_overflow"], json!(0));
    assert_eq!(seen["page_errors"], json!([]));
    for width in [1440, 390] {
        for page in [
            "groups",
            "insight-trends",
            "insight-funnel",
            "dashboard",
            "settings",
            "group-profile",
            "person",
            "cohorts",
            "insight-retention",
            "insight-stickiness",
            "insight-lifecycle",
            "insight-paths",
            "sign-in",
        ] {
            assert!(
                shots.join(format!("3{}-{page}-{width}.png", u8::from(width == 390))).exists(),
                "{page} at {width}"
            );
        }
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actors_of_every_chart_kind_export_and_become_cohorts_that_filter() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server = Server::start(dir.path(), &["--demo"]);
    let (seen, _shots) = browser_flow(&server, "actors.cjs", "actors-screenshots").await;

    // Each kind's mark listed the API's actors for the request the page made: the count, a
    // page of 25 rows, and every one of them in the CSV, in order.
    let mut listed = BTreeMap::new();
    for kind in [
        "trend_point",
        "funnel_step",
        "funnel_dropped",
        "retention_cell",
        "stickiness_bar",
        "paths_band",
        "lifecycle_bar",
    ] {
        let shown = &seen[kind];
        let asked = &shown["asked"];
        assert!(asked["actors"].is_object(), "{kind}: the page asked for actors: {shown}");
        let answer = post_query(&server, asked.clone()).await;
        let actors = answer["actors"].as_array().cloned().unwrap_or_default();
        let keys: Vec<String> = actors.iter().map(|a| a["key"].as_str().unwrap_or_default().to_string()).collect();
        assert!(
            shown["count"].as_str().is_some_and(|c| c.starts_with(&format!("{} ", fmt(keys.len() as f64)))),
            "{kind}: {shown}"
        );
        assert_eq!(shown["rows"], json!(keys.len().min(25)), "{kind}");
        if keys.is_empty() {
            assert_eq!(shown["csv"], Value::Null, "{kind}: nothing to export");
        } else {
            let csv = shown["csv"].as_str().unwrap_or_default();
            let first_column: Vec<&str> =
                csv.lines().skip(1).map(|l| l.split(',').next().unwrap_or_default()).collect();
            assert_eq!(first_column, keys, "{kind}: the CSV lists the actors");
        }
        listed.insert(kind, keys);
    }
    for kind in ["trend_point", "funnel_step", "retention_cell", "stickiness_bar", "paths_band", "lifecycle_bar"] {
        assert!(!listed[kind].is_empty(), "{kind}: the demo data has actors behind the mark");
    }
    assert_eq!(seen["lifecycle_bar"]["asked"]["actors"]["status"], json!("returning"));
    assert!(seen["stickiness_bar"]["asked"]["actors"]["intervals"] == json!(2));
    assert_eq!(seen["paths_band"]["asked"]["actors"]["step"], json!(1), "a band from step 1");
    assert!(seen["paths_band"]["asked"]["actors"]["target"].is_string());

    // The funnel step's companies became a static cohort of exactly them.
    let saved = &seen["saved_cohort"];
    let cohort =
        get(&server, &format!("/api/projects/default/cohorts/{}", saved["id"].as_str().unwrap_or_default())).await;
    assert_eq!(cohort["type"], json!("static"));
    assert_eq!(cohort["count_by"], json!({"group_type": "company"}));
    assert_eq!(cohort["ids"], json!(listed["funnel_step"]));
    assert_eq!(saved["size"], json!(fmt(cohort["size"].as_f64().unwrap_or(-1.0))));
    assert_eq!(saved["members"], json!(listed["funnel_step"].len().min(25)));

    // The cohort made in the form, its size the API's, listed, and used as a filter.
    let admins =
        get(&server, &format!("/api/projects/default/cohorts/{}", seen["admins"]["id"].as_str().unwrap_or_default()))
            .await;
    assert_eq!(admins["name"], json!("Admins"));
    assert_eq!(
        admins["criteria"],
        json!([{"type": "property", "key": "role", "operator": "equals", "value": "admin"}])
    );
    assert!(admins["size"].as_u64().unwrap_or(0) > 0, "{admins}");
    assert_eq!(seen["admins"]["size"], json!(fmt(admins["size"].as_f64().unwrap_or(-1.0))));
    assert_eq!(seen["cohort_list"], json!(["Charting companies", "Admins"]));
    let filtered = &seen["filtered"];
    assert_eq!(filtered["question"]["filters"], json!({"and": [{"cohort": admins["id"]}]}));
    let answer = post_query(&server, filtered["question"].clone()).await;
    assert_eq!(filtered["numbers"], trends_table(&answer, &filtered["question"]));
    let unfiltered = {
        let mut q = filtered["question"].clone();
        q.as_object_mut().map(|o| o.remove("filters"));
        post_query(&server, q).await
    };
    assert!(
        answer["series"][0]["aggregated_value"].as_f64() < unfiltered["series"][0]["aggregated_value"].as_f64(),
        "the cohort narrows the count"
    );
    assert_eq!(seen["page_errors"], json!([]));
    server.stop();
}

/// A trends answer with only the lines `keep` keeps.
fn lines_where(answer: &Value, keep: impl Fn(&Value) -> bool) -> Value {
    let mut out = answer.clone();
    out["series"] =
        json!(answer["series"].as_array().into_iter().flatten().filter(|l| keep(l)).cloned().collect::<Vec<_>>());
    out
}

/// A question the page asked while the project's zone was still UTC.
fn in_utc(question: &Value) -> Value {
    let mut q = question.clone();
    q["timezone"] = json!("UTC");
    q
}

/// The numbers table the builder draws for a trends answer: a row per bucket (local date
/// labels), a column per line, and the range's values last.
fn trends_table(answer: &Value, question: &Value) -> Value {
    let interval = question["interval"].as_str().unwrap_or("day");
    let lines: Vec<&Value> = answer["series"].as_array().into_iter().flatten().collect();
    let mut rows =
        vec![std::iter::once("Bucket".to_string()).chain(lines.iter().map(|l| line_name(l))).collect::<Vec<_>>()];
    for (i, bucket) in answer["buckets"].as_array().into_iter().flatten().enumerate() {
        let mut row = vec![bucket_label(bucket.as_str().unwrap_or_default(), interval)];
        row.extend(lines.iter().map(|l| fmt(l["data"][i].as_f64().unwrap_or(f64::NAN))));
        rows.push(row);
    }
    let mut whole = vec!["Whole range".to_string()];
    whole.extend(lines.iter().map(|l| fmt(l["aggregated_value"].as_f64().unwrap_or(f64::NAN))));
    rows.push(whole);
    json!(rows)
}

fn line_name(line: &Value) -> String {
    let mut parts = vec![line["label"].as_str().unwrap_or_default().to_string()];
    if let Some(b) = line["breakdown_value"].as_str() {
        parts.push(b.to_string());
    }
    if line["compare"] == json!("previous") {
        parts.push("previous period".into());
    }
    parts.join(" · ")
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// As the page's `bucketLabel`: the local date of an RFC 3339 bucket start.
fn bucket_label(bucket: &str, interval: &str) -> String {
    let (date, time) = bucket.split_once('T').unwrap_or((bucket, ""));
    let parts: Vec<usize> = date.split('-').filter_map(|p| p.parse().ok()).collect();
    let (year, month, day) = (parts[0], parts[1], parts[2]);
    match interval {
        "month" => format!("{} {year}", MONTHS[month - 1]),
        "hour" => format!("{day} {} {}", MONTHS[month - 1], &time[..5]),
        _ => format!("{day} {}", MONTHS[month - 1]),
    }
}

/// As the page's `fmt` (en-US, at most two decimals).
fn fmt(v: f64) -> String {
    if v.fract() != 0.0 {
        return format!("{:.2}", v).trim_end_matches('0').trim_end_matches('.').to_string();
    }
    let count = fmt_count(v.abs() as u64);
    if v < 0.0 {
        format!("-{count}")
    } else {
        count
    }
}

fn current(answer: &Value) -> Vec<Value> {
    answer["series"].as_array().into_iter().flatten().filter(|l| l["compare"] != json!("previous")).cloned().collect()
}

/// Each current line's change from its previous-period line, as the page's badge spells it.
fn changes(answer: &Value) -> Vec<String> {
    let lines = answer["series"].as_array().cloned().unwrap_or_default();
    current(answer)
        .iter()
        .filter_map(|l| {
            let previous = lines.iter().find(|p| {
                p["compare"] == json!("previous")
                    && p["series"] == l["series"]
                    && p["breakdown_value"] == l["breakdown_value"]
            })?;
            let (now, before) = (l["aggregated_value"].as_f64()?, previous["aggregated_value"].as_f64()?);
            if before == 0.0 {
                return Some(if now == 0.0 { "±0.0 %".into() } else { "new".into() });
            }
            let change = (now - before) / before;
            let sign = if change > 0.0 {
                "+"
            } else if change < 0.0 {
                "−"
            } else {
                "±"
            };
            Some(format!("{sign}{:.1} %", (change * 100.0).abs()))
        })
        .collect()
}
