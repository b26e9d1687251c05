//! The query API (secret key): insights and cohorts. The dashboard and `troupe query` send the
//! same JSON, described in docs/insights.md.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use troupe_query::spec::CohortDefinition;
use troupe_query::{Insight, InsightResult, COHORT_KIND};
use troupe_store::Document;

use crate::error::{ApiError, ApiQuery};
use crate::AppState;

pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/projects/{project}/query", post(query))
        .route("/api/projects/{project}/cohorts", get(list_cohorts).post(create_cohort))
        .route("/api/projects/{project}/cohorts/{id}", get(get_cohort).put(put_cohort).delete(delete_cohort))
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
    let project = app.projects.authorize_read(&headers, &project).await?;
    let insight: Insight = parse(&body, "insight")?;
    let now = params.now.unwrap_or_else(Utc::now);
    let result = troupe_query::run(app.store.as_ref(), project.id, &insight, now).await?;
    Ok(Json(result))
}

/// JSON into a query type, with serde's message (it names the field and the position).
fn parse<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| ApiError::BadJson(e.to_string()))?;
    serde_json::from_value(value).map_err(|e| ApiError::BadQuery(format!("{what}: {e}")))
}

async fn list_cohorts(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let project = app.projects.authorize_read(&headers, &project).await?;
    let docs = app.store.documents(project.id, COHORT_KIND).await?;
    Ok(Json(json!({"results": docs.into_iter().map(cohort_json).collect::<Vec<_>>()})))
}

async fn get_cohort(
    State(app): State<Arc<AppState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let project = app.projects.authorize_read(&headers, &project).await?;
    let docs = app.store.documents(project.id, COHORT_KIND).await?;
    let doc = docs.into_iter().find(|d| d.id == id).ok_or_else(|| ApiError::NotFound(format!("cohort {id:?}")))?;
    Ok(Json(cohort_json(doc)))
}

/// `{"id": optional, "name": …, "count_by": …, "type": "static" | "dynamic", …}`.
async fn create_cohort(
    State(app): State<Arc<AppState>>,
    Path(project): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let project = app.projects.authorize_read(&headers, &project).await?;
    let mut body: Value = serde_json::from_slice(&body).map_err(|e| ApiError::BadJson(e.to_string()))?;
    let id = match body.as_object_mut().and_then(|o| o.remove("id")) {
        Some(Value::String(id)) if valid_id(&id) => id,
        Some(other) => {
            return Err(ApiError::BadQuery(format!("cohort id must be 1-100 letters, digits, - or _, got {other}")))
        }
        None => uuid_like(),
    };
    let doc = save(&app, project.id, id, body).await?;
    Ok((StatusCode::CREATED, Json(cohort_json(doc))))
}

async fn put_cohort(
    State(app): State<Arc<AppState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let project = app.projects.authorize_read(&headers, &project).await?;
    if !valid_id(&id) {
        return Err(ApiError::BadQuery("cohort id must be 1-100 letters, digits, - or _".into()));
    }
    let mut body: Value = serde_json::from_slice(&body).map_err(|e| ApiError::BadJson(e.to_string()))?;
    if let Some(o) = body.as_object_mut() {
        o.remove("id");
    }
    Ok(Json(cohort_json(save(&app, project.id, id, body).await?)))
}

async fn delete_cohort(
    State(app): State<Arc<AppState>>,
    Path((project, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<StatusCode, ApiError> {
    let project = app.projects.authorize_read(&headers, &project).await?;
    if app.store.delete_document(project.id, COHORT_KIND, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound(format!("cohort {id:?}")))
    }
}

/// Validate the definition, then store it as written.
async fn save(app: &AppState, project: u32, id: String, body: Value) -> Result<Document, ApiError> {
    serde_json::from_value::<CohortDefinition>(body.clone()).map_err(|e| ApiError::BadQuery(format!("cohort: {e}")))?;
    let doc = Document { kind: COHORT_KIND.into(), id, body, updated_at: Utc::now() };
    app.store.put_document(project, doc.clone()).await?;
    Ok(doc)
}

fn cohort_json(doc: Document) -> Value {
    let mut v = json!({"id": doc.id, "updated_at": doc.updated_at});
    if let (Some(out), Value::Object(body)) = (v.as_object_mut(), doc.body) {
        out.extend(body);
    }
    v
}

fn valid_id(id: &str) -> bool {
    (1..=100).contains(&id.len()) && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn uuid_like() -> String {
    use rand::Rng;
    let n: u64 = rand::thread_rng().gen();
    format!("c{n:016x}")
}
