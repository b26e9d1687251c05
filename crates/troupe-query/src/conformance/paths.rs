//! Paths: from a start event, up to an end event, from the first event; cleaning, include and
//! exclude, the step limit, and the actors of an edge or a node.

use serde_json::{json, Value};
use troupe_store::Store;

use super::{ask, at, companies, Data};
use crate::result::{InsightResult, PathsResult};

async fn paths(store: &dyn Store, p: troupe_core::ProjectId, query: Value) -> PathsResult {
    let mut query = query;
    query["kind"] = json!("paths");
    query["date_range"] = json!({"from": "2026-03-01", "to": "2026-03-19"});
    match ask(store, p, query.clone()).await {
        Ok(InsightResult::Paths(r)) => r,
        other => panic!("{query}: not paths: {other:?}"),
    }
}

fn edges(r: &PathsResult) -> Vec<(usize, String, String, u64)> {
    r.edges.iter().map(|e| (e.step, e.source.clone(), e.target.clone(), e.actors)).collect()
}

fn edge(step: usize, source: &str, target: &str, actors: u64) -> (usize, String, String, u64) {
    (step, source.to_string(), target.to_string(), actors)
}

fn sequences(r: &PathsResult) -> Vec<(Vec<String>, u64)> {
    r.sequences.iter().map(|s| (s.steps.clone(), s.actors)).collect()
}

fn seq(steps: &[&str], actors: u64) -> (Vec<String>, u64) {
    (steps.iter().map(|s| s.to_string()).collect(), actors)
}

