//! Where an administrative command (`troupe person …`, `troupe group-type …`) acts: a project of
//! the data directory, opened with the server stopped, or a running server's API.

use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use troupe_store::{Project, Store};

use crate::config::Target;

impl Target {
    /// The store of the data directory (or ClickHouse URL), as this process's writer.
    pub async fn open(&self) -> Result<Arc<dyn Store>> {
        self.store.open().await.map_err(|e| {
            anyhow!("{e:#}\n(to go through a running server instead: --server http://127.0.0.1:8000 --secret-key …)")
        })
    }

    /// The project named (or numbered) by `--project`.
    pub async fn project_in(&self, store: &dyn Store) -> Result<Project> {
        store
            .projects()
            .await?
            .into_iter()
            .find(|p| p.name == self.project || p.id.to_string() == self.project)
            .ok_or_else(|| anyhow!("no project named {:?} ({})", self.project, self.store.describe()))
    }

    /// Run `work` on the target's project in the data directory, closing the store after
    /// (whatever `work` answered).
    pub async fn on_store<T, F, Fut>(&self, work: F) -> Result<T>
    where
        F: FnOnce(Arc<dyn Store>, Project) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let store = self.open().await?;
        let result = match self.project_in(store.as_ref()).await {
            Ok(project) => work(store.clone(), project).await,
            Err(e) => Err(e),
        };
        store.close().await;
        result
    }

    /// `{server}/api/projects/{project}/{segments…}`, each segment escaped.
    pub fn api_url(&self, server: &str, segments: &[&str]) -> Result<String> {
        let mut url = reqwest::Url::parse(server).with_context(|| format!("--server {server:?} is not a URL"))?;
        url.path_segments_mut()
            .map_err(|()| anyhow!("--server {server:?} cannot take a path"))?
            .pop_if_empty()
            .extend(["api", "projects", &self.project])
            .extend(segments);
        Ok(url.to_string())
    }

    /// A request with the secret key.
    pub async fn send(
        &self,
        server: &str,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response> {
        let key =
            self.secret_key.as_deref().ok_or_else(|| anyhow!("--server needs --secret-key (or TROUPE_SECRET_KEY)"))?;
        let mut request = reqwest::Client::new().request(method, url).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.with_context(|| format!("cannot reach {server}"))
    }
}

/// A JSON answer of the server (`Null` for an empty one), or its error as the message.
pub async fn json_reply(response: reqwest::Response) -> Result<Value> {
    let status = response.status();
    let bytes = response.bytes().await.context("the server's answer was cut off")?;
    let body: Value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).context("the server's answer is not JSON")?
    };
    if !status.is_success() {
        bail!("{status}: {}", body.get("error").and_then(Value::as_str).unwrap_or("(no message)"));
    }
    Ok(body)
}
