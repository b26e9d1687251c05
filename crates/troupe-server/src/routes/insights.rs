//! The query API (secret key or dashboard session): insights, and saved cohorts, insights and
//! dashboards. The dashboard and `troupe query` send the same JSON, described in
//! docs/insights.md.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_core::CoreError;
use troupe_query::spec::{CohortDefinition, CohortRef, SpecError};
use troupe_query::{Insight, InsightResult, COHORT_KIND};
use troupe_store::Document;

use crate::error::{json_value, ApiError, ApiQuery};
use crate::{AppState, Permission};

pub fn routes() -> Router<Arc<AppState>> {
    let router = Router::new()
        .route("/api/projects/{project}/query", post(query))
        .route("/api/projects/{project}/cohorts/{id}/members", get(cohort_members));
    [COHORTS, INSIGHTS, DASHBOARDS].into_iter().fold(router, saved_routes)
}

/// A kind of saved document: its URL segment, its stored kind, and how a body is checked.
#[derive(Clone, Copy)]
struct Saved {
    plural: &'static str,
    kind: &'static str,
    check: fn(&Value) -> Result<(), String>,
}

const COHORTS: Saved = Saved {
    plural: "cohorts",
    kind: COHORT_KIND,
    check: |body| {
        troupe_query::spec::from_json::<CohortDefinition>(body.clone()).map(|_| ()).map_err(|e| format!("cohort: {e}"))
    },
};

/// `{"name": …, "query": <insight>}`: a saved question.
const INSIGHTS: Saved = Saved {
    plural: "insights",
    kind: "insight",
    check: |body| {
        named(body, "insight")?;
        let query = body.get("query").cloned().ok_or("insight: \"query\" is missing")?;
        troupe_query::spec::from_json::<Insight>(query).map(|_| ()).map_err(|e| format!("insight query: {e}"))
    },
};

/// `{"name": …, "insights": [insight ids in order]}`.
const DASHBOARDS: Saved = Saved {
    plural: "dashboards",
    kind: "dashboard",
    check: |body| {
        named(body, "dashboard")?;
        match body.get("insights") {
            Some(Value::Array(ids)) if ids.iter().all(Value::is_string) => Ok(()),
            _ => Err("dashboard: \"insights\" must be a list of insight ids".into()),
        }
    },
};

fn named(body: &Value, what: &str) -> Result<(), String> {
    match body.get("name") {
        Some(Value::String(n)) if !n.trim().is_empty() && n.len() <= 200 => Ok(()),
        _ => Err(format!("{what}: \"name\" must be a text of 1 to 200 characters")),
    }
}

fn saved_routes(router: Router<Arc<AppState>>, saved: Saved) -> Router<Arc<AppState>> {
    let list_path = format!("/api/projects/{{project}}/{}", saved.plural);
    let one_path = format!("/api/projects/{{project}}/{}/{{id}}", saved.plural);
    router
        .route(
            &list_path,
            get(move |st, p, h| list_saved(st, p, h, saved)).post(move |st, p, h, b| create_saved(st, p, h, b, saved)),
        )
        .route(
            &one_path,
            get(move |st, p, h| get_saved(st, p, h, saved))
                .put(move |st, p, h, b| put_saved(st, p, h, b, saved))
                .delete(move |st, p, h| delete_saved(st, p, h, saved)),
        )
}

#[derive(Deserialize)]
struct QueryParams {
    /// Answer as of this instant (relative ranges, cohorts' "last N days"); default: now.
    now: Option<DateTime<Utc>>,
}

async fn query(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<QueryParams>,
    body: Bytes,
) -> Result<Json<InsightResult>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Query).await?;
    let mut insight: Insight = parse(&body, "insight")?;
    // Days are the project's days unless the question names its own timezone.
    if insight.common().timezone.is_none() {
        insight.common_mut().timezone = Some(app.general_settings.get(app.store.as_ref(), project.id).await?.timezone);
    }
    let now = params.now.unwrap_or_else(Utc::now);
    let started = std::time::Instant::now();
    let result = troupe_query::run(app.store.as_ref(), project.id, &insight, now).await?;
    app.metrics.query(kind_name(&insight), started);
    Ok(Json(result))
}

fn kind_name(insight: &Insight) -> &'static str {
    match insight {
        Insight::Trends(_) => "trends",
        Insight::Funnel(_) => "funnel",
        Insight::Retention(_) => "retention",
        Insight::Stickiness(_) => "stickiness",
        Insight::Lifecycle(_) => "lifecycle",
        Insight::Paths(_) => "paths",
    }
}

/// JSON into a query type, refusing unknown fields: a 400 naming the field's path, or serde's
/// message (it names the field) for a value that does not fit.
fn parse<T: serde::de::DeserializeOwned + serde::Serialize>(body: &[u8], what: &str) -> Result<T, ApiError> {
    strict(json_value(body)?, what)
}

fn strict<T: serde::de::DeserializeOwned + serde::Serialize>(value: Value, what: &str) -> Result<T, ApiError> {
    troupe_query::spec::from_json(value).map_err(|e| match e {
        SpecError::UnknownField(path) => {
            CoreError::invalid(path, format!("unknown field of the {what} (docs/insights.md lists every field)")).into()
        }
        SpecError::Invalid(message) => ApiError::BadQuery(format!("{what}: {message}")),
    })
}

