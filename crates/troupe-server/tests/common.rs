//! An in-process troupe (router + in-memory embedded store) and request helpers.

#![allow(dead_code)]

use std::io::Write;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;
use troupe_duckdb::{DuckStore, EmbeddedConfig};
use troupe_server::auth::hash_secret;
use troupe_store::{NewProject, Store};

pub const SITE: &str = "site_test_123";
pub const SECRET: &str = "trs_test_secret";

pub struct App {
    pub router: Router,
    pub store: Arc<dyn Store>,
}

pub async fn app() -> App {
    app_with(troupe_server::ServerSettings::default()).await
}

pub async fn app_with(settings: troupe_server::ServerSettings) -> App {
    app_on(EmbeddedConfig::default(), settings).await
}

/// The app on an embedded store opened with `config` (its limits, say).
pub async fn app_on(config: EmbeddedConfig, settings: troupe_server::ServerSettings) -> App {
    let store: Arc<dyn Store> = Arc::new(DuckStore::open(config).expect("store opens"));
    for (name, key, secret) in [("default", SITE, SECRET), ("other", "site_other", "trs_other")] {
        store
            .create_project(NewProject {
                name: name.into(),
                ingestion_key: key.into(),
                secret_key_hash: hash_secret(secret),
            })
            .await
            .expect("project");
    }
    let state = troupe_server::AppState::new(store.clone(), settings).await.expect("state");
    App { router: troupe_server::router(state), store }
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
}

impl App {
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.router.clone().oneshot(request).await.expect("router answers");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply { status, body }
    }

    /// POST JSON with the Trodo site header.
    pub async fn post(&self, path: &str, body: Value) -> Reply {
        self.post_raw(path, SITE, body.to_string().into_bytes(), None).await
    }

    pub async fn post_raw(&self, path: &str, site: &str, body: Vec<u8>, encoding: Option<&str>) -> Reply {
        let mut request = Request::post(path).header("content-type", "application/json");
        if !site.is_empty() {
            request = request.header("x-trodo-site-id", site);
        }
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        self.send(request.body(Body::from(body)).expect("request")).await
    }

    /// GET with the default project's secret key.
    pub async fn get(&self, path: &str) -> Reply {
        self.get_as(path, Some(SECRET)).await
    }

    /// PUT JSON with the default project's secret key.
    pub async fn put(&self, path: &str, body: Value) -> Reply {
        let request = Request::put(path)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {SECRET}"));
        self.send(request.body(Body::from(body.to_string())).expect("request")).await
    }

    pub async fn get_as(&self, path: &str, secret: Option<&str>) -> Reply {
        let mut request = Request::get(path);
        if let Some(secret) = secret {
            request = request.header("authorization", format!("Bearer {secret}"));
        }
        self.send(request.body(Body::empty()).expect("request")).await
    }
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).expect("gzip");
    encoder.finish().expect("gzip")
}