/// March 2. u1 (acme): signup 09:00, "page /docs" 09:01, "page /pricing" 09:02, create 09:03,
/// invite 09:04. u2 (acme): signup 10:00, create 10:01, "page /docs" 10:02. u3 (globex):
/// "page /home" 08:00, signup 09:00, create 09:30. u4: "page /home" only. Cleaning `^page ` →
/// "page" (so u1's two pages in a row are one step).
/// - From signup, 3 steps: u1 signup → page → create, u2 signup → create → page, u3 signup →
///   create; u4 has no path. Edges: step 1 signup → create 2, signup → page 1; step 2 create →
///   page 1, page → create 1.
/// - Without cleaning, u1's second step is "page /docs", then "page /pricing".
/// - Up to create, 3 steps (numbered so that create is step 3): u1 signup → page → create, u2
///   signup → create (from step 2), u3 page → signup → create: step 2 signup → create 2.
/// - From each actor's first event, 2 steps, invite excluded: u1 and u2 start signup → …, u3
///   and u4 with page. Only signup and create included: signup → create for u1, u2, u3.
/// - The actors of step 1 signup → create: u2, u3; of the node page at step 2: u1.
/// - By companies, from signup: acme's merged stream starts with u1's signup → page → create,
///   globex signup → create.
pub async fn paths_from_start_to_end_by_users_and_groups(store: &dyn Store) {
    let mut d = Data::default();
    d.set_group("u1", "company", &["acme"]).set_group("u2", "company", &["acme"]);
    d.set_group("u3", "company", &["globex"]);
    let events = [
        ("u1", "signup", 9, 0),
        ("u1", "page /docs", 9, 1),
        ("u1", "page /pricing", 9, 2),
        ("u1", "create", 9, 3),
        ("u1", "invite", 9, 4),
        ("u2", "signup", 10, 0),
        ("u2", "create", 10, 1),
        ("u2", "page /docs", 10, 2),
        ("u3", "page /home", 8, 0),
        ("u3", "signup", 9, 0),
        ("u3", "create", 9, 30),
        ("u4", "page /home", 9, 0),
    ];
    for (who, name, hour, minute) in events {
        d.event(who, name, at(2, hour, minute), json!({}));
    }
    let p = d.load(store).await;
    let cleaning = json!([{"regex": "^page ", "label": "page"}]);
    let from_signup = json!({"start": {"event": "signup"}, "step_limit": 3, "cleaning": cleaning});
    let r = paths(store, p, from_signup.clone()).await;
    assert_eq!(r.actors_with_paths, 3);
    assert_eq!(
        edges(&r),
        vec![
            edge(1, "signup", "create", 2),
            edge(1, "signup", "page", 1),
            edge(2, "create", "page", 1),
            edge(2, "page", "create", 1)
        ]
    );
    assert_eq!(
        sequences(&r),
        vec![
            seq(&["signup", "create"], 1),
            seq(&["signup", "create", "page"], 1),
            seq(&["signup", "page", "create"], 1)
        ]
    );
    let nodes: Vec<(usize, String, u64, u64)> =
        r.nodes.iter().map(|n| (n.step, n.name.clone(), n.actors, n.ended)).collect();
    assert_eq!(
        nodes,
        vec![
            (1, "signup".to_string(), 3, 0),
            (2, "create".to_string(), 2, 1),
            (2, "page".to_string(), 1, 0),
            (3, "create".to_string(), 1, 1),
            (3, "page".to_string(), 1, 1)
        ]
    );

    let raw = paths(store, p, json!({"start": {"event": "signup"}, "step_limit": 3})).await;
    assert!(edges(&raw).contains(&edge(2, "page /docs", "page /pricing", 1)), "{:?}", edges(&raw));

    let to_create = paths(store, p, json!({"end": {"event": "create"}, "step_limit": 3, "cleaning": cleaning})).await;
    assert_eq!(
        edges(&to_create),
        vec![
            edge(2, "signup", "create", 2),
            edge(1, "page", "signup", 1),
            edge(1, "signup", "page", 1),
            edge(2, "page", "create", 1)
        ]
    );

    let first = paths(store, p, json!({"step_limit": 2, "exclude": ["invite"], "cleaning": cleaning})).await;
    assert_eq!(
        sequences(&first),
        vec![
            seq(&["page"], 1),
            seq(&["page", "signup"], 1),
            seq(&["signup", "create"], 1),
            seq(&["signup", "page"], 1)
        ]
    );
    let only = paths(store, p, json!({"include": ["signup", "create"]})).await;
    assert_eq!(sequences(&only), vec![seq(&["signup", "create"], 3)]);

    let listed = |actors: Value| {
        let mut q = from_signup.clone();
        q["actors"] = actors;
        q
    };
    let ids = |r: PathsResult| {
        let mut ids: Vec<String> = r.actors.iter().flatten().flat_map(|a| a.distinct_ids.clone()).collect();
        ids.sort();
        ids
    };
    let on_edge = paths(store, p, listed(json!({"step": 1, "source": "signup", "target": "create"}))).await;
    assert_eq!(ids(on_edge), ["u2", "u3"]);
    let at_node = paths(store, p, listed(json!({"step": 2, "source": "page"}))).await;
    assert_eq!(ids(at_node), ["u1"]);

    let mut by_company = from_signup.clone();
    by_company["count_by"] = companies();
    let r = paths(store, p, by_company).await;
    assert_eq!(sequences(&r), vec![seq(&["signup", "create"], 1), seq(&["signup", "page", "create"], 1)]);

    for (query, needle) in [
        (json!({"kind": "paths", "start": {"event": "a"}, "end": {"event": "b"}}), "not both"),
        (json!({"kind": "paths", "step_limit": 1}), "step_limit"),
        (json!({"kind": "paths", "cleaning": [{"regex": "(", "label": "x"}]}), "cleaning[0].regex"),
        (json!({"kind": "paths", "actors": {"step": 9, "source": "a"}}), "actors.step"),
    ] {
        match ask(store, p, query.clone()).await {
            Err(crate::QueryError::Invalid(m)) => assert!(m.contains(needle), "{query}: {m}"),
            other => panic!("{query} should be refused, got {other:?}"),
        }
    }
}