async fn list_saved(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    saved: Saved,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Read).await?;
    let docs = app.store.documents(project.id, saved.kind).await?;
    let mut results = Vec::with_capacity(docs.len());
    for doc in docs {
        results.push(with_size(&app, project.id, saved, doc).await);
    }
    Ok(Json(json!({"results": results})))
}

/// A document as JSON; a cohort also with its `size` now (or, when it cannot be evaluated,
/// `size: null` and `size_error` saying why).
async fn with_size(app: &AppState, project: u32, saved: Saved, doc: Document) -> Value {
    let id = doc.id.clone();
    let mut value = document_json(doc);
    if saved.kind == COHORT_KIND {
        let cohort = CohortRef::Saved(id);
        match troupe_query::cohort_members(app.store.as_ref(), project, &cohort, Utc::now()).await {
            Ok((_, members)) => value["size"] = json!(members.len()),
            Err(e) => {
                value["size"] = Value::Null;
                value["size_error"] = json!(e.to_string());
            }
        }
    }
    value
}

#[derive(Deserialize)]
struct MembersParams {
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    offset: Option<usize>,
    /// Evaluate dynamic criteria as of this instant; default: now.
    now: Option<DateTime<Utc>>,
}

/// The members of a saved cohort, by key, a page at a time: users with their distinct ids, or
/// groups with their names.
async fn cohort_members(
    State(app): State<Arc<AppState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<MembersParams>,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Query).await?;
    let docs = app.store.documents(project.id, COHORT_KIND).await?;
    if !docs.iter().any(|d| d.id == id) {
        return Err(ApiError::NotFound(format!("cohort {id:?}")));
    }
    let limit = super::read::limit_up_to(params.limit, 100, MAX_MEMBERS_PAGE)?;
    let offset = params.offset.unwrap_or(0);
    let now = params.now.unwrap_or_else(Utc::now);
    let (count_by, members) =
        troupe_query::cohort_members(app.store.as_ref(), project.id, &CohortRef::Saved(id), now).await?;
    let total = members.len();
    let results: Vec<_> = members.into_iter().skip(offset).take(limit).collect();
    Ok(Json(json!({"count_by": count_by, "total": total, "limit": limit, "offset": offset, "results": results})))
}

/// Members listed per page at most.
const MAX_MEMBERS_PAGE: usize = 10_000;

async fn get_saved(
    State(app): State<Arc<AppState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
    saved: Saved,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Read).await?;
    let docs = app.store.documents(project.id, saved.kind).await?;
    let doc =
        docs.into_iter().find(|d| d.id == id).ok_or_else(|| ApiError::NotFound(format!("{} {id:?}", saved.kind)))?;
    Ok(Json(with_size(&app, project.id, saved, doc).await))
}

/// The body, with `id` optional (one is made up when absent).
async fn create_saved(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
    saved: Saved,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let project = app.authorize(&headers, &project, Permission::Edit).await?;
    let mut body = json_value(&body)?;
    let id = match body.as_object_mut().and_then(|o| o.remove("id")) {
        Some(Value::String(id)) if valid_id(&id) => id,
        Some(other) => {
            return Err(ApiError::BadQuery(format!("id must be 1-100 letters, digits, - or _, got {other}")))
        }
        None => random_id(),
    };
    let doc = save(&app, project.id, saved, id, body).await?;
    Ok((StatusCode::CREATED, Json(document_json(doc))))
}

async fn put_saved(
    State(app): State<Arc<AppState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
    saved: Saved,
) -> Result<Json<Value>, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Edit).await?;
    if !valid_id(&id) {
        return Err(ApiError::BadQuery("id must be 1-100 letters, digits, - or _".into()));
    }
    let mut body = json_value(&body)?;
    if let Some(o) = body.as_object_mut() {
        o.remove("id");
        o.remove("updated_at");
    }
    Ok(Json(document_json(save(&app, project.id, saved, id, body).await?)))
}

async fn delete_saved(
    State(app): State<Arc<AppState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
    saved: Saved,
) -> Result<StatusCode, ApiError> {
    let project = app.authorize(&headers, &project, Permission::Edit).await?;
    if app.store.delete_document(project.id, saved.kind, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("{} {id:?}", saved.kind)))
    }
}

/// Check the body, then store it as written.
async fn save(app: &AppState, project: u32, saved: Saved, id: String, body: Value) -> Result<Document, ApiError> {
    (saved.check)(&body).map_err(ApiError::BadQuery)?;
    let doc = Document { kind: saved.kind.into(), id, body, updated_at: Utc::now() };
    app.store.put_document(project, doc.clone()).await?;
    Ok(doc)
}

fn document_json(doc: Document) -> Value {
    let mut v = json!({"id": doc.id, "updated_at": doc.updated_at});
    if let (Some(out), Value::Object(body)) = (v.as_object_mut(), doc.body) {
        out.extend(body);
    }
    v
}

fn valid_id(id: &str) -> bool {
    (1..=100).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn random_id() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("c{n:016x}")
}
