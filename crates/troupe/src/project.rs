//! `troupe project create|list`, and the `default` project every server starts with.

use anyhow::{bail, Context, Result};
use troupe_server::auth::{generate_key, hash_secret};
use troupe_store::{NewProject, Project, Store};

use crate::config::StoreArgs;

/// A project just created, with the secret key that exists only now.
pub struct Created {
    pub project: Project,
    pub secret_key: String,
}

pub async fn create_with_keys(
    store: &dyn Store,
    name: &str,
    ingestion_key: Option<String>,
    secret_key: Option<String>,
) -> Result<Created> {
    if name.trim().is_empty() || name.len() > 100 {
        bail!("a project name must be 1 to 100 characters");
    }
    let secret_key = secret_key.unwrap_or_else(|| generate_key("trs_"));
    let new = NewProject {
        name: name.to_string(),
        ingestion_key: ingestion_key.unwrap_or_else(|| generate_key("tri_")),
        secret_key_hash: hash_secret(&secret_key),
    };
    let project = store.create_project(new).await.with_context(|| format!("cannot create project '{name}'"))?;
    Ok(Created { project, secret_key })
}

pub fn print_keys(created: &Created) {
    println!("created project '{}' (id {})", created.project.name, created.project.id);
    println!("  ingestion key: {}   (write-only: give it to SDKs)", created.project.ingestion_key);
    println!("  secret key:    {}   (reads the API; shown only now, keep it)", created.secret_key);
}

pub async fn create(store_args: &StoreArgs, name: &str, ingestion_key: Option<String>) -> Result<()> {
    let store = store_args.open().await?;
    let created = create_with_keys(store.as_ref(), name, ingestion_key, None).await;
    store.close().await;
    print_keys(&created?);
    Ok(())
}

pub async fn list(store_args: &StoreArgs) -> Result<()> {
    let store = store_args.open_read_only().await?;
    let projects = store.projects().await?;
    if projects.is_empty() {
        println!("no projects yet: `troupe serve` creates 'default' on first start");
    }
    for p in projects {
        println!(
            "{:>4}  {:<24} ingestion key {}  created {}",
            p.id,
            p.name,
            p.ingestion_key,
            p.created_at.format("%Y-%m-%d")
        );
    }
    Ok(())
}
